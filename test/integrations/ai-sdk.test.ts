import type { LanguageModelV4CallOptions, LanguageModelV4StreamPart } from "@ai-sdk/provider";
import { generateText, isStepCount, streamText, tool } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { afterEach, describe, expect, test, vi } from "vitest";
import { z } from "zod";
import { type MemoryScope, memoryScope, warmUp, withMemory } from "../../integrations/ai-sdk/index.js";
import type { AdapterMemory } from "../../integrations/shared/options.js";
import { type EngramError, InvalidScopeError, Memory, MissingScopeError, TimeoutError } from "../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../../src/testing/index.js";
import { type AdapterDriver, type CallScope, testAdapterScenarios } from "./adapter-scenarios.js";
import { reply, scriptedAiSdkModel, systemTexts, usage } from "./scripted-ai-sdk-model.js";

const aiSdk: AdapterDriver = {
  name: "AI SDK (withMemory with generateText / streamText)",
  scopeHint: /providerOptions\.memory.*\{ userId: "alice" \}/,
  recallsEachStep: true,
  setup({ memory, adapter, instructions, steps, onTool }) {
    const { model, calls } = scriptedAiSdkModel(steps);
    const wrapped = withMemory(model, { memory, ...adapter });
    const weather = tool({
      inputSchema: z.object({ city: z.string() }),
      execute: async () => {
        await onTool?.();
        return { sky: "sunny" };
      },
    });
    const call = (prompt: string, scope: CallScope | undefined) => ({
      model: wrapped,
      system: instructions,
      prompt,
      tools: { weather },
      stopWhen: isStepCount(4),
      maxRetries: 0,
      ...(scope ? { providerOptions: { memory: scope } } : {}),
    });
    return {
      calls,
      async generate(prompt, scope) {
        return (await generateText(call(prompt, scope))).text;
      },
      async stream(prompt, scope) {
        const errors: unknown[] = [];
        const result = streamText({ ...call(prompt, scope), onError: ({ error }) => void errors.push(error) });
        await result.consumeStream();
        if (errors.length > 0) throw errors[0];
        return result.text;
      },
      async streamAborted(prompt, scope) {
        const abort = new AbortController();
        const result = streamText({ ...call(prompt, scope), abortSignal: abort.signal, onError: () => {} });
        try {
          for await (const _ of result.textStream) abort.abort();
        } catch {
          // The aborted stream ends in an AbortError.
        }
        await result.consumeStream({ onError: () => {} });
      },
    };
  },
};

testAdapterScenarios(aiSdk);

const memories: Memory[] = [];
function newMemory(options: ConstructorParameters<typeof Memory>[0] = {}) {
  const memory = new Memory({
    embedder: deterministicEmbedder(),
    vectorStore: inMemoryStore(),
    historyStore: inMemoryHistory(),
    ...options,
  });
  memories.push(memory);
  return memory;
}
afterEach(async () => {
  await Promise.all(memories.splice(0).map((m) => m.close()));
});

