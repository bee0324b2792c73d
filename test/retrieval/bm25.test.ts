import { expect, test } from "vitest";
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
