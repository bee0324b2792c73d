// `npm run bench:store`: the embedded SQLite store at 10,000 and 100,000 memories (100 per user),
// deterministic embedder, so no model time is measured. Prints insert throughput and the time of
// scoped searches EXCLUDING the embedding call: the store's vector search + keyword search + the
// hybrid fusion, i.e. what Memory.search does after embedding the query. Writes raw figures to
// bench/results/. Then one scope holding --one-scope=100000 memories (0 to skip; 1000000 for the
// 1M row, which takes long to build), written to the store directly, with the recall@10 of the
// fused results against an exact search (exact BM25 and exact cosine over the whole scope), and
// Memory.search on that scope: its time excluding the query embedding and its top 10 against the
// exact ranking of the whole scope.
// Options: --users-per-step=100 --per-user=100 --searches=200 --dimension=512 --one-scope=100000
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { textHash } from "../src/internal/hash.js";
import { vectorToBytes } from "../src/internal/json.js";
import { loadNodeSqlite } from "../src/internal/node-sqlite.js";
import { Memory } from "../src/memory.js";
import { analyseQuery } from "../src/retrieval/features.js";
import { fuseHits } from "../src/retrieval/hybrid.js";
import { loadNlp } from "../src/retrieval/nlp.js";
import { QuantizedRows } from "../src/retrieval/quantized-rows.js";
import { rankIndex } from "../src/retrieval/rank.js";
import { buildScopeIndex, indexMemory } from "../src/retrieval/scope-index.js";
import type { ValidScope } from "../src/scope.js";
import { keywordTerms, rankByBm25 } from "../src/store-kit/index.js";
import { sqliteStore } from "../src/stores/sqlite-store.js";
import type { MemoryRecord, TimeOrdered, VectorStore } from "../src/stores/vector-store.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";
import { mean, percentile } from "./support/report.js";
import { searchLimit, timeScopedSearches } from "./support/scoped-search.js";
import { seededRandom, zipfSentence } from "./support/synthetic.js";