describe("memoryScope: the scope of a call, typed", () => {
  test("scope mistakes in providerOptions are compile errors: a snake_case key, no id, an unknown key", () => {
    // @ts-expect-error user_id is not a scope key (userId is)
    const snake: MemoryScope = { user_id: "alice" };
    // @ts-expect-error a scope needs at least one id
    const none: MemoryScope = {};
    // @ts-expect-error sessionId is not a scope key
    const unknown: MemoryScope = { userId: "alice", sessionId: "s-1" };
    expect([snake, none, unknown]).toHaveLength(3);
    expect(memoryScope({ userId: "alice", runId: "s-1" })).toEqual({ memory: { userId: "alice", runId: "s-1" } });
  });

  test("an untyped scope is still refused at run time with a typed error, before the call", () => {
    expect(() => memoryScope(JSON.parse('{"user_id":"alice"}'))).toThrow(InvalidScopeError);
    expect(() => memoryScope(JSON.parse("{}"))).toThrow(MissingScopeError);
  });

  test("a call whose scope is missing fails with MissingScopeError naming providerOptions.memory, and the model is never called", async () => {
    const memory = newMemory();
    const model = new MockLanguageModelV4({ doGenerate: reply("Hi.") });
    const error = await generateText({ model: withMemory(model, { memory }), prompt: "Hi", maxRetries: 0 }).catch((e: unknown) => e);
    expect(MissingScopeError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain("providerOptions.memory");
    expect((error as Error).message).toContain("memoryScope(");
    expect(model.doGenerateCalls).toHaveLength(0);
  });

  test("memoryScope's result is what the middleware reads, next to other providers' options", async () => {
    const memory = newMemory();
    await memory.add("I like tea", { userId: "alice" });
    const model = new MockLanguageModelV4({ doGenerate: reply("Tea.") });
    await generateText({
      model: withMemory(model, { memory }),
      prompt: "What do I like to drink?",
      providerOptions: { ...memoryScope({ userId: "alice" }), openai: { user: "x" } },
    });
    const call = model.doGenerateCalls[0] as LanguageModelV4CallOptions;
    expect(call.providerOptions).toEqual({ openai: { user: "x" } });
    expect(systemTexts(call)[0]).toContain('"I like tea"');
  });
});

describe("withMemory: what only the AI SDK adapter does", () => {
  test("reads the scope from providerOptions.memory and takes it out, passing the other provider options on; the block is a system message of its own", async () => {
    const memory = newMemory();
    await memory.add("I prefer Postgres for everything except analytics", { userId: "alice" });
    const model = new MockLanguageModelV4({ doGenerate: reply("Use Postgres.") });
    await generateText({
      model: withMemory(model, { memory, threshold: 0 }),
      system: "You are a helpful assistant.",
      prompt: "Which database should I use for my app?",
      providerOptions: { memory: { userId: "alice", runId: "s-1" }, openai: { user: "x" } },
    });
    const call = model.doGenerateCalls[0] as LanguageModelV4CallOptions;
    expect(call.providerOptions).toEqual({ openai: { user: "x" } });
    expect(call.prompt.map((m) => m.role)).toEqual(["system", "system", "user"]);
    expect(systemTexts(call)[0]).toBe("You are a helpful assistant.");
    expect(systemTexts(call)[1]).toContain('"I prefer Postgres for everything except analytics"');
  });

  test("the same turn with the same reply has the same write key, so a retried call is written once", async () => {
    const memory = newMemory();
    const enqueue = vi.spyOn(memory, "enqueue");
    const model = new MockLanguageModelV4({ doGenerate: reply("Booked.") });
    const wrapped = withMemory(model, { memory, threshold: 0 });
    for (let i = 0; i < 2; i++) {
      await generateText({ model: wrapped, prompt: "Book my usual table", providerOptions: { memory: { userId: "alice" } } });
    }
    expect(enqueue).toHaveBeenCalledTimes(2);
    expect(new Set(enqueue.mock.calls.map(([, options]) => options.idempotencyKey)).size).toBe(1);
    expect((await memory.flush()).processed).toBe(1);
  });

  test("a model wrapped twice gets Engram's block once: the inner wrapper recognises the outer one's block", async () => {
    const memory = newMemory();
    await memory.add("I like tea", { userId: "alice" });
    const search = vi.spyOn(memory, "search");
    const model = new MockLanguageModelV4({ doGenerate: reply("Tea.") });
    await generateText({
      // The outer wrapper takes providerOptions.memory away: the inner one is given the scope.
      model: withMemory(withMemory(model, { memory, threshold: 0, remember: false, scope: () => ({ userId: "alice" }) }), {
        memory,
        threshold: 0,
      }),
      prompt: "What do I like to drink?",
      providerOptions: { memory: { userId: "alice" } },
    });
    expect(search).toHaveBeenCalledTimes(1);
    expect(systemTexts(model.doGenerateCalls[0] as LanguageModelV4CallOptions)).toHaveLength(1);
  });

  test("streamText: chunks pass straight through, and the turn is written only after the model's stream is drained", async () => {
    const memory = newMemory();
    const enqueue = vi.spyOn(memory, "enqueue");
    let source!: ReadableStreamDefaultController<LanguageModelV4StreamPart>;
    const model = new MockLanguageModelV4({
      doStream: async () => ({
        stream: new ReadableStream<LanguageModelV4StreamPart>({
          start(controller) {
            source = controller;
          },
        }),
      }),
    });
    const result = streamText({
      model: withMemory(model, { memory, threshold: 0 }),
      prompt: "Which database?",
      providerOptions: { memory: { userId: "alice" } },
    });
    const reader = result.textStream[Symbol.asyncIterator]();
    await vi.waitFor(() => expect(source).toBeDefined());

    source.enqueue({ type: "stream-start", warnings: [] });
    source.enqueue({ type: "text-start", id: "t" });
    source.enqueue({ type: "text-delta", id: "t", delta: "Postgres is" });
    // The first chunk reaches the reader while the model is still streaming: nothing held back.
    expect((await reader.next()).value).toBe("Postgres is");
    expect(enqueue).not.toHaveBeenCalled();

    source.enqueue({ type: "text-delta", id: "t", delta: " a good default." });
    expect((await reader.next()).value).toBe(" a good default.");
    expect(enqueue).not.toHaveBeenCalled();

    source.enqueue({ type: "text-end", id: "t" });
    source.enqueue({ type: "finish", finishReason: { unified: "stop", raw: "stop" }, usage });
    source.close();
    expect((await reader.next()).done).toBe(true);
    await vi.waitFor(() => expect(enqueue).toHaveBeenCalledTimes(1));
    expect(enqueue.mock.calls[0]?.[0]).toEqual([
      { role: "user", content: "Which database?" },
      { role: "assistant", content: "Postgres is a good default." },
    ]);
    await memory.flush();
    const { results } = await memory.search("database", { userId: "alice", threshold: 0 });
    expect(results.map((r) => r.memory)).toContain("Postgres is a good default.");
  });
});

/** A memory whose search never answers (a hung embedder or store). */
const hungMemory = (): AdapterMemory => ({ search: () => new Promise(() => {}), enqueue: async () => ({ id: "recorded", queued: true }) });

describe("recall deadline and warm-up: what only the AI SDK adapter does", () => {
  test("the default deadline is 500 ms", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const errors: EngramError[] = [];
      const model = new MockLanguageModelV4({ doGenerate: reply("fine") });
      let done = false;
      const call = generateText({
        model: withMemory(model, { memory: hungMemory(), onError: (error) => errors.push(error) }),
        prompt: "hello there",
        providerOptions: { memory: { userId: "alice" } },
      }).finally(() => {
        done = true;
      });
      await vi.advanceTimersByTimeAsync(499);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect((await call).text).toBe("fine");
      expect((errors[0] as TimeoutError).timeoutMs).toBe(500);
    } finally {
      vi.useRealTimers();
    }
  });

  test("warmUp gets a memory ready with one search in a scope of its own, and reports a hung one as a TimeoutError", async () => {
    const real = newMemory();
    const search = vi.spyOn(real, "search");
    await warmUp(real);
    expect(search).toHaveBeenCalledTimes(1);
    const [, options] = search.mock.calls[0] as Parameters<Memory["search"]>;
    expect(Object.keys(options).sort()).toEqual(["limit", "runId"]);
    expect(options.runId).toMatch(/^engram-warm-up-/);
    await expect(warmUp(hungMemory(), { timeoutMs: 50 })).rejects.toSatisfy(
      (error: unknown) => TimeoutError.isInstance(error) && (error as TimeoutError).operation === "warm-up",
    );
  });
});
