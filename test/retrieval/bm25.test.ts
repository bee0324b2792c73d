import { describe, expect, test } from "vitest";
import { bm25Scores } from "../../src/retrieval/bm25.js";

test("bm25Scores: 0 without a matching term; more occurrences and shorter documents score higher", () => {
  const scores = bm25Scores(["walrus"], ["walrus walrus", "a walrus in a long sentence with many words", "no match here", ""]);
  expect(scores[2]).toBe(0);
  expect(scores[3]).toBe(0);
  expect(scores[0]).toBeGreaterThan(scores[1] as number);
  expect(scores[1]).toBeGreaterThan(0);
});

test("bm25Scores: words match case-insensitively, as whole words", () => {
  const [exact, capitalised, inside] = bm25Scores(["tea"], ["tea", "TEA", "steam"]);
  expect(exact).toBeGreaterThan(0);
  expect(capitalised).toBe(exact);
  expect(inside).toBe(0);
});

test("bm25Scores: documentCount scores the documents as part of a larger corpus (rarer terms weigh more)", () => {
  const documents = ["walrus", "walrus penguin"];
  const alone = bm25Scores(["walrus"], documents);
  const inCorpus = bm25Scores(["walrus"], documents, { documentCount: 1000 });
  expect(inCorpus[0]).toBeGreaterThan(alone[0] as number);
  // A count smaller than the documents given is the documents' own count.
  expect(bm25Scores(["walrus"], documents, { documentCount: 1 })).toEqual(alone);
});

test("bm25Scores: words match by their Porter stems, so inflections of a query word count", () => {
  const [inflected, plural, other] = bm25Scores(["preferences"], ["she preferred tea", "her preference", "she likes tea"]);
  expect(inflected).toBeGreaterThan(0);
  expect(plural).toBeGreaterThan(0);
  expect(other).toBe(0);
  // Two query words with one stem are one term, not two.
  expect(bm25Scores(["run", "running"], ["running late"])).toEqual(bm25Scores(["run"], ["running late"]));
});

describe("bm25Scores (known values, computed by hand)", () => {
  // k1 = 1.2, b = 0.75; idf = ln(1 + (N − df + 0.5) / (df + 0.5));
  // score = Σ idf · tf · (k1 + 1) / (tf + k1 · (1 − b + b · length / averageLength)).
  // Lengths count every word, stop words included: 4, 4, 3 (average 11/3). Query terms are
  // compared by their Porter stems: "bees" → "bee" in the query and in the documents.
  const documents = ["bees love the roof", "bees and more bees", "the roof leaks"];
  const norm = (length: number) => 1 - 0.75 + (0.75 * length) / (11 / 3);

  test("a 3-document corpus: df(bee) = df(roof) = 2, so idf = ln(1 + 1.5/2.5) = ln 1.6 for both", () => {
    const idf = Math.log(1.6);
    const expected = [
      2 * ((idf * 1 * 2.2) / (1 + 1.2 * norm(4))), // bee and roof once each, length 4
      (idf * 2 * 2.2) / (2 + 1.2 * norm(4)), // bee twice, length 4
      (idf * 1 * 2.2) / (1 + 1.2 * norm(3)), // roof once, length 3
    ];
    // The same numbers worked out by hand to 6 places.
    expect(expected.map((n) => Number(n.toFixed(6)))).toEqual([0.906302, 0.630143, 0.507772]);
    const scores = bm25Scores(["bees", "roof"], documents);
    expect(scores).toHaveLength(3);
    for (const [i, score] of scores.entries()) expect(score).toBeCloseTo(expected[i] as number, 12);
  });

  test("the same documents as part of a 10-document corpus: idf = ln(1 + 8.5/2.5) = ln 4.4, lengths still averaged over the given ones", () => {
    const scores = bm25Scores(["bees", "roof"], documents, { documentCount: 10 });
    expect(scores.map((n) => Number(n.toFixed(6)))).toEqual([2.856959, 1.986417, 1.600662]);
  });

  test("other k1 and b: k1 = 2, b = 0 ignores length", () => {
    // idf = ln 1.6; tf · 3 / (tf + 2): 1 → 1, 2 → 1.5
    const idf = Math.log(1.6);
    const scores = bm25Scores(["bees", "roof"], documents, { k1: 2, b: 0 });
    expect(scores.map((n) => Number(n.toFixed(12)))).toEqual([2 * idf, 1.5 * idf, idf].map((n) => Number(n.toFixed(12))));
  });
});
