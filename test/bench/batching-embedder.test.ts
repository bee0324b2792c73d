import { describe, expect, it } from "vitest";
import { batchingEmbedder } from "../../bench/support/batching-embedder.js";
import { deterministicEmbedder } from "../../src/testing/index.js";

describe("batchingEmbedder", () => {
  it("merges concurrent calls into one call of the inner embedder and hands each caller its own vectors", async () => {
    const inner = deterministicEmbedder({ dimension: 16 });
    const embedder = batchingEmbedder(inner, { maxBatch: 64 });
    const [a, b] = await Promise.all([embedder.embed(["one fish", "two fish"]), embedder.embed(["red fish"])]);
    expect(inner.calls).toEqual([["one fish", "two fish", "red fish"]]);
    expect([...(a[1] as Float32Array)]).toEqual([
      ...((await deterministicEmbedder({ dimension: 16 }).embed(["two fish"]))[0] as Float32Array),
    ]);
    expect(b).toHaveLength(1);
  });

  it("splits at maxBatch and rejects only the callers of a failed batch", async () => {
    let calls = 0;
    const embedder = batchingEmbedder(
      {
        dimension: 2,
        async embed(texts) {
          calls++;
          if (texts.includes("bad")) throw new Error("model failed");
          return texts.map(() => new Float32Array([1, 0]));
        },
      },
      { maxBatch: 2 },
    );
    const results = await Promise.allSettled([embedder.embed(["a", "b"]), embedder.embed(["bad"]), embedder.embed(["c"])]);
    expect(calls).toBe(2);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected"]);
  });
});
