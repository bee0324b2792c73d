/**
 * `npm run bench:stores` — the core store benchmark (`npm run bench:store`: N memories, 100 per
 * user, scoped searches timed EXCLUDING the embedding call) run against each VectorStore: the
 * store's vector search (limit 30, as Memory.search asks) + its keyword search + hybrid fusion,
 * p50 / p95, with the two store calls also timed on their own.
 *
 * Stores:
 *   sqlite            the embedded default (a temporary file)
 *   pgvector          pgvectorStore over the PostgreSQL wire protocol, against PGlite (Postgres
 *                     compiled to WASM, single-threaded) with the real pgvector extension, in a child
 *                     process; a native PostgreSQL server would be faster
 *   qdrant-stand-in   qdrantStore through the real client against the Qdrant REST STAND-IN of the
 *                     tests (in this process: a keyword payload index narrows to the scope, then an
 *                     exact scan in JavaScript): its figure is the stand-in's, NOT Qdrant's
 *   chroma            chromaStore against a real Chroma 1.0 server (the chromadb package's CLI, one
 *                     process, a temporary directory); keyword search reads the scope's matching
 *                     texts by a regex and ranks them by BM25 in this process
 *
 * Memories are synthetic sentences over a Zipf vocabulary (a few words common to every user, many
 * rare ones), embedded by the deterministic embedder (feature hashing, no model) and written in
 * batches of 1,000 records. Each size is a fresh store. Load time is printed too.
 *
 * Options: --sizes=100000 (comma-separated, e.g. 10000,30000,100000 for a trend)  --users=1000
 *          --searches=200  --dimension=512  --stores=sqlite,pgvector,qdrant-stand-in,chroma
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { textHash } from "../src/internal/hash.js";
import { chromaStore } from "../src/stores/chroma-store.js";
import { pgvectorStore } from "../src/stores/pgvector-store.js";
import { qdrantStore } from "../src/stores/qdrant-store.js";
import { sqliteStore } from "../src/stores/sqlite-store.js";
import type { MemoryRecord, VectorStore } from "../src/stores/vector-store.js";
import { deterministicEmbedder } from "../src/testing/index.js";
import { startChroma } from "../test/support/chroma-server.js";
import { startPgliteServer } from "../test/support/pglite-server.js";
import { startQdrantStandIn } from "../test/support/qdrant-stand-in.js";
import { percentile } from "./support/report.js";
import { timeScopedSearches } from "./support/scoped-search.js";
import { seededRandom, zipfSentence } from "./support/synthetic.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value = "true"] = arg.replace(/^--/, "").split("=");
    return [key, value];
  }),
);
const sizes = String(args.sizes ?? "100000")
  .split(",")
  .map(Number);
const userCount = Number(args.users ?? 1000);
const queryCount = Number(args.searches ?? 200);
const dimension = Number(args.dimension ?? 512);
const storeNames = String(args.stores ?? "sqlite,pgvector,qdrant-stand-in,chroma").split(",");
const BATCH = 1000;

const embedder = deterministicEmbedder({ dimension });

async function records(count: number, seed: number): Promise<MemoryRecord[]> {
  const next = seededRandom(seed);
  const texts = Array.from({ length: count }, (_, i) => `${zipfSentence(next)} ${i % userCount}.${i}`);
  const vectors = await embedder.embed(texts);
  const start = Date.UTC(2025, 0, 1);
  return texts.map((text, i) => {
    const createdAt = new Date(start + i * 1000).toISOString();
    return {
      id: `m-${seed}-${i}`,
      text,
      hash: textHash(text),
      vector: vectors[i] as Float32Array,
      userId: `user-${i % userCount}`,
      metadata: {},
      createdAt,
      updatedAt: createdAt,
    };
  });
}

interface Timing {
  p50: number;
  p95: number;
}

interface Result {
  store: string;
  memories: number;
  users: number;
  searches: number;
  dimension: number;
  loadSeconds: number;
  total: Timing;
  vector: Timing;
  keyword: Timing;
}

const timing = (times: number[]): Timing => ({
  p50: Number(percentile(times, 50).toFixed(2)),
  p95: Number(percentile(times, 95).toFixed(2)),
});

async function measure(
  name: string,
  size: number,
  open: () => Promise<{ store: VectorStore; close: () => Promise<void> }>,
): Promise<Result> {
  const { store, close } = await open();
  try {
    await store.init({ dimension, modelId: embedder.modelId });
    const data = await records(size, size);
    const loadStart = performance.now();
    for (let i = 0; i < data.length; i += BATCH) {
      await store.write({ upsert: data.slice(i, i + BATCH) });
      if ((i / BATCH) % 10 === 9) process.stderr.write(`  ${name}: ${i + BATCH} / ${size} written\r`);
    }
    const loadSeconds = (performance.now() - loadStart) / 1000;
    process.stderr.write("\n");
    const next = seededRandom(7);
    const queries = Array.from({ length: queryCount }, (_, i) => ({
      userId: `user-${Math.floor(next() * userCount)}`,
      text: `what about ${zipfSentence(next, 2 + (i % 5))}?`,
    }));
    const vectors = await embedder.embed(queries.map((query) => query.text));
    const { total, vector, keyword } = await timeScopedSearches(store, queries, vectors);
    return {
      store: name,
      memories: size,
      users: userCount,
      searches: queryCount,
      dimension,
      loadSeconds: Number(loadSeconds.toFixed(1)),
      total: timing(total),
      vector: timing(vector),
      keyword: timing(keyword),
    };
  } finally {
    await store.close();
    await close();
  }
}

const openers: Record<string, () => Promise<{ store: VectorStore; close: () => Promise<void> }>> = {
  async sqlite() {
    const directory = mkdtempSync(join(tmpdir(), "engram-bench-sqlite-"));
    return {
      store: sqliteStore({ path: join(directory, "bench.db") }),
      close: async () => rmSync(directory, { recursive: true, force: true }),
    };
  },
  async pgvector() {
    const server = await startPgliteServer();
    return { store: pgvectorStore({ connectionString: server.url, table: "bench_memories" }), close: () => server.stop() };
  },
  async "qdrant-stand-in"() {
    const standIn = await startQdrantStandIn();
    return { store: qdrantStore({ url: standIn.url, collection: "bench" }), close: () => standIn.close() };
  },
  async chroma() {
    const server = await startChroma();
    return { store: chromaStore({ url: server.url, collection: "bench" }), close: () => server.remove() };
  },
};

const labels: Record<string, string> = {
  sqlite: "SQLite (embedded default)",
  pgvector: "pgvector over PGlite (WASM) socket server",
  "qdrant-stand-in": "Qdrant REST stand-in (NOT Qdrant)",
  chroma: "Chroma 1.0 server (chromadb CLI)",
};

const results: Result[] = [];
for (const size of sizes) {
  for (const name of storeNames) {
    const open = openers[name];
    if (!open) throw new Error(`Unknown store ${name}: use ${Object.keys(openers).join(", ")}`);
    process.stderr.write(`${labels[name]}: ${size} memories over ${userCount} users\n`);
    results.push(await measure(name, size, open));
  }
}

const loadAtEnd = loadavg()[0] as number;
const header = ["store", "memories", "users", "load s", "p50 ms", "p95 ms", "vector p50", "vector p95", "keyword p50", "keyword p95"];
const rows = results.map((r) =>
  [
    labels[r.store] as string,
    r.memories,
    r.users,
    r.loadSeconds,
    r.total.p50,
    r.total.p95,
    r.vector.p50,
    r.vector.p95,
    r.keyword.p50,
    r.keyword.p95,
  ].map(String),
);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
const line = (cells: string[]) =>
  cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join("  ");
console.log(
  `\nScoped search EXCLUDING the embedding call (vector search + keyword search + hybrid fusion), ${queryCount} searches per row, deterministic ${dimension}-d embedder, in ms`,
);
console.log(line(header));
for (const row of rows) console.log(line(row));
console.log("The Qdrant row is the stand-in's (JavaScript, in this process, over HTTP), NOT Qdrant's.");
console.log(`Load average ${loadAtEnd.toFixed(1)} at the end: tail latencies are noisy on a busy machine.`);

const out = join(root, "bench", "results");
mkdirSync(out, { recursive: true });
const file = join(out, `stores-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(
  file,
  `${JSON.stringify({ benchmark: "stores", date: new Date().toISOString(), node: process.version, loadAverage: loadAtEnd, results }, null, 2)}\n`,
);
console.log(`Raw results: ${file}`);
