import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { loadNodeSqlite } from "../../src/internal/node-sqlite.js";
import { lifecycleKey } from "../../src/memory-origin.js";
import { stem } from "../../src/retrieval/keywords.js";
import { type ScopeTerms, type ScopeWords, scopeWords } from "../../src/retrieval/scope-words.js";
import type { ValidScope } from "../../src/scope.js";
import { sqliteStore } from "../../src/stores/sqlite-store.js";
import type { MemoryRecord } from "../../src/stores/vector-store.js";

// The word statistics of a scope past LARGE_SCOPE, kept in process and read again when the
// store's token for the scope changes (sqliteStore: counters bumped by triggers).

const directory = mkdtempSync(join(tmpdir(), "engram-scope-words-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let files = 0;

const minute = 60_000;
const start = Date.UTC(2025, 0, 1, 10);
const record = (id: string, text: string, at: number, userId = "alice"): MemoryRecord => {
  const iso = new Date(start + at).toISOString();
  return { id, text, hash: `h-${text}`, vector: Float32Array.from([1, 0]), userId, metadata: {}, createdAt: iso, updatedAt: iso };
};
const alice = { userId: "alice" } as ValidScope;

/** A new store file of 2-d vectors, empty. */
async function emptyStore() {
  const path = join(directory, `store-${files++}.db`);
  const store = sqliteStore({ path });
  await store.init({ dimension: 2 });
  return { store, path };
}

async function newStore() {
  const { store, path } = await emptyStore();
  await store.write({
    upsert: [
      record("m1", "walrus colony north shore", 0),
      record("m2", "walrus walrus keeper", minute),
      record("m3", "blue kettle", 2 * minute),
      // A day later: another session.
      record("m4", "dentist tuesday", 24 * 60 * minute),
      record("b1", "walrus walrus walrus", 0, "bob"),
    ],
  });
  return { store, path };
}

/** Deterministic numbers in [0, 1) from `seed` (a linear congruential generator). */
function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    return state / 2 ** 32;
  };
}

/** Every memory's BM25 by position, and the positions scoring above 0, best first (ties: the smaller position): the brute-force ranking. */
function byBm25(words: ScopeWords, terms: ScopeTerms): { scores: number[]; order: number[] } {
  const scores = Array.from({ length: words.count }, (_, position) => terms.bm25(position));
  const order = [...scores.keys()]
    .filter((position) => (scores[position] as number) > 0)
    .sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
  return { scores, order };
}

/** BM25 of the window of the memory at `position` (k1 = 1.2, b = 0.75), from its window counts: the brute-force reference. */
function windowScore(words: ScopeWords, terms: ScopeTerms, stems: readonly string[], position: number): number {
  const { tf, length } = terms.counts(position);
  let score = 0;
  for (const term of stems) {
    const count = tf.get(term) ?? 0;
    if (count === 0) continue;
    const idf = Math.log(1 + (words.count - words.windowFrequency(term) + 0.5) / (words.windowFrequency(term) + 0.5));
    score += (idf * count * 2.2) / (count + 1.2 * (0.25 + (0.75 * length) / words.averageWindowLength));
  }
  return score;
}

test("scope words: sessions, document and window frequencies, windows and BM25 order of the scope's own memories", async () => {
  const { store } = await newStore();
  const words = await scopeWords(store, alice);
  if (!words) throw new Error("sqliteStore versions its scopes");
  const walrus = stem("walrus");
  expect(words.count).toBe(4);
  expect(words.ids).toEqual(["m1", "m2", "m3", "m4"]);
  expect([...words.session]).toEqual([0, 0, 0, 1]);
  // bob's memory is not counted.
  expect(words.documentFrequency(walrus)).toBe(2);
  // Windows holding it: m1 (m1 m2), m2 (m1 m2 m3), m3 (m2 m3); not m4, alone in its session.
  expect(words.windowFrequency(walrus)).toBe(3);
  expect(words.documentFrequency("unknown")).toBe(0);
  expect(words.averageLength).toBe(11 / 4);
  expect(words.averageWindowLength).toBe((7 + 9 + 5 + 2) / 4);
  const both = words.terms([walrus, stem("kettle")]);
  expect(both.counts(0)).toEqual({ tf: new Map([[walrus, 3]]), length: 7 });
  expect(both.counts(1, true)).toEqual({ tf: new Map([[walrus, 2]]), length: 3 });
  expect(both.counts(2)).toEqual({
    tf: new Map([
      [walrus, 2],
      [stem("kettle"), 1],
    ]),
    length: 5,
  });
  expect(words.terms([walrus]).counts(3)).toEqual({ tf: new Map(), length: 2 });
  // BM25 over the scope: 4 memories, 2 hold it; m2 says it twice in 3 words (average 2.75).
  const walrusOnly = words.terms([walrus]);
  expect(walrusOnly.bm25(1)).toBeCloseTo((Math.log(2) * 2 * 2.2) / (2 + 1.2 * (0.25 + (0.75 * 3) / 2.75)), 12);
  expect(walrusOnly.bm25(2)).toBe(0);
  // m2 says it twice in fewer words; m1 once; nothing else holds it.
  expect(walrusOnly.best(10)).toEqual([1, 0]);
  expect(walrusOnly.best(1)).toEqual([1]);
  expect(walrusOnly.best(10, walrusOnly.bm25(1))).toEqual([1]);
  expect(both.best(10)).toEqual([2, 1, 0]);
  // Windows: m1's (3 in 7 words) beats m3's (2 in 5) and m2's (3 in 9).
  expect(walrusOnly.bestWindow()).toBe(0);
  expect(words.terms([stem("dentist")]).bestWindow()).toBe(3);
  expect(words.terms(["unknown"]).bestWindow()).toBeUndefined();
  await store.close();
});