const option = (name: string, fallback: number) =>
  Number(process.argv.find((arg) => arg.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const usersPerStep = option("users-per-step", 100);
const perUser = option("per-user", 100);
const searches = option("searches", 200);
const dimension = option("dimension", 512);
const steps = [usersPerStep, usersPerStep * 10]; // 10,000 then 100,000 memories with the defaults
const heavyUserMemories = option("heavy-user", 1_000);
const oneScope = option("one-scope", 100_000);

// Deterministic pseudo-random numbers, so every run stores and searches the same texts.
const random = seededRandom(20_250_101);
const sentence = (words: number) => zipfSentence(random, words);

const summary = (times: number[]) => ({
  p50: percentile(times, 50),
  p95: percentile(times, 95),
  p99: percentile(times, 99),
  max: Math.max(...times),
  mean: mean(times),
});
const ms = (value: number) => value.toFixed(2).padStart(8);

const dataDir = mkdtempSync(join(tmpdir(), "engram-bench-store-"));
const file = join(dataDir, "engram.db");
const embedder = deterministicEmbedder({ dimension });
const memory = new Memory({ dataDir, embedder, writeBehind: { enabled: false } });
// A second handle on the same file for timing the store calls Memory.search makes after embedding.
const store = sqliteStore({ path: file });
await store.init({ dimension, modelId: embedder.modelId });

interface SearchFigures {
  label: string;
  totalMemories: number;
  userMemories: number;
  searches: number;
  storeAndFusion: ReturnType<typeof summary>;
  vectorSearch: ReturnType<typeof summary>;
  keywordSearch: ReturnType<typeof summary>;
  memorySearchWithEmbedding: ReturnType<typeof summary>;
}
const insertFigures: { fromMemories: number; toMemories: number; seconds: number; perSecond: number }[] = [];
const searchFigures: SearchFigures[] = [];

let stored = 0;
async function insertUsers(from: number, to: number, count: number): Promise<void> {
  const started = performance.now();
  const before = stored;
  for (let user = from; user < to; user++) {
    // One memory per message: turns an hour apart, so that none continues the one before it.
    const items = Array.from({ length: count }, (_, i) => ({
      messages: `${sentence(8 + (i % 5))} ${user}.${i}`,
      userId: `user-${user}`,
      timestamp: new Date(Date.UTC(2025, 0, 1) + i * 3_600_000),
    }));
    // addMany: one embedding call and one transaction per 100 memories.
    const { results } = await memory.addMany(items);
    stored += results.reduce((sum, result) => sum + result.results.length, 0);
  }
  const seconds = (performance.now() - started) / 1000;
  const figures = { fromMemories: before, toMemories: stored, seconds, perSecond: (stored - before) / seconds };
  insertFigures.push(figures);
  console.log(
    `inserted ${(stored - before).toLocaleString("en")} memories (${before.toLocaleString("en")} → ${stored.toLocaleString("en")}) in ${seconds.toFixed(1)} s: ${Math.round(figures.perSecond).toLocaleString("en")} memories/s (Memory.addMany, ${count} turns per user, embedding included)`,
  );
}

async function measureSearches(label: string, users: string[], userMemories: number): Promise<void> {
  const queries = Array.from({ length: searches }, (_, i) => ({
    userId: users[Math.floor(random() * users.length)] as string,
    // Mix of common-word and rare-word queries, 2 to 6 words.
    text: `what about ${sentence(2 + (i % 5))}?`,
  }));
  const vectors = await embedder.embed(queries.map((q) => q.text));
  const { total, vector, keyword } = await timeScopedSearches(store, queries, vectors, { warmUp: 20 });
  const endToEnd: number[] = [];
  for (const query of queries) {
    const t0 = performance.now();
    await memory.search(query.text, { userId: query.userId, limit: searchLimit });
    endToEnd.push(performance.now() - t0);
  }
  searchFigures.push({
    label,
    totalMemories: stored,
    userMemories,
    searches,
    storeAndFusion: summary(total),
    vectorSearch: summary(vector),
    keywordSearch: summary(keyword),
    memorySearchWithEmbedding: summary(endToEnd),
  });
}

console.log(
  `Engram store benchmark: SQLite (node:sqlite + sqlite-vec), deterministic ${dimension}-d embedder, ${perUser} memories per user, ${searches} scoped searches per row`,
);
const loadAtStart = loadavg()[0] as number;
console.log(`Node ${process.version}, data in ${dataDir}, load average ${loadAtStart.toFixed(1)} at start\n`);

let users = 0;
for (const target of steps) {
  await insertUsers(users, target, perUser);
  users = target;
  // Always users of the first step: the same users, with the same own count, in a store 10 times larger.
  const sampled = Array.from({ length: steps[0] as number }, (_, i) => `user-${i}`);
  await measureSearches(`${stored.toLocaleString("en")} total`, sampled, perUser);
}
// One user with many more memories of their own, in the full store: search time follows the user's own count.
await insertUsers(users, users + 1, heavyUserMemories);
await measureSearches(`${stored.toLocaleString("en")} total, heavy user`, [`user-${users}`], heavyUserMemories);

const databaseBytes = statSync(file).size;
console.log("\nScoped search time, EXCLUDING the embedding call (store vector search + keyword search + hybrid fusion), in ms:\n");
const header = ["store total", "user's own", "p50", "p95", "p99", "max", "vector p95", "keyword p95", "Memory.search p95*"];
console.log(header.map((h, i) => (i < 2 ? h.padStart(12) : h.padStart(i > 5 ? 13 : 8))).join(" "));
for (const row of searchFigures) {
  console.log(
    [
      row.totalMemories.toLocaleString("en").padStart(12),
      row.userMemories.toLocaleString("en").padStart(12),
      ms(row.storeAndFusion.p50),
      ms(row.storeAndFusion.p95),
      ms(row.storeAndFusion.p99),
      ms(row.storeAndFusion.max),
      ms(row.vectorSearch.p95).padStart(13),
      ms(row.keywordSearch.p95).padStart(13),
      ms(row.memorySearchWithEmbedding.p95).padStart(13),
    ].join(" "),
  );
}
console.log("\n* Memory.search end to end, including the (deterministic, in-process) query embedding.");
const loadAtEnd = loadavg()[0] as number;
console.log(`Target: p95 ≤ 10 ms excluding embedding. Database file: ${(databaseBytes / 1e6).toFixed(1)} MB.`);
console.log(`Load average ${loadAtEnd.toFixed(1)} at the end: tail latencies are noisy on a busy machine; p50 is the steadier figure.`);

// ── one big scope (an agent-wide or team-wide memory) ─────────────────────────────────────────
let oneScopeFigures: Record<string, unknown> | undefined;

/**
 * Memory.search on the one scope, with novel queries (none asked before), timed EXCLUDING the query
 * embedding: the time spent inside the embedder's `embed` during each search is measured and
 * subtracted. Its top 10 are compared with an exact reference: the same ranker over the whole scope
 * (every memory in process, scope-wide word statistics, neighbours and sessions: the path of scopes
 * under LARGE_SCOPE), on the same queries.
 */
async function measureMemorySearch(big: VectorStore, bigDir: string, userId: string, memories: number) {
  let embedMs = 0;
  const timedEmbedder = {
    dimension,
    modelId: embedder.modelId,
    async embed(texts: string[]) {
      const t0 = performance.now();
      const vectors = await embedder.embed(texts);
      embedMs += performance.now() - t0;
      return vectors;
    },
  };
  // The store's vector search timed too: the part of a search the store's own index decides.
  let vectorMs = 0;
  const timedStore = new Proxy(big, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property !== "search" || typeof value !== "function") return typeof value === "function" ? value.bind(target) : value;
      return async (...args: Parameters<VectorStore["search"]>) => {
        const t0 = performance.now();
        try {
          return await value.apply(target, args);
        } finally {
          vectorMs += performance.now() - t0;
        }
      };
    },
  });
  // And the in-process scan of the scope's quantised vectors, which stands in for the store's search.
  let scanMs = 0;
  const scan = QuantizedRows.prototype.scan;
  // The keyword passes a search runs on the calling thread while the scan's helper thread scores rows
  // are not the scan's: their time is left out of it (it counts in the rest).
  QuantizedRows.prototype.scan = function timedScan(this: QuantizedRows, query: Float32Array, meanwhile?: () => void) {
    let overlapped = 0;
    const timedMeanwhile =
      meanwhile &&
      (() => {
        const t0 = performance.now();
        try {
          meanwhile();
        } finally {
          overlapped += performance.now() - t0;
        }
      });
    const t0 = performance.now();
    try {
      return scan.call(this, query, timedMeanwhile);
    } finally {
      scanMs += performance.now() - t0 - overlapped;
    }
  };
  const searcher = new Memory({ vectorStore: timedStore, dataDir: bigDir, embedder: timedEmbedder, writeBehind: { enabled: false } });
  const asked = new Set<string>();
  const novel = () => {
    for (;;) {
      const text = `what about ${sentence(2 + (asked.size % 5))}?`;
      if (!asked.has(text)) {
        asked.add(text);
        return text;
      }
    }
  };
  const timed = async (text: string) => {
    const embedBefore = embedMs;
    const vectorBefore = vectorMs + scanMs;
    const t0 = performance.now();
    const { results } = await searcher.search(text, { userId, limit: searchLimit, threshold: 0 });
    return {
      ms: performance.now() - t0 - (embedMs - embedBefore),
      vectorMs: vectorMs + scanMs - vectorBefore,
      ids: results.map((result) => result.id),
    };
  };
  const first = await timed(novel());
  for (let i = 0; i < 5; i++) await timed(novel());
  const count = Math.min(searches, 100);
  const texts = Array.from({ length: count }, novel);
  const times: number[] = [];
  const storeVector: number[] = [];
  const rest: number[] = [];
  const got: string[][] = [];
  // Each search starts in an event-loop task of its own, as a request's search does: the garbage
  // collector's work between tasks runs between searches, as it does between requests. The same
  // number of other novel queries searched back to back in one task are timed too (below).
  const nextTask = () => new Promise<void>((resolve) => setImmediate(resolve));
  for (const text of texts) {
    await nextTask();
    const { ms, vectorMs: vector, ids } = await timed(text);
    times.push(ms);
    storeVector.push(vector);
    rest.push(ms - vector);
    got.push(ids);
  }
  const chained: number[] = [];
  for (const text of Array.from({ length: count }, novel)) chained.push((await timed(text)).ms);
  const load = loadavg()[0] as number;
  // What the process holds while it serves the scope: the file's pages read count in the RSS.
  const held = process.memoryUsage();
  // A search right after a write to the scope (its statistics are read again).
  const afterWrite: number[] = [];
  for (let k = 0; k < 5; k++) {
    const text = `${sentence(10)} written ${k}`;
    const [vector] = await embedder.embed([text]);
    const now = new Date(Date.UTC(2030, 0, 1) + k * 60_000).toISOString();
    await big.write({
      upsert: [
        { id: `w${k}`, text, hash: textHash(text), vector: vector as Float32Array, userId, metadata: {}, createdAt: now, updatedAt: now },
      ],
    });
    afterWrite.push((await timed(novel())).ms);
  }
  await big.write({ delete: Array.from({ length: 5 }, (_, k) => `w${k}`) });
  // The exact reference: the whole scope ranked in process.
  const nlp = await loadNlp();
  const scope = { userId } as ValidScope;
  const referenceStarted = performance.now();
  const stamps = await (big as VectorStore & TimeOrdered).stamps({ scope });
  const records: MemoryRecord[] = [];
  for (let start = 0; start < stamps.length; start += 500) {
    const page = await big.get(
      stamps.slice(start, start + 500).map((stamp) => stamp.id),
      { scope },
    );
    records.push(...page);
  }
  const order = new Map(stamps.map((stamp, i) => [stamp.id, i]));
  records.sort((a, b) => (order.get(a.id) as number) - (order.get(b.id) as number));
  const index = buildScopeIndex(records.map((record) => indexMemory(record, nlp)));
  const referenceSeconds = (performance.now() - referenceStarted) / 1000;
  const vectors = await embedder.embed(texts);
  let identical = 0;
  let overlap = 0;
  let expected = 0;
  for (let i = 0; i < count; i++) {
    const query = analyseQuery(texts[i] as string, vectors[i] as Float32Array, nlp, index.latestDay);
    const exact = rankIndex(index, scope, query, { limit: searchLimit, threshold: 0 }).map((hit) => hit.record.id);
    const mine = got[i] as string[];
    if (exact.length === mine.length && exact.every((id, k) => mine[k] === id)) identical++;
    overlap += mine.filter((id) => exact.includes(id)).length;
    expected += exact.length;
  }
  await searcher.close();
  QuantizedRows.prototype.scan = scan;
  const figures = {
    memories,
    searches: count,
    firstSearchMs: first.ms,
    searchExcludingEmbedding: summary(times),
    backToBackExcludingEmbedding: summary(chained),
    vectorSide: summary(storeVector),
    restOfSearch: summary(rest),
    afterWriteMs: afterWrite,
    identicalTop10: identical / count,
    recallAt10: expected === 0 ? 1 : overlap / expected,
    referenceBuildSeconds: referenceSeconds,
    loadAverage: load,
    rssWhileServingBytes: held.rss,
    heapUsedWhileServingBytes: held.heapUsed,
  };
  console.log(
    `Memory.search, one scope of ${memories.toLocaleString("en")} memories, ${count} novel queries, each in an event-loop task of its own, EXCLUDING the query embedding (timed and subtracted): p50 ${ms(figures.searchExcludingEmbedding.p50)} p95 ${ms(figures.searchExcludingEmbedding.p95)} p99 ${ms(figures.searchExcludingEmbedding.p99)} ms (load average ${load.toFixed(1)})`,
  );
  console.log(
    `  ${count} other novel queries back to back in one task: p50 ${ms(figures.backToBackExcludingEmbedding.p50)} p95 ${ms(figures.backToBackExcludingEmbedding.p95)} p99 ${ms(figures.backToBackExcludingEmbedding.p99)} ms`,
  );
  console.log(
    `  of which the vector side (the scan of the scope's quantised vectors in process, less the keyword passes run alongside it, or the store's vector search) p50 ${ms(figures.vectorSide.p50)} p95 ${ms(figures.vectorSide.p95)} ms; the rest p50 ${ms(figures.restOfSearch.p50)} p95 ${ms(figures.restOfSearch.p95)} ms`,
  );
  console.log(
    `  while serving the scope: RSS ${(held.rss / 1e6).toFixed(0)} MB (the file's pages read included), JavaScript heap ${(held.heapUsed / 1e6).toFixed(0)} MB`,
  );
  console.log(
    `  first search of the scope ${first.ms.toFixed(0)} ms; right after a write to the scope: ${afterWrite.map((value) => value.toFixed(0)).join(", ")} ms`,
  );
  console.log(
    `  top 10 against the exact ranking (whole scope in process, built in ${referenceSeconds.toFixed(1)} s): identical on ${(100 * figures.identicalTop10).toFixed(1)} % of queries, recall@10 ${figures.recallAt10.toFixed(3)}`,
  );
  return figures;
}
/**
 * Writes one scope of `oneScope` memories and times the store's own scoped search on it, with its
 * recall against exact vector and BM25 rankings. The texts it keeps for those are its own: they are
 * garbage by the time `Memory.search` is timed, as they would not be in a process serving searches.
 */
