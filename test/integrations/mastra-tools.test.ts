import { Agent } from "@mastra/core/agent";
import { RequestContext } from "@mastra/core/request-context";
import { describe, expect, test } from "vitest";
import { memoryTools } from "../../integrations/mastra/index.js";
import { memoriesClosedAfterEach } from "../support/memories.js";
import { toolCallingModel } from "./scripted-ai-sdk-model.js";
import { type ToolDriver, type ToolOutcome, testToolScenarios } from "./tool-scenarios.js";

type AgentConfig = ConstructorParameters<typeof Agent>[0];

async function callTool(
  memory: Parameters<ToolDriver["call"]>[0],
  toolName: string,
  args: Record<string, unknown>,
  options: { requestContext?: RequestContext; memory?: { resource: string; thread: string } },
): Promise<ToolOutcome> {
  const { model, seen } = toolCallingModel(toolName, args);
  const agent = new Agent({
    id: "assistant",
    name: "assistant",
    instructions: "You are a helpful assistant.",
    model: model as unknown as AgentConfig["model"],
    tools: memoryTools({ memory }),
  });
  const result = await agent.generate("hi", { ...options, maxSteps: 2 });
  const outcome: ToolOutcome = { tools: seen.tools };
  const [first] = (result.toolResults ?? []) as unknown as { payload: { result?: unknown; isError?: boolean } }[];
  const value = first?.payload.result as Record<string, unknown> | undefined;
  if (value && (value.error === true || first?.payload.isError)) outcome.error = JSON.stringify(value);
  else if (value) outcome.output = value;
  if (!first) outcome.error = JSON.stringify(result.steps?.[0]?.content ?? result);
  return outcome;
}

const mastraTools: ToolDriver = {
  name: "Mastra (memoryTools on an Agent, scope on the RequestContext)",
  scopeHint: /requestContext\.set\(\\?"userId\\?"/,
  async call(memory, toolName, args, scope) {
    const requestContext = new RequestContext();
    for (const [key, value] of Object.entries(scope ?? {})) requestContext.set(key, value);
    return callTool(memory, toolName, args, { requestContext });
  },
};

testToolScenarios(mastraTools);

describe("memoryTools: what only the Mastra tools do", () => {
  const newMemory = memoriesClosedAfterEach();

  test("without scope keys on the RequestContext, Mastra's memory ids are the scope (resource → userId, thread → runId)", async () => {
    const memory = newMemory();
    const outcome = await callTool(memory, "add_memory", { text: "Ana is vegetarian" }, { memory: { resource: "ana", thread: "t-1" } });
    expect(outcome.output).toMatchObject({ remembered: [{ event: "ADD" }] });
    expect((await memory.getAll({ userId: "ana", runId: "t-1" })).results.map((item) => item.memory)).toEqual(["Ana is vegetarian"]);
  });
});
