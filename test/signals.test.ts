import { generateText } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { expect, test } from "vitest";
import { withMemory } from "../integrations/ai-sdk/index.js";
import { inMemoryHistory } from "../src/history/in-memory-history.js";
import { Memory } from "../src/memory.js";
import { inMemoryStore } from "../src/stores/in-memory-store.js";
import { controllableEmbedder } from "./support/faults.js";

// An AbortSignal reaches every layer of a search: the caller stops waiting at once, the embedder
// is told, and an aborted add writes nothing.

function setup() {
  const control = controllableEmbedder();
  const signals: (AbortSignal | undefined)[] = [];
  const embedder = {
    ...control.embedder,
    embed: (texts: string[], options?: { signal?: AbortSignal }) => {
      signals.push(options?.signal);
      return control.embedder.embed(texts);
    },
  };
  const memory = new Memory({ embedder, vectorStore: inMemoryStore(), historyStore: inMemoryHistory(), writeBehind: { enabled: false } });
  return { memory, control, signals };
}

test("search(…, { signal }) rejects with the signal's reason as soon as it aborts, and the embedder got a signal that aborted too", async () => {
  const { memory, control, signals } = setup();
  await memory.add("I like tea", { userId: "alice" });
  const paused = control.hold("drinks");
  const controller = new AbortController();
  const search = memory.search("drinks", { userId: "alice", signal: controller.signal }).catch((e: unknown) => e);
  await paused.reached;
  const reason = new Error("the user went away");
  controller.abort(reason);
  expect(await search).toBe(reason);
  expect(signals.at(-1)?.aborted).toBe(true);
  paused.release();
  await memory.close();
});

test("add(…, { signal }) aborted while it is being decided writes nothing", async () => {
  const { memory, control } = setup();
  const paused = control.hold("coffee");
  const controller = new AbortController();
  const adding = memory.add("I like coffee", { userId: "alice", signal: controller.signal }).catch((e: unknown) => e);
  await paused.reached;
  controller.abort();
  paused.release();
  expect(((await adding) as Error).name).toBe("AbortError");
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect((await memory.getAll({ userId: "alice" })).results).toEqual([]);
  await memory.close();
});

test("a signal that is not an AbortSignal is refused, and enqueue takes none (a queued turn outlives its request)", async () => {
  const { memory } = setup();
  await expect(memory.search("x", { userId: "alice", signal: "stop" as unknown as AbortSignal })).rejects.toThrow(
    /signal must be an AbortSignal/,
  );
  await expect(
    memory.enqueue("x", { userId: "alice", signal: new AbortController().signal } as unknown as Parameters<Memory["enqueue"]>[1]),
  ).rejects.toThrow(/Unknown option "signal"/);
  await memory.close();
});

test("the AI SDK middleware passes the call's abortSignal to its memory search", async () => {
  const { memory, signals } = setup();
  await memory.add("I like tea", { userId: "alice" });
  const model = new MockLanguageModelV4({
    doGenerate: async () => ({
      content: [{ type: "text", text: "ok" }],
      finishReason: { unified: "stop", raw: "stop" },
      usage: { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } },
      warnings: [],
    }),
  });
  const controller = new AbortController();
  await generateText({
    model: withMemory(model, { memory, remember: false }),
    prompt: "what do I drink?",
    abortSignal: controller.signal,
    providerOptions: { memory: { userId: "alice" } },
  });
  expect(signals.at(-1)).toBeDefined();
  controller.abort();
  expect(signals.at(-1)?.aborted).toBe(true);
  await memory.close();
});
