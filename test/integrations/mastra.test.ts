import type { LanguageModelV4CallOptions } from "@ai-sdk/provider";
import { Agent } from "@mastra/core/agent";
import type { InputProcessor, OutputProcessor } from "@mastra/core/processors";
import { RequestContext } from "@mastra/core/request-context";
import { createTool } from "@mastra/core/tools";
import { convertArrayToReadableStream, MockLanguageModelV4 } from "ai/test";
import { describe, expect, test, vi } from "vitest";
import { z } from "zod";
import { memoryProcessor, withMemory } from "../../integrations/mastra/index.js";
import type { AdapterMemory } from "../../integrations/shared/options.js";
import { ConfigError } from "../../src/index.js";
import { memoriesClosedAfterEach } from "../support/memories.js";
import { type AdapterDriver, type CallScope, testAdapterScenarios } from "./adapter-scenarios.js";
import { reply, scriptedAiSdkModel, systemTexts, textStream } from "./scripted-ai-sdk-model.js";

type AgentConfig = ConstructorParameters<typeof Agent>[0];

// Mastra 1.x types AI SDK 7 models with its own, older copy of @ai-sdk/provider (no "interrupted"
// finish reason); the runtime contract is the same, so only the type needs the cast.
const mastraModel = (model: MockLanguageModelV4) => model as unknown as AgentConfig["model"];

function userContext(entries: [string, string][]) {
  const context = new RequestContext();
  for (const [key, value] of entries) context.set(key, value);
  return context;
}

