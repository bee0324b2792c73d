import { expect, test } from "vitest";
import type { Embedder } from "../../src/embedders/embedder.js";
import { cacheQueryEmbeddings, wrapEmbedder } from "../../src/embedders/wrap-embedder.js";
import { spiedMemory } from "../support/spies.js";

/** An embedder that records every text it embeds and returns [calls so far, text length]. */
function countingEmbedder(modelId: string) {
  const embedded: string[] = [];
  const embedder: Embedder = {
    dimension: 2,
    modelId,
    async embed(texts) {
      embedded.push(...texts);
      return texts.map((text) => Float32Array.from([embedded.length, text.length]));
    },
  };
  return { embedder, embedded };
}

test("the query-embedding cache keeps the last `size` queries, least recently used out first", async () => {
  const { embedder, embedded } = countingEmbedder("model-a");
  const wrapped = wrapEmbedder(embedder, [cacheQueryEmbeddings({ size: 2 })]);
  const query = (text: string) => wrapped.embed([text], { cacheKey: "scope" });
  const first = await query("a");
  await query("b");
  expect(await query("a")).toEqual(first);
  await query("c"); // evicts "b", the least recently used
  await query("a");
  expect(embedded).toEqual(["a", "b", "c"]);
  await query("b");
  expect(embedded).toEqual(["a", "b", "c", "b"]);
});

test("the query-embedding cache is keyed by model, scope and text, and caches nothing else", async () => {
  const cache = cacheQueryEmbeddings({ size: 10 });
  const a = countingEmbedder("model-a");
  const b = countingEmbedder("model-b");
  const wrappedA = wrapEmbedder(a.embedder, [cache]);
  const wrappedB = wrapEmbedder(b.embedder, [cache]);
  await wrappedA.embed(["q"], { cacheKey: "alice" });
  await wrappedB.embed(["q"], { cacheKey: "alice" });
  expect(b.embedded).toEqual(["q"]);
  await wrappedA.embed(["q"], { cacheKey: "bob" });
  await wrappedA.embed(["q"], { cacheKey: "alice" });
  expect(a.embedded).toEqual(["q", "q"]);
  // Writes (no cacheKey) and batches are never cached.
  await wrappedA.embed(["w"]);
  await wrappedA.embed(["w"]);
  await wrappedA.embed(["x", "y"], { cacheKey: "alice" });
  await wrappedA.embed(["x", "y"], { cacheKey: "alice" });
  expect(a.embedded).toEqual(["q", "q", "w", "w", "x", "y", "x", "y"]);
});

test("a caller changing a cached vector does not change what the next search gets", async () => {
  const { embedder } = countingEmbedder("model-a");
  const wrapped = wrapEmbedder(embedder, [cacheQueryEmbeddings({ size: 4 })]);
  const [first] = (await wrapped.embed(["q"], { cacheKey: "s" })) as [Float32Array];
  const original = Array.from(first);
  first.fill(9);
  const [second] = (await wrapped.embed(["q"], { cacheKey: "s" })) as [Float32Array];
  expect(Array.from(second)).toEqual(original);
  second.fill(7);
  expect(Array.from(((await wrapped.embed(["q"], { cacheKey: "s" })) as [Float32Array])[0])).toEqual(original);
});

test("a failed query embedding is not cached: the next search asks the embedder again", async () => {
  let fail = true;
  const embedded: string[] = [];
  const wrapped = wrapEmbedder(
    {
      dimension: 2,
      async embed(texts) {
        embedded.push(...texts);
        if (fail) throw new Error("down");
        return texts.map(() => Float32Array.from([1, 0]));
      },
    },
    [cacheQueryEmbeddings({ size: 4 })],
  );
  await expect(wrapped.embed(["q"], { cacheKey: "s" })).rejects.toThrow("down");
  fail = false;
  await wrapped.embed(["q"], { cacheKey: "s" });
  await wrapped.embed(["q"], { cacheKey: "s" });
  expect(embedded).toEqual(["q", "q"]);
});

test("Memory.search asked the same question twice in a scope embeds it once; another scope embeds it again", async () => {
  const { memory, calls } = spiedMemory();
  await memory.add([{ role: "user", content: "I drink oat milk in my coffee" }], { userId: "alice" });
  const embedCalls = () => calls.filter((call) => call === "embedder.embed").length;
  const before = embedCalls();
  const first = await memory.search("what milk?", { userId: "alice", threshold: 0 });
  const again = await memory.search("what milk?", { userId: "alice", threshold: 0 });
  expect(again).toEqual(first);
  expect(first.results).toHaveLength(1);
  expect(embedCalls()).toBe(before + 1);
  await memory.search("what milk?", { userId: "bob" });
  await memory.search("what milk?", { userId: "alice", agentId: "barista" });
  expect(embedCalls()).toBe(before + 3);
  await memory.close();
});
