import type { LanguageModelV4CallOptions, LanguageModelV4GenerateResult, LanguageModelV4StreamPart } from "@ai-sdk/provider";
import { Agent } from "@mastra/core/agent";
import type { InputProcessor, OutputProcessor } from "@mastra/core/processors";
import { RequestContext } from "@mastra/core/request-context";
import { createTool } from "@mastra/core/tools";
import { convertArrayToReadableStream, MockLanguageModelV4 } from "ai/test";
import { afterEach, describe, expect, test, vi } from "vitest";
import { z } from "zod";
import { memoryProcessor, withMemory } from "../../integrations/mastra/index.js";
import type { AdapterMemory } from "../../integrations/shared/options.js";
import {
  ConfigError,
  type EngramError,
  InvalidScopeError,
  Memory,
  MissingScopeError,
  memoryBlockTag,
  TimeoutError,
} from "../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../../src/testing/index.js";

const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 5, text: 5, reasoning: undefined },
};

function reply(text: string): LanguageModelV4GenerateResult {
  return { content: [{ type: "text", text }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] };
}

const textStream = (text: string): LanguageModelV4StreamPart[] => [
  { type: "stream-start", warnings: [] },
  { type: "text-start", id: "t" },
  ...text.split(" ").map((word, i) => ({ type: "text-delta" as const, id: "t", delta: i === 0 ? word : ` ${word}` })),
  { type: "text-end", id: "t" },
  { type: "finish", finishReason: { unified: "stop", raw: "stop" }, usage },
];

const memories: Memory[] = [];
function newMemory() {
  const memory = new Memory({ embedder: deterministicEmbedder(), vectorStore: inMemoryStore(), historyStore: inMemoryHistory() });
  memories.push(memory);
  return memory;
}
afterEach(async () => {
  await Promise.all(memories.splice(0).map((m) => m.close()));
});

const systemTexts = (call: LanguageModelV4CallOptions) => call.prompt.filter((m) => m.role === "system").map((m) => m.content as string);
function userContext(entries: [string, string][]) {
  const context = new RequestContext();
  for (const [key, value] of entries) context.set(key, value);
  return context;
}
const alice = () => userContext([["userId", "alice"]]);

type AgentConfig = ConstructorParameters<typeof Agent>[0];

// Mastra 1.x types AI SDK 7 models with its own, older copy of @ai-sdk/provider (no "interrupted"
// finish reason); the runtime contract is the same, so only the type needs the cast.
const mastraModel = (model: MockLanguageModelV4) => model as unknown as AgentConfig["model"];

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

