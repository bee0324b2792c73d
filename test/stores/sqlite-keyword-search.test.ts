import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { textHash } from "../../src/internal/hash.js";
import { bm25Scores } from "../../src/retrieval/bm25.js";
import { keywordTerms, rankByBm25 } from "../../src/store-kit/index.js";
import { sqliteStore } from "../../src/stores/sqlite-store.js";
import type { MemoryRecord } from "../../src/stores/vector-store.js";

const directory = mkdtempSync(join(tmpdir(), "engram-sqlite-keyword-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function record(id: string, text: string, scope: { userId?: string; agentId?: string }, at: string): MemoryRecord {
  return { id, text, hash: textHash(text), vector: Float32Array.from([1, 0]), ...scope, metadata: {}, createdAt: at, updatedAt: at };
}

test("bm25Scores takes the corpus's document frequencies when the documents are only some of those holding a term", () => {
  // Corpus of 100 documents, 50 of which hold "walrus": idf = ln(1 + 50.5 / 50.5) = ln 2.
  const [score] = bm25Scores(["walrus"], ["walrus tusks"], { documentCount: 100, documentFrequencies: new Map([["walru", 50]]) });
  expect(score).toBeCloseTo(Math.log(2), 12);
  // Without them, the one document given is the only holder: idf = ln(1 + 99.5 / 1.5).
  expect(bm25Scores(["walrus"], ["walrus tusks"], { documentCount: 100 })[0]).toBeCloseTo(Math.log(1 + 99.5 / 1.5), 12);
});

test("a scope where the query's words match thousands of memories: keyword search ranks and scores like BM25 over the whole scope", async () => {
  const store = sqliteStore({ path: join(directory, "large.db") });
  await store.init({ dimension: 2 });
  const team = { agentId: "team" };
  const at = (i: number) => new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString();
  // Every text has four words, so BM25's average length is the same whichever memories are scored.
  const scope = Array.from({ length: 2_400 }, (_, i) =>
    record(`walrus-${String(i).padStart(4, "0")}`, `walrus note number n${i}`, team, at(i)),
  );
  scope.push(
    record("both-a", "narwhal walrus note one", team, at(0)),
    record("both-b", "narwhal walrus note two", team, at(1)),
    record("narwhal-a", "narwhal pod note three", team, at(2)),
    record("narwhal-b", "narwhal pod note four", team, at(3)),
  );
  // Another scope full of narwhals: the team's frequencies must not see them.
  const elsewhere = Array.from({ length: 300 }, (_, i) => record(`other-${i}`, `narwhal narwhal pod n${i}`, { agentId: "other" }, at(i)));
  await store.write({ upsert: [...scope, ...elsewhere] });

  const expected = rankByBm25(keywordTerms("walrus narwhal"), scope, { limit: 5 });
  expect(expected.map((hit) => hit.candidate.id)).toEqual(["both-a", "both-b", "narwhal-a", "narwhal-b", "walrus-0000"]);
  const hits = await store.keywordSearch({ text: "walrus narwhal", filter: { scope: team }, limit: 4 });
  expect(hits.map((hit) => hit.record.id)).toEqual(["both-a", "both-b", "narwhal-a", "narwhal-b"]);
  hits.forEach((hit, i) => {
    expect(hit.score).toBeCloseTo(expected[i]?.score as number, 9);
  });
  // A word that common alone: the scores are still the scope's, over the newest memories holding it.
  const common = await store.keywordSearch({ text: "walrus", filter: { scope: team }, limit: 3 });
  const exactCommon = rankByBm25(["walrus"], scope, { limit: 1 })[0]?.score as number;
  expect(common).toHaveLength(3);
  for (const hit of common) {
    expect(hit.record.text).toContain("walrus");
    expect(hit.score).toBeCloseTo(exactCommon, 9);
  }
  await store.close();
});

test("a scope where one query word is in every memory and another in a few: keyword search reads the few, ranks and scores them as BM25 over the whole scope, and estimates the common word's frequency", async () => {
  const store = sqliteStore({ path: join(directory, "estimated.db") });
  await store.init({ dimension: 2 });
  const team = { userId: "team" };
  const at = (i: number) => new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString();
  // 9,000 memories hold "walrus": more than are counted one by one, so its frequency is estimated.
  const scope = Array.from({ length: 9_000 }, (_, i) =>
    record(`walrus-${String(i).padStart(4, "0")}`, `walrus note number n${i}`, team, at(i)),
  );
  scope.push(
    record("narwhal-twice", "narwhal narwhal walrus n1", team, at(1)),
    record("narwhal-a", "narwhal walrus note a", team, at(2)),
    record("narwhal-b", "walrus narwhal note b", team, at(3)),
  );
  const elsewhere = Array.from({ length: 200 }, (_, i) => record(`other-${i}`, `narwhal narwhal walrus n${i}`, { userId: "other" }, at(i)));
  await store.write({ upsert: [...scope, ...elsewhere] });

  const expected = rankByBm25(keywordTerms("narwhal walrus"), scope, { limit: 3 });
  expect(expected.map((hit) => hit.candidate.id)).toEqual(["narwhal-twice", "narwhal-a", "narwhal-b"]);
  const hits = await store.keywordSearch({ text: "narwhal walrus", filter: { scope: team }, limit: 3 });
  expect(hits.map((hit) => hit.record.id)).toEqual(["narwhal-twice", "narwhal-a", "narwhal-b"]);
  hits.forEach((hit, i) => {
    expect(hit.score).toBeCloseTo(expected[i]?.score as number, 9);
  });
  // Past the three, memories holding "walrus" only fill the limit, with the scope's score for it.
  const more = await store.keywordSearch({ text: "narwhal walrus", filter: { scope: team }, limit: 6 });
  const walrusOnly = rankByBm25(["walrus"], scope, { limit: 1 })[0]?.score as number;
  expect(more.slice(0, 3).map((hit) => hit.record.id)).toEqual(["narwhal-twice", "narwhal-a", "narwhal-b"]);
  for (const hit of more.slice(3)) {
    expect(hit.record.id).toMatch(/^walrus-/);
    expect(hit.score).toBeCloseTo(walrusOnly, 9);
  }
  await store.close();
});