test("scope words are read again after a write inside the scope, by this process or another connection, and not after another scope's", async () => {
  const { store, path } = await newStore();
  const first = await scopeWords(store, alice);
  expect(await scopeWords(store, alice)).toBe(first);
  const version = await store.scopeVersion({ scope: alice });
  // Another scope's write leaves alice's token and statistics as they were.
  await store.write({ upsert: [record("b2", "kettle", 3 * minute, "bob")] });
  expect(await store.scopeVersion({ scope: alice })).toBe(version);
  expect(await scopeWords(store, alice)).toBe(first);
  // A write of this process inside the scope.
  await store.write({ upsert: [record("m5", "walrus again", 3 * minute)] });
  expect(await store.scopeVersion({ scope: alice })).not.toBe(version);
  const second = await scopeWords(store, alice);
  expect(second?.ids).toEqual(["m1", "m2", "m3", "m5", "m4"]);
  expect(second?.documentFrequency(stem("walrus"))).toBe(3);
  // An update of a text in place.
  await store.write({ upsert: [{ ...record("m3", "blue walrus", 2 * minute), updatedAt: new Date(start + 5 * minute).toISOString() }] });
  expect((await scopeWords(store, alice))?.documentFrequency(stem("walrus"))).toBe(4);
  // A delete made by another connection to the file (as another process would).
  const other = new (loadNodeSqlite().DatabaseSync)(path, { allowExtension: true });
  (await import("sqlite-vec")).load(other);
  other.prepare("DELETE FROM memories WHERE id = ?").run("m2");
  other.close();
  const third = await scopeWords(store, alice);
  expect(third?.ids).toEqual(["m1", "m3", "m5", "m4"]);
  expect(third?.documentFrequency(stem("walrus"))).toBe(3);
  // m1 and m3 are neighbours now.
  expect(third?.terms([stem("blue")]).counts(0)).toEqual({ tf: new Map([[stem("blue"), 1]]), length: 6 });
  await store.close();
});

test("scopeVersion: every scope id of a written row counts; a scope is versioned by its first id", async () => {
  const { store } = await newStore();
  const scoped = { userId: "alice", agentId: "a1" };
  const before = await store.scopeVersion({ scope: scoped });
  const agentOnly = await store.scopeVersion({ scope: { agentId: "a1" } });
  expect(await store.scopeVersion({ scope: { runId: "never-written" } })).toBe("0");
  await store.write({ upsert: [{ ...record("x1", "walrus", 0), agentId: "a1" }] });
  expect(await store.scopeVersion({ scope: scoped })).not.toBe(before);
  expect(await store.scopeVersion({ scope: { agentId: "a1" } })).not.toBe(agentOnly);
  const afterWrite = await store.scopeVersion({ scope: { agentId: "a1" } });
  await store.deleteMany({ scope: { agentId: "a1" } });
  expect(await store.scopeVersion({ scope: { agentId: "a1" } })).not.toBe(afterWrite);
  await store.close();
});

test("scope terms: BM25 top hits, floors and best windows equal a brute-force ranking, query after query (shared work arrays left clean)", async () => {
  const { store } = await emptyStore();
  const random = seededRandom(5);
  const vocabulary = "walrus kettle dentist ferry shore colony tea boat billing piano garden lantern".split(" ");
  const pick = () => vocabulary[Math.floor(random() * random() * vocabulary.length)] as string;
  await store.write({
    upsert: Array.from({ length: 300 }, (_, i) =>
      // Sessions of 10, an hour apart.
      record(`m${i}`, Array.from({ length: 2 + (i % 6) }, pick).join(" "), Math.floor(i / 10) * 60 * minute + (i % 10) * minute),
    ),
  });
  const words = await scopeWords(store, alice);
  if (!words) throw new Error("sqliteStore versions its scopes");
  for (let q = 0; q < 25; q++) {
    const stems = [...new Set(Array.from({ length: 1 + (q % 4) }, () => stem(pick())))];
    const terms = words.terms(stems);
    const { scores, order } = byBm25(words, terms);
    expect(terms.best(40)).toEqual(order.slice(0, 40));
    const floor = scores[order[25] as number] as number;
    expect(terms.best(700, floor)).toEqual(order.filter((position) => (scores[position] as number) >= floor));
    expect(terms.best(1)).toEqual(order.slice(0, 1));
    // The best window by the windows' BM25, from each memory's window counts.
    const windows = scores.map((_, position) => windowScore(words, terms, stems, position));
    const bestWindow = [...windows.keys()]
      .filter((position) => (windows[position] as number) > 0)
      .sort((a, b) => (windows[b] as number) - (windows[a] as number) || a - b)[0];
    expect(terms.bestWindow()).toBe(bestWindow);
  }
  await store.close();
});