const mastra: AdapterDriver = {
  name: "Mastra (withMemory(agent) with generate / stream)",
  scopeHint: /requestContext\.set\("userId"/,
  recallsEachStep: false,
  setup({ memory, adapter, instructions, steps, onTool }) {
    const { model, calls } = scriptedAiSdkModel(steps);
    const weather = createTool({
      id: "weather",
      description: "Weather of a city",
      inputSchema: z.object({ city: z.string() }),
      execute: async () => {
        await onTool?.();
        return { sky: "sunny" };
      },
    });
    const agent = withMemory(
      new Agent({ id: "assistant", name: "assistant", instructions, model: mastraModel(model), tools: { weather } }),
      {
        memory,
        ...adapter,
      },
    );
    // One RequestContext per conversation, as an app keeps it.
    const contexts = new Map<CallScope, RequestContext>();
    const options = (scope: CallScope | undefined) => {
      if (!scope) return { maxSteps: 4 };
      const requestContext = contexts.get(scope) ?? userContext(Object.entries(scope));
      contexts.set(scope, requestContext);
      return { requestContext, maxSteps: 4 };
    };
    return {
      calls,
      async generate(input, scope) {
        const result = await agent.generate(input, options(scope));
        if (result.error) throw result.error;
        return result.text;
      },
      async stream(input, scope) {
        const output = await agent.stream(input, options(scope));
        const text = await output.text;
        if (output.error) throw output.error;
        return text;
      },
      async streamAborted(input, scope) {
        const abort = new AbortController();
        const output = await agent.stream(input, { ...options(scope), abortSignal: abort.signal });
        for await (const _ of output.textStream) abort.abort();
        expect(await output.finishReason).toBe("aborted");
      },
    };
  },
};

testAdapterScenarios(mastra);

const newMemory = memoriesClosedAfterEach();

const alice = () => userContext([["userId", "alice"]]);

function agentWith(model: MockLanguageModelV4, extra: Pick<AgentConfig, "tools" | "inputProcessors" | "outputProcessors"> = {}) {
  return new Agent({
    id: "assistant",
    name: "assistant",
    instructions: "You are a helpful assistant.",
    model: mastraModel(model),
    ...extra,
  });
}

/** An input processor of the app's own, to check that wrapping keeps it. */
function markerProcessor(seen: string[]): InputProcessor {
  return {
    id: "marker",
    processInput({ messageList }) {
      seen.push("input");
      return messageList;
    },
  };
}

describe("withMemory(agent): what only the Mastra adapter does", () => {
  test("generate keeps the agent's own input processors", async () => {
    const memory = newMemory();
    await memory.add("I prefer Postgres", { userId: "alice" });
    const model = new MockLanguageModelV4({ doGenerate: reply("Use Postgres.") });
    const seen: string[] = [];
    const agent = withMemory(agentWith(model, { inputProcessors: [markerProcessor(seen)] }), { memory, threshold: 0 });
    expect((await agent.generate("Which database?", { requestContext: alice() })).text).toBe("Use Postgres.");
    expect(seen).toEqual(["input"]);
    expect(systemTexts(model.doGenerateCalls[0] as LanguageModelV4CallOptions)[1]).toContain('"I prefer Postgres"');
  });

  test("stream passes the reply through in chunks and keeps the agent's own input and output processors", async () => {
    const memory = newMemory();
    await memory.add("I prefer Postgres", { userId: "alice" });
    const model = new MockLanguageModelV4({
      doStream: async () => ({ stream: convertArrayToReadableStream(textStream("Postgres is a good default.")) }),
    });
    const seen: string[] = [];
    const outputMarker: OutputProcessor = {
      id: "output-marker",
      processOutputResult({ messageList }) {
        seen.push("output");
        return messageList;
      },
    };
    const agent = withMemory(agentWith(model, { inputProcessors: [markerProcessor(seen)], outputProcessors: [outputMarker] }), {
      memory,
      threshold: 0,
    });
    const output = await agent.stream("Which database?", { requestContext: alice() });
    const chunks: string[] = [];
    for await (const chunk of output.textStream) chunks.push(chunk);
    expect(chunks.join("")).toBe("Postgres is a good default.");
    expect(chunks.length).toBeGreaterThan(1);
    expect(systemTexts(model.doStreamCalls[0] as LanguageModelV4CallOptions).join()).toContain("I prefer Postgres");
    expect(seen).toEqual(["input", "output"]);
  });

  test("without a RequestContext scope, Mastra's memory ids are the scope: resource → userId, thread → runId", async () => {
    const memory = newMemory();
    await memory.add("My dog is called Rex", { userId: "alice" });
    const model = new MockLanguageModelV4({ doGenerate: reply("Rex is a good name.") });
    const agent = withMemory(agentWith(model), { memory, threshold: 0 });
    await agent.generate("What is my dog called?", { memory: { resource: "alice", thread: "t-1" } });
    expect(systemTexts(model.doGenerateCalls[0] as LanguageModelV4CallOptions).join("\n")).toContain("Rex");
    await memory.flush();
    const { results } = await memory.getAll({ userId: "alice", runId: "t-1" });
    expect(results.map((r) => r.memory).sort()).toEqual(["Rex is a good name.", "What is my dog called?"]);
  });

  test("the wrapped agent is a new view: the original agent stays without memory", async () => {
    const memory = newMemory();
    await memory.add("I like tea", { userId: "alice" });
    const enqueue = vi.spyOn(memory, "enqueue");
    const model = new MockLanguageModelV4({ doGenerate: reply("ok") });
    const original = agentWith(model);
    const wrapped = withMemory(original, { memory, threshold: 0 });
    expect(wrapped).toBeInstanceOf(Agent);
    expect(wrapped.name).toBe("assistant");
    expect(await wrapped.getInstructions()).toBe("You are a helpful assistant.");
    await original.generate("What do I like to drink?", { requestContext: alice() });
    expect(systemTexts(model.doGenerateCalls[0] as LanguageModelV4CallOptions)).toHaveLength(1);
    expect(enqueue).not.toHaveBeenCalled();
  });

  test("memoryProcessor refuses bad options with a ConfigError", () => {
    expect(() => memoryProcessor({ memory: newMemory(), limit: 0 })).toThrow(ConfigError);
    expect(() => memoryProcessor({ memory: newMemory(), limit: 0 })).toThrow(/limit/);
  });
});

describe("new Agent(withMemory(config)) and memoryProcessor", () => {
  test("appends one processor to the config's own processors and remembers through it", async () => {
    const memory = newMemory();
    await memory.add("I am allergic to peanuts", { userId: "alice" });
    const model = new MockLanguageModelV4({ doGenerate: reply("Noted, no peanuts.") });
    const seen: string[] = [];
    const config = withMemory(
      {
        id: "chef",
        name: "chef",
        instructions: "You suggest recipes.",
        model: mastraModel(model),
        inputProcessors: async () => [markerProcessor(seen)],
      },
      { memory, threshold: 0 },
    );
    const agent = new Agent(config);
    await agent.generate("Suggest a snack for me", { requestContext: alice() });
    expect(seen).toEqual(["input"]);
    expect(systemTexts(model.doGenerateCalls[0] as LanguageModelV4CallOptions).join()).toContain("peanuts");
    expect((await memory.flush()).processed).toBe(1);
  });

  test("without scope the call is refused through Mastra's tripwire and the model is never called", async () => {
    const memory = newMemory();
    const model = new MockLanguageModelV4({
      doGenerate: reply("never"),
      doStream: { stream: convertArrayToReadableStream(textStream("never")) },
    });
    const agent = new Agent(
      withMemory({ id: "chef", name: "chef", instructions: "You suggest recipes.", model: mastraModel(model) }, { memory, threshold: 0 }),
    );
    const result = await agent.generate("hi");
    expect(result.tripwire?.reason).toMatch(/^agent\.generate\(\)\/stream\(\) needs a scope: set "userId"/);
    expect(result.tripwire?.metadata).toEqual({ code: "MISSING_SCOPE" });

    const streamed = await agent.stream("hi");
    const kinds: string[] = [];
    for await (const chunk of streamed.fullStream) kinds.push(chunk.type);
    expect(kinds).toContain("tripwire");
    expect(model.doGenerateCalls).toHaveLength(0);
    expect(model.doStreamCalls).toHaveLength(0);
  });

  test("the same memoryProcessor object serves as input and output processor, for generate and stream", async () => {
    const memory = newMemory();
    const enqueue = vi.spyOn(memory, "enqueue");
    const memories = memoryProcessor({ memory });
    const model = new MockLanguageModelV4({
      doGenerate: reply("First reply."),
      doStream: async () => ({ stream: convertArrayToReadableStream(textStream("Second reply.")) }),
    });
    const agent = agentWith(model, { inputProcessors: [memories], outputProcessors: [memories] });
    await agent.generate("first question", { requestContext: alice() });
    const output = await agent.stream("second question", { requestContext: alice() });
    await output.consumeStream();
    await vi.waitFor(() => expect(enqueue).toHaveBeenCalledTimes(2));
    expect(enqueue.mock.calls.map(([messages]) => messages)).toEqual([
      [
        { role: "user", content: "first question" },
        { role: "assistant", content: "First reply." },
      ],
      [
        { role: "user", content: "second question" },
        { role: "assistant", content: "Second reply." },
      ],
    ]);
  });

  test("repeated identical turns with the same message id but different replies are all written", async () => {
    const memory = newMemory();
    const replies = ["Booked for Monday at 8.", "Booked for Tuesday at 8.", "Booked for Wednesday at 8."];
    const model = new MockLanguageModelV4({ doGenerate: replies.map(reply) });
    const agent = withMemory(agentWith(model), { memory, threshold: 0 });
    for (const _ of replies) {
      await agent.generate([{ id: "m-1", role: "user", content: "Book my usual table" }], { requestContext: alice() });
    }
    expect((await memory.flush()).processed).toBe(3);
    const { results } = await memory.getAll({ userId: "alice" });
    expect(results.map((r) => r.memory).sort()).toEqual(["Book my usual table", ...replies].sort());
  });

  test("with failOpen: false an agent built from the config fails with Mastra's error carrying the TimeoutError's message", async () => {
    const hung: AdapterMemory = { search: () => new Promise(() => {}), enqueue: async () => ({ id: "recorded", queued: true }) };
    const deadline = 100;
    const model = new MockLanguageModelV4({ doGenerate: reply("never") });
    const agent = new Agent(
      withMemory(
        { id: "assistant", name: "assistant", instructions: "x", model: mastraModel(model) },
        { memory: hung, recallTimeoutMs: deadline, failOpen: false },
      ),
    );
    const started = performance.now();
    const failure = await agent.generate("hi", { requestContext: alice() }).then(
      () => undefined,
      (error: unknown) => error,
    );
    // Generous for a loaded test machine, tiny next to a hang.
    expect(performance.now() - started).toBeLessThan(deadline + 800);
    const messages: string[] = [];
    for (let error = failure as { message?: string; cause?: unknown } | undefined; error; error = error.cause as typeof error) {
      messages.push(String(error.message));
    }
    expect(messages.join("\n")).toMatch(/longer than recallTimeoutMs \(100 ms\)/);
    expect(model.doGenerateCalls).toHaveLength(0);
  });
});