describe("withMemory(agent) and generate", () => {
  test("injects one labelled block after the instructions, keeps the agent's processors, remembers the turn", async () => {
    const memory = newMemory();
    await memory.add("I prefer Postgres for everything except analytics", { userId: "alice" });
    const model = new MockLanguageModelV4({ doGenerate: reply("Use Postgres.") });
    const seen: string[] = [];
    const agent = withMemory(agentWith(model, { inputProcessors: [markerProcessor(seen)] }), { memory });

    const result = await agent.generate("Which database should I use for my app?", {
      requestContext: userContext([
        ["userId", "alice"],
        ["runId", "s-1"],
      ]),
    });

    expect(result.text).toBe("Use Postgres.");
    expect(seen).toEqual(["input"]);
    const call = model.doGenerateCalls[0] as LanguageModelV4CallOptions;
    expect(call.prompt.map((m) => m.role)).toEqual(["system", "system", "user"]);
    expect(systemTexts(call)[0]).toBe("You are a helpful assistant.");
    expect(systemTexts(call)[1]).toContain(`<${memoryBlockTag} label="Relevant memories about this user" nonce="`);
    expect(systemTexts(call)[1]).toContain('"I prefer Postgres for everything except analytics"');

    expect((await memory.flush()).processed).toBe(1);
    const { results } = await memory.getAll({ userId: "alice", runId: "s-1" });
    expect(results.map((r) => r.memory).sort()).toEqual(["Use Postgres.", "Which database should I use for my app?"]);
  });

  test("a new session of the same user recalls what an earlier one said", async () => {
    const memory = newMemory();
    const model = new MockLanguageModelV4({ doGenerate: reply("Noted.") });
    const agent = withMemory(agentWith(model), { memory });
    await agent.generate("My favourite editor is Helix.", {
      requestContext: userContext([
        ["userId", "alice"],
        ["runId", "s-1"],
      ]),
    });
    await memory.flush();
    await agent.generate("What is my favourite editor?", {
      requestContext: userContext([
        ["userId", "alice"],
        ["runId", "s-2"],
      ]),
    });
    expect(systemTexts(model.doGenerateCalls[1] as LanguageModelV4CallOptions).join("\n")).toContain("Helix");
  });

  test("without a RequestContext scope, Mastra's memory ids are the scope: resource → userId, thread → runId", async () => {
    const memory = newMemory();
    await memory.add("My dog is called Rex", { userId: "alice" });
    const model = new MockLanguageModelV4({ doGenerate: reply("Rex is a good name.") });
    const agent = withMemory(agentWith(model), { memory });
    await agent.generate("What is my dog called?", { memory: { resource: "alice", thread: "t-1" } });
    expect(systemTexts(model.doGenerateCalls[0] as LanguageModelV4CallOptions).join("\n")).toContain("Rex");
    await memory.flush();
    const { results } = await memory.getAll({ userId: "alice", runId: "t-1" });
    expect(results.map((r) => r.memory).sort()).toEqual(["Rex is a good name.", "What is my dog called?"]);
  });

  test("refuses a call without scope with MissingScopeError before the run, and never calls the model", async () => {
    const memory = newMemory();
    const model = new MockLanguageModelV4({
      doGenerate: reply("never"),
      doStream: { stream: convertArrayToReadableStream(textStream("never")) },
    });
    const agent = withMemory(agentWith(model), { memory });
    await expect(agent.generate("hi")).rejects.toSatisfy((error: unknown) => MissingScopeError.isInstance(error));
    await expect(agent.generate("hi", { requestContext: new RequestContext() })).rejects.toThrow(/requestContext\.set\("userId"/);
    await expect(agent.stream("hi")).rejects.toSatisfy((error: unknown) => MissingScopeError.isInstance(error));
    await expect(agent.generate("hi", { requestContext: userContext([["user_id", "alice"]]) })).rejects.toSatisfy(
      (error: unknown) => InvalidScopeError.isInstance(error) && /did you mean "userId"/.test((error as Error).message),
    );
    expect(model.doGenerateCalls).toHaveLength(0);
    expect(model.doStreamCalls).toHaveLength(0);
  });

  test("other users' memories are never injected", async () => {
    const memory = newMemory();
    await memory.add("Bob's secret is 42", { userId: "bob" });
    const model = new MockLanguageModelV4({ doGenerate: reply("ok") });
    await withMemory(agentWith(model), { memory }).generate("What is Bob's secret?", { requestContext: alice() });
    const call = model.doGenerateCalls[0] as LanguageModelV4CallOptions;
    expect(JSON.stringify(call.prompt)).not.toContain("secret is 42");
    expect(systemTexts(call)).toHaveLength(1);
  });

  test("a tool loop searches once and writes once, with the last step's reply", async () => {
    const memory = newMemory();
    await memory.add("I live in Lisbon", { userId: "alice" });
    const search = vi.spyOn(memory, "search");
    const enqueue = vi.spyOn(memory, "enqueue");
    const model = new MockLanguageModelV4({
      doGenerate: [
        {
          content: [
            { type: "text", text: "Let me check." },
            { type: "tool-call", toolCallId: "c1", toolName: "weather", input: JSON.stringify({ city: "Lisbon" }) },
          ],
          finishReason: { unified: "tool-calls", raw: "tool_calls" },
          usage,
          warnings: [],
        },
        reply("It is sunny in Lisbon."),
      ],
    });
    const weather = createTool({
      id: "weather",
      description: "Weather of a city",
      inputSchema: z.object({ city: z.string() }),
      execute: async () => ({ sky: "sunny" }),
    });
    const agent = withMemory(agentWith(model, { tools: { weather } }), { memory });
    await agent.generate("What's the weather where I live?", { requestContext: alice(), maxSteps: 3 });

    expect(model.doGenerateCalls).toHaveLength(2);
    for (const call of model.doGenerateCalls) expect(systemTexts(call).join()).toContain("Lisbon");
    expect(search).toHaveBeenCalledTimes(1);
    expect(enqueue).toHaveBeenCalledTimes(1);
    expect(enqueue.mock.calls[0]?.[0]).toEqual([
      { role: "user", content: "What's the weather where I live?" },
      { role: "assistant", content: "It is sunny in Lisbon." },
    ]);
  });

  test("the wrapped agent is a new view: the original agent stays without memory", async () => {
    const memory = newMemory();
    await memory.add("I like tea", { userId: "alice" });
    const enqueue = vi.spyOn(memory, "enqueue");
    const model = new MockLanguageModelV4({ doGenerate: reply("ok") });
    const original = agentWith(model);
    const wrapped = withMemory(original, { memory });
    expect(wrapped).toBeInstanceOf(Agent);
    expect(wrapped.name).toBe("assistant");
    expect(await wrapped.getInstructions()).toBe("You are a helpful assistant.");
    await original.generate("What do I like to drink?", { requestContext: alice() });
    expect(systemTexts(model.doGenerateCalls[0] as LanguageModelV4CallOptions)).toHaveLength(1);
    expect(enqueue).not.toHaveBeenCalled();
  });

  test("fails open on a search error: the call goes on without memories and onError sees the error", async () => {
    const memory = newMemory();
    vi.spyOn(memory, "search").mockRejectedValue(new Error("store down"));
    const errors: [EngramError, string][] = [];
    const model = new MockLanguageModelV4({ doGenerate: reply("fine") });
    const agent = withMemory(agentWith(model), { memory, onError: (error, context) => errors.push([error, context.operation]) });
    const result = await agent.generate("hello there", { requestContext: alice() });
    expect(result.text).toBe("fine");
    expect(systemTexts(model.doGenerateCalls[0] as LanguageModelV4CallOptions)).toHaveLength(1);
    expect(errors.map(([error, operation]) => [error.message, operation])).toEqual([[expect.stringContaining("store down"), "recall"]]);
  });

  test("an <engram-memories> block in the agent's own instructions does not switch recall off", async () => {
    const memory = newMemory();
    await memory.add("I like tea", { userId: "alice" });
    const model = new MockLanguageModelV4({ doGenerate: reply("Tea.") });
    const instructions = `Notes:\n<${memoryBlockTag} label="Relevant memories about this user">\n- the app's own notes\n</${memoryBlockTag}>`;
    const agent = new Agent({ id: "assistant", name: "assistant", instructions, model: mastraModel(model) });
    await withMemory(agent, { memory }).generate("What do I like to drink?", { requestContext: alice() });
    const texts = systemTexts(model.doGenerateCalls[0] as LanguageModelV4CallOptions);
    expect(texts).toHaveLength(2);
    expect(texts[0]).toBe(instructions);
    expect(texts[1]).toContain('"I like tea"');
  });

  test("bad options are a ConfigError", () => {
    const model = new MockLanguageModelV4({ doGenerate: reply("x") });
    expect(() => withMemory(agentWith(model), { memory: {} as Memory })).toThrow(ConfigError);
    expect(() => memoryProcessor({ memory: newMemory(), limit: 0 })).toThrow(/limit/);
  });
});

describe("withMemory(agent) and stream", () => {
  test("streams the reply through, sees the block, keeps the agent's processors, remembers the turn once the stream has finished", async () => {
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
    const agent = withMemory(agentWith(model, { inputProcessors: [markerProcessor(seen)], outputProcessors: [outputMarker] }), { memory });
    const output = await agent.stream("Which database?", { requestContext: alice() });
    const chunks: string[] = [];
    for await (const chunk of output.textStream) chunks.push(chunk);
    expect(chunks.join("")).toBe("Postgres is a good default.");
    expect(chunks.length).toBeGreaterThan(1);
    expect(systemTexts(model.doStreamCalls[0] as LanguageModelV4CallOptions).join()).toContain("I prefer Postgres");
    expect(seen).toEqual(["input", "output"]);

    await vi.waitFor(async () => expect((await memory.flush()).processed).toBe(1));
    const { results } = await memory.search("database", { userId: "alice" });
    expect(results.map((r) => r.memory)).toEqual(expect.arrayContaining(["Which database?", "Postgres is a good default."]));
  });

  test("an aborted stream writes nothing", async () => {
    const memory = newMemory();
    const enqueue = vi.spyOn(memory, "enqueue");
    const model = new MockLanguageModelV4({
      doStream: async () => ({
        stream: new ReadableStream<LanguageModelV4StreamPart>({
          async pull(controller) {
            await new Promise((resolve) => setTimeout(resolve, 5));
            controller.enqueue({ type: "text-delta", id: "t", delta: "more " });
          },
        }),
      }),
    });
    const abort = new AbortController();
    const output = await withMemory(agentWith(model), { memory }).stream("count forever", {
      requestContext: alice(),
      abortSignal: abort.signal,
    });
    let chunks = 0;
    for await (const _ of output.textStream) if (++chunks === 3) abort.abort();
    expect(await output.finishReason).toBe("aborted");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(enqueue).not.toHaveBeenCalled();
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
      { memory },
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
      withMemory({ id: "chef", name: "chef", instructions: "You suggest recipes.", model: mastraModel(model) }, { memory }),
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
    const agent = withMemory(agentWith(model), { memory });
    for (const _ of replies) {
      await agent.generate([{ id: "m-1", role: "user", content: "Book my usual table" }], { requestContext: alice() });
    }
    expect((await memory.flush()).processed).toBe(3);
    const { results } = await memory.getAll({ userId: "alice" });
    expect(results.map((r) => r.memory).sort()).toEqual(["Book my usual table", ...replies].sort());
  });

  test("asking the same question twice is two turns, both remembered", async () => {
    const memory = newMemory();
    const enqueue = vi.spyOn(memory, "enqueue");
    const model = new MockLanguageModelV4({ doGenerate: [reply("Monday."), reply("Still Monday.")] });
    const agent = withMemory(agentWith(model), { memory });
    await agent.generate("What day is it?", { requestContext: alice() });
    await agent.generate("What day is it?", { requestContext: alice() });
    await memory.flush();
    expect(enqueue).toHaveBeenCalledTimes(2);
    const { results } = await memory.getAll({ userId: "alice" });
    expect(results.map((r) => r.memory)).toContain("Still Monday.");
  });
});

describe("a search that never answers", () => {
  const deadline = 100;
  // Generous for a loaded test machine, tiny next to a hang.
  const margin = 800;
  const hung: AdapterMemory = { search: () => new Promise(() => {}), enqueue: async () => ({ id: "recorded", queued: true }) };

  test("agent.generate and agent.stream fail open within recallTimeoutMs: the model is called and onError sees a TimeoutError", async () => {
    const errors: [EngramError, string][] = [];
    const model = new MockLanguageModelV4({
      doGenerate: reply("fine"),
      doStream: async () => ({ stream: convertArrayToReadableStream(textStream("streamed fine")) }),
    });
    const agent = withMemory(agentWith(model), {
      memory: hung,
      recallTimeoutMs: deadline,
      onError: (error, context) => errors.push([error, context.operation]),
    });
    let started = performance.now();
    const result = await agent.generate("hello there", { requestContext: alice() });
    expect(performance.now() - started).toBeLessThan(deadline + margin);
    expect(result.text).toBe("fine");
    expect(model.doGenerateCalls).toHaveLength(1);
    expect(systemTexts(model.doGenerateCalls[0] as LanguageModelV4CallOptions)).toHaveLength(1);

    started = performance.now();
    const output = await agent.stream("hello again", { requestContext: alice() });
    expect(await output.text).toBe("streamed fine");
    expect(performance.now() - started).toBeLessThan(deadline + margin);
    expect(model.doStreamCalls).toHaveLength(1);

    expect(errors.map(([error, operation]) => [error.name, operation])).toEqual([
      ["TimeoutError", "recall"],
      ["TimeoutError", "recall"],
    ]);
    for (const [error] of errors) expect([TimeoutError.isInstance(error), (error as TimeoutError).timeoutMs]).toEqual([true, deadline]);
  });

  test("with failOpen: false the wrapped agent's call fails with the TimeoutError and the model is not called", async () => {
    const model = new MockLanguageModelV4({
      doGenerate: reply("never"),
      doStream: async () => ({ stream: convertArrayToReadableStream(textStream("never")) }),
    });
    const agent = withMemory(agentWith(model), { memory: hung, recallTimeoutMs: deadline, failOpen: false });
    const started = performance.now();
    await expect(agent.generate("hi", { requestContext: alice() })).rejects.toSatisfy((error: unknown) => TimeoutError.isInstance(error));
    expect(performance.now() - started).toBeLessThan(deadline + margin);
    await expect(agent.stream("hi", { requestContext: alice() })).rejects.toSatisfy((error: unknown) => TimeoutError.isInstance(error));
    expect(model.doGenerateCalls).toHaveLength(0);
    expect(model.doStreamCalls).toHaveLength(0);
  });

  test("with failOpen: false an agent built from the config fails with Mastra's error carrying the TimeoutError's message", async () => {
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
    expect(performance.now() - started).toBeLessThan(deadline + margin);
    const messages: string[] = [];
    for (let error = failure as { message?: string; cause?: unknown } | undefined; error; error = error.cause as typeof error) {
      messages.push(String(error.message));
    }
    expect(messages.join("\n")).toMatch(/longer than recallTimeoutMs \(100 ms\)/);
    expect(model.doGenerateCalls).toHaveLength(0);
  });
});