async function measureStoreSearch(big: ReturnType<typeof sqliteStore>, bigFile: string, userId: string) {
  const started = performance.now();
  // Conversations: sessions of 20 memories a minute apart, one a day, so memories have neighbours.
  const said = (i: number) => new Date(Date.UTC(2025, 0, 1) + Math.floor(i / 20) * 86_400_000 + (i % 20) * 60_000).toISOString();
  const texts: string[] = [];
  for (let from = 0; from < oneScope; from += 1_000) {
    const batch = Array.from({ length: Math.min(1_000, oneScope - from) }, (_, i) => `${sentence(8 + (i % 5))} ${from + i}`);
    const vectors = await embedder.embed(batch);
    await big.write({
      upsert: batch.map((text, i) => ({
        id: `m${from + i}`,
        text,
        hash: textHash(text),
        vector: vectors[i] as Float32Array,
        userId,
        metadata: {},
        createdAt: said(from + i),
        updatedAt: said(from + i),
      })),
    });
    texts.push(...batch);
  }
  const buildSeconds = (performance.now() - started) / 1000;
  console.log(`\none scope of ${oneScope.toLocaleString("en")} memories written in ${buildSeconds.toFixed(1)} s`);
  const count = Math.min(searches, 100);
  const queries = Array.from({ length: count }, (_, i) => ({ userId, text: `what about ${sentence(2 + (i % 5))}?` }));
  const vectors = await embedder.embed(queries.map((query) => query.text));
  const { total, vector, keyword } = await timeScopedSearches(big, queries, vectors, { warmUp: 10 });
  // Recall@10 of the fused results against exact ones: exact BM25 over every memory of the scope.
  const candidates = Math.max(searchLimit * 3, 30);
  const records = texts.map((text, i) => ({ id: `m${i}`, text }));
  let found = 0;
  let expected = 0;
  let vectorFound = 0;
  let vectorExpected = 0;
  const scanDb = new (loadNodeSqlite().DatabaseSync)(bigFile, { readOnly: true, allowExtension: true });
  (await import("sqlite-vec")).load(scanDb);
  const exactScan = scanDb.prepare(
    "SELECT id, vec_distance_cosine(embedding, ?) AS distance FROM memories WHERE user_id = ? ORDER BY distance, id LIMIT ?",
  );
  const sampled = Math.min(count, 30);
  for (let i = 0; i < sampled; i++) {
    const query = queries[i] as (typeof queries)[number];
    const filter = { scope: { userId } };
    const vectorHits = await big.search({ vector: vectors[i] as Float32Array, filter, limit: candidates });
    const keywordHits = await big.keywordSearch({ text: query.text, filter, limit: candidates });
    const got = fuseHits(vectorHits, keywordHits, vectors[i] as Float32Array, 0.3)
      .slice(0, searchLimit)
      .map((hit) => hit.record.id);
    const exactKeyword = rankByBm25(keywordTerms(query.text), records, { limit: candidates });
    const full = new Map(
      (
        await big.get(
          exactKeyword.map((hit) => hit.candidate.id),
          filter,
        )
      ).map((record) => [record.id, record]),
    );
    const exactHits = exactKeyword.flatMap((hit) => {
      const record = full.get(hit.candidate.id);
      return record ? [{ record, score: hit.score }] : [];
    });
    // Exact vector side: every vector of the scope, read by a scan that bypasses the compact index.
    const scanned = exactScan.all(vectorToBytes(vectors[i] as Float32Array), userId, candidates) as { id: string; distance: number }[];
    const scannedRecords = new Map(
      (
        await big.get(
          scanned.map((row) => row.id),
          filter,
        )
      ).map((record) => [record.id, record]),
    );
    const exactVectorHits = scanned.flatMap((row) => {
      const record = scannedRecords.get(row.id);
      return record ? [{ record, score: 1 - row.distance }] : [];
    });
    const exactVector = exactVectorHits.slice(0, searchLimit).map((hit) => hit.record.id);
    vectorExpected += exactVector.length;
    vectorFound += vectorHits.slice(0, searchLimit).filter((hit) => exactVector.includes(hit.record.id)).length;
    const exact = fuseHits(exactVectorHits, exactHits, vectors[i] as Float32Array, 0.3)
      .slice(0, searchLimit)
      .map((hit) => hit.record.id);
    expected += exact.length;
    found += got.filter((id) => exact.includes(id)).length;
  }
  scanDb.close();
  const recall = expected === 0 ? 1 : found / expected;
  const vectorRecall = vectorExpected === 0 ? 1 : vectorFound / vectorExpected;
  const bytes = statSync(bigFile).size;
  const rss = process.memoryUsage().rss;
  const figures: NonNullable<typeof oneScopeFigures> = {
    memories: oneScope,
    buildSeconds,
    searches: count,
    storeAndFusion: summary(total),
    vectorSearch: summary(vector),
    keywordSearch: summary(keyword),
    recallAt10: recall,
    vectorRecallAt10: vectorRecall,
    databaseBytes: bytes,
    rssBytes: rss,
  };
  console.log(
    `one scope, ${oneScope.toLocaleString("en")} memories: p50 ${ms(percentile(total, 50))} p95 ${ms(percentile(total, 95))} ms (vector p95 ${percentile(vector, 95).toFixed(2)}, keyword p95 ${percentile(keyword, 95).toFixed(2)}), recall@10 vs exact ${recall.toFixed(3)} (vector side alone ${vectorRecall.toFixed(3)}; ${sampled} queries), file ${(bytes / 1e6).toFixed(1)} MB, RSS ${(rss / 1e6).toFixed(0)} MB`,
  );
  return figures;
}
if (oneScope > 0) {
  const bigDir = mkdtempSync(join(tmpdir(), "engram-bench-one-scope-"));
  const bigFile = join(bigDir, "engram.db");
  const big = sqliteStore({ path: bigFile });
  await big.init({ dimension, modelId: embedder.modelId });
  const userId = "team";
  oneScopeFigures = await measureStoreSearch(big, bigFile, userId);
  oneScopeFigures.memorySearch = await measureMemorySearch(big, bigDir, userId, oneScope);
  await big.close();
  rmSync(bigDir, { recursive: true, force: true });
}

const results = {
  benchmark: "store",
  date: new Date().toISOString(),
  node: process.version,
  dimension,
  perUser,
  searches,
  insert: insertFigures,
  search: searchFigures,
  databaseBytes,
  oneScope: oneScopeFigures,
  loadAverage: { start: loadAtStart, end: loadAtEnd },
};
const resultsDirectory = join(import.meta.dirname, "results");
mkdirSync(resultsDirectory, { recursive: true });
const output = join(resultsDirectory, `store-${results.date.replace(/[:.]/g, "-")}.json`);
writeFileSync(output, `${JSON.stringify(results, null, 2)}\n`);
console.log(`Raw figures: ${output}`);

await store.close();
await memory.close();
rmSync(dataDir, { recursive: true, force: true });
