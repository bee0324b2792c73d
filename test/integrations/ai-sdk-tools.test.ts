import { generateText, isStepCount } from "ai";
import { describe, expect, test, vi } from "vitest";
import { memoryTools, memoryToolsContext, withMemory } from "../../integrations/ai-sdk/index.js";
import { MissingScopeError } from "../../src/index.js";
import { memoriesClosedAfterEach } from "../support/memories.js";
import { toolCallingModel } from "./scripted-ai-sdk-model.js";
import { type ToolDriver, type ToolOutcome, testToolScenarios } from "./tool-scenarios.js";

const aiSdkTools: ToolDriver = {
  name: "AI SDK (memoryTools with generateText)",
  scopeHint: /toolsContext: memoryToolsContext/,
  async call(memory, toolName, args, scope) {
    const { model, seen } = toolCallingModel(toolName, args);
    const result = await generateText({
      model,
      prompt: "hi",
      tools: memoryTools({ memory }),
      ...(scope ? { toolsContext: memoryToolsContext(scope) } : {}),
      stopWhen: isStepCount(2),
      maxRetries: 0,
    } as Parameters<typeof generateText>[0]);
    const outcome: ToolOutcome = { tools: seen.tools };
    for (const part of result.steps[0]?.content ?? []) {
      if (part.type === "tool-result") outcome.output = part.output as Record<string, unknown>;
      if (part.type === "tool-error") {
        outcome.error = part.error instanceof Error ? `${part.error.name}: ${part.error.message}` : JSON.stringify(part.error);
      }
    }
    return outcome;
  },
};

testToolScenarios(aiSdkTools);

describe("memoryTools: what only the AI SDK tools do", () => {
  const newMemory = memoriesClosedAfterEach();

  test("a call without toolsContext fails with a MissingScopeError the app can recognise (tool-error part)", async () => {
    const memory = newMemory();
    const { model } = toolCallingModel("search_memories", { query: "x" });
    const result = await generateText({ model, prompt: "hi", tools: memoryTools({ memory }), stopWhen: isStepCount(2) } as Parameters<
      typeof generateText
    >[0]);
    const failure = result.steps[0]?.content.find((part) => part.type === "tool-error");
    expect(MissingScopeError.isInstance((failure as { error: unknown } | undefined)?.error)).toBe(true);
  });

  test("with withMemory, a turn whose fact was remembered by the tool is still written once by the write-behind", async () => {
    const memory = newMemory();
    const enqueue = vi.spyOn(memory, "enqueue");
    const { model } = toolCallingModel("add_memory", { text: "Ana is vegetarian" }, "Noted, no meat.");
    const scope = { userId: "ana", runId: "s-1" };
    const result = await generateText({
      model: withMemory(model, { memory }),
      prompt: "I'm vegetarian.",
      tools: memoryTools({ memory }),
      toolsContext: memoryToolsContext(scope),
      providerOptions: { memory: scope },
      stopWhen: isStepCount(3),
    });
    expect(result.text).toBe("Noted, no meat.");
    await vi.waitFor(() => expect(enqueue).toHaveBeenCalledTimes(1));
    await memory.flush({ timeoutMs: 5000 });
    expect(enqueue.mock.calls[0]?.[0]).toEqual([
      { role: "user", content: "I'm vegetarian." },
      { role: "assistant", content: "Noted, no meat." },
    ]);
    const stored = (await memory.getAll({ userId: "ana" })).results.map((item) => item.memory).sort();
    expect(stored).toEqual(["Ana is vegetarian", "I'm vegetarian.", "Noted, no meat."]);
    // remember: false leaves writing to the tools alone.
    const quiet = newMemory();
    const quietEnqueue = vi.spyOn(quiet, "enqueue");
    const second = toolCallingModel("add_memory", { text: "Ana is vegetarian" }, "Noted.");
    await generateText({
      model: withMemory(second.model, { memory: quiet, remember: false }),
      prompt: "I'm vegetarian.",
      tools: memoryTools({ memory: quiet }),
      toolsContext: memoryToolsContext(scope),
      providerOptions: { memory: scope },
      stopWhen: isStepCount(3),
    });
    expect(quietEnqueue).not.toHaveBeenCalled();
    expect((await quiet.getAll({ userId: "ana" })).results.map((item) => item.memory)).toEqual(["Ana is vegetarian"]);
  });
});
