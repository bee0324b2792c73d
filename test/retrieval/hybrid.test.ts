import { describe, expect, test } from "vitest";
import { fuseHits } from "../../src/retrieval/hybrid.js";
import type { MemoryRecord, ScoredRecord } from "../../src/stores/vector-store.js";

const at = "2025-01-01T00:00:00.000Z";
const record = (id: string, vector?: number[]): MemoryRecord => ({
  id,
  text: `text ${id}`,
  hash: `hash-${id}`,
  userId: "u",
  metadata: {},
  createdAt: at,
  updatedAt: at,
  ...(vector ? { vector: Float32Array.from(vector) } : {}),
});
const hit = (id: string, score: number, vector?: number[]): ScoredRecord => ({ record: record(id, vector), score });
const query = Float32Array.from([1, 0]);

/** [id, score, vectorScore, keywordScore] of each fused hit, in order. */
const table = (hits: ReturnType<typeof fuseHits>) => hits.map((h) => [h.record.id, h.score, h.vectorScore, h.keywordScore] as const);

function expectTable(actual: ReturnType<typeof table>, expected: [string, number, number, number][]) {
  expect(actual.map(([id]) => id)).toEqual(expected.map(([id]) => id));
  for (const [i, [, score, vectorScore, keywordScore]] of expected.entries()) {
    const [id, gotScore, gotVector, gotKeyword] = actual[i] as (typeof actual)[number];
    // Vectors are float32: a cosine of 0.6 is 0.6000000095.
    expect(gotScore, `score of ${id}`).toBeCloseTo(score, 6);
    expect(gotVector, `vectorScore of ${id}`).toBeCloseTo(vectorScore, 6);
    expect(gotKeyword, `keywordScore of ${id}`).toBeCloseTo(keywordScore, 6);
  }
}

describe("fuseHits (known values)", () => {
  test("weight 0.3: vector scores clamped at 0, BM25 divided by the best, keyword-only hits scored by their own vector", () => {
    const fused = fuseHits(
      [hit("a", 0.8), hit("b", -0.2)],
      // b: best BM25 (4). c: half of it, its vector at cosine 0.6 to the query. d: no vector.
      // e: a vector opposite to the query (cosine -1, clamped to 0).
      [hit("b", 4), hit("c", 2, [0.6, 0.8]), hit("d", 1), hit("e", 3, [-1, 0])],
      query,
      0.3,
    );
    // score = 0.7 · vectorScore + 0.3 · keywordScore
    expectTable(table(fused), [
      ["c", 0.57, 0.6, 0.5], // 0.7 · 0.6 + 0.3 · 0.5 = 0.42 + 0.15
      ["a", 0.56, 0.8, 0], // 0.7 · 0.8
      ["b", 0.3, 0, 1], // 0.3 · 4/4
      ["e", 0.225, 0, 0.75], // 0.3 · 3/4
      ["d", 0.075, 0, 0.25], // 0.3 · 1/4
    ]);
    // A keyword hit's vector is used for its score, never returned.
    expect(fused.find((h) => h.record.id === "c")?.record).not.toHaveProperty("vector");
  });

  test("weight 0 ranks by vector alone, weight 1 by keywords alone; keyword hits that all score 0 count as 0", () => {
    const vectorHits = [hit("a", 0.9), hit("b", 0.5)];
    const keywordHits = [hit("b", 6), hit("a", 2)];
    expectTable(table(fuseHits(vectorHits, keywordHits, query, 0)), [
      ["a", 0.9, 0.9, 1 / 3],
      ["b", 0.5, 0.5, 1],
    ]);
    expectTable(table(fuseHits(vectorHits, keywordHits, query, 1)), [
      ["b", 1, 0.5, 1],
      ["a", 1 / 3, 0.9, 1 / 3],
    ]);
    expectTable(table(fuseHits([hit("a", 0.4)], [hit("a", 0), hit("z", 0, [1, 0])], query, 0.5)), [
      ["z", 0.5, 1, 0], // 0.5 · cosine 1
      ["a", 0.2, 0.4, 0],
    ]);
  });

  test("equal scores are ordered by id; no hits give none", () => {
    expect(fuseHits([hit("z", 0.5), hit("m", 0.5), hit("q", 0.5)], [], query, 0.3).map((h) => h.record.id)).toEqual(["m", "q", "z"]);
    expect(fuseHits([], [], query, 0.3)).toEqual([]);
  });
});