test("scope terms in a scope where frequent stems can be left unread: BM25 top hits and the best window equal a brute-force ranking", async () => {
  const { store } = await emptyStore();
  const random = seededRandom(11);
  // "walrus" in every memory, "kettle" in about half, "ferry" in about a third (at most 3 times),
  // and twenty rare words in about 30 memories each: a query's rare stems rank more than the 600
  // memories asked for, or the best window, before the frequent stems are read. 24,000 memories: then
  // "walrus" has more postings than the memories left in the running, many times over, and is
  // counted from those memories' own words.
  const rare = Array.from({ length: 20 }, (_, k) => `lantern${String.fromCharCode(97 + k)}`);
  const text = () => {
    const words = ["walrus", "walrus", "shore"];
    if (random() < 0.5) words.push("kettle");
    if (random() < 0.33) for (let k = 1 + Math.floor(random() * 3); k > 0; k--) words.push("ferry");
    if (random() < 0.3) words.push(rare[Math.floor(random() * rare.length)] as string);
    for (let k = Math.floor(random() * 6); k > 0; k--) words.push("tea");
    return words.join(" ");
  };
  await store.write({
    upsert: Array.from({ length: 24_000 }, (_, i) => record(`m${i}`, text(), Math.floor(i / 12) * 60 * minute + (i % 12) * minute)),
  });
  const words = await scopeWords(store, alice);
  if (!words) throw new Error("sqliteStore versions its scopes");
  const queries = [
    ["ferry", "walrus"],
    ["ferry", "kettle", "walrus"],
    ["lanterna", "walrus"],
    ["lanternb", "lanternc", "kettle", "walrus"],
    ["lanternd", "ferry", "tea", "walrus"],
    ["tea", "walrus"],
  ];
  for (const query of queries) {
    const stems = query.map(stem);
    const terms = words.terms(stems);
    const { scores, order } = byBm25(words, terms);
    const top = terms.best(600);
    expect(top).toEqual(order.slice(0, 600));
    // Their scores as the pass summed them (stems left unread or read from the memories' own words), to the bit.
    expect(top.map((position) => terms.bm25(position))).toEqual(top.map((position) => scores[position]));
    expect(terms.best(150)).toEqual(order.slice(0, 150));
    const windows = scores.map((_, position) => windowScore(words, terms, stems, position));
    const best = Math.max(...windows);
    const window = terms.bestWindow() as number;
    // The same window, or one scoring the same but for the order its stems were summed in.
    expect(Math.abs((windows[window] as number) - best)).toBeLessThan(1e-9 * best);
    expect(window).toBe(windows.findIndex((score) => Math.abs(score - best) < 1e-9 * best));
  }
  await store.close();
});

test("an expiring memory: the statistics say when the first expires, keep it until then, and leave it out once read after", async () => {
  const { store } = await emptyStore();
  const expiring = (id: string, text: string, at: number, expiresAt: number) => ({
    ...record(id, text, at),
    metadata: { [lifecycleKey]: { expiresAt: new Date(expiresAt).toISOString() } },
  });
  const soon = start + 60 * minute;
  const later = start + 120 * minute;
  await store.write({
    upsert: [
      record("m1", "walrus colony", 0),
      expiring("m2", "walrus keeper", minute, later),
      expiring("m3", "walrus shore", 2 * minute, soon),
    ],
  });
  const before = await scopeWords(store, alice, { now: () => start + 10 * minute });
  expect(before?.expires).toBe(soon);
  expect(before?.ids).toEqual(["m1", "m2", "m3"]);
  expect(before?.at(2).expires).toBe(soon);
  expect(before?.at(0).expires).toBeUndefined();
  // Past m3's expiry the statistics are read again without it; m2's expiry is the next.
  const after = await scopeWords(store, alice, { now: () => soon });
  expect(after?.ids).toEqual(["m1", "m2"]);
  expect(after?.expires).toBe(later);
  expect(after?.documentFrequency(stem("walrus"))).toBe(2);
  await store.close();
});
