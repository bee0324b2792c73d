/**
 * `npm run bench:stores` — scoped search latency of each VectorStore at the same size: N memories
 * spread over U users, then Q searches each inside one random user's scope (limit 10), p50 / p95.
 *
 * Stores:
 *   sqlite            the embedded default (a temporary file)
 *   pgvector          pgvectorStore over the PostgreSQL wire protocol, against PGlite (Postgres
 *                     compiled to WASM, single-threaded) with the real pgvector extension, in a child
 *                     process; a native PostgreSQL server would be faster
 *   qdrant-stand-in   qdrantStore through the real client against the Qdrant REST STAND-IN of the
 *                     tests (in this process: a keyword payload index narrows to the scope, then an
 *                     exact scan in JavaScript): its figure is the stand-in's, NOT Qdrant's
 *
 * Memories are synthetic sentences embedded by the deterministic embedder (feature hashing, no
 * model), written in batches of 1,000. Each size is a fresh store. Load time is printed too.
 *
 * Options: --sizes=100000 (comma-separated, e.g. 10000,30000,100000 for a trend)  --users=1000
 *          --queries=200  --dimension=256  --stores=sqlite,pgvector,qdrant-stand-in
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { textHash } from "../src/internal/hash.js";
import { pgvectorStore } from "../src/stores/pgvector-store.js";
import { qdrantStore } from "../src/stores/qdrant-store.js";
import { sqliteStore } from "../src/stores/sqlite-store.js";
import type { MemoryRecord, VectorStore } from "../src/stores/vector-store.js";
import { deterministicEmbedder } from "../src/testing/index.js";
import { startPgliteServer } from "../test/support/pglite-server.js";
import { startQdrantStandIn } from "../test/support/qdrant-stand-in.js";

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
const queryCount = Number(args.queries ?? 200);
const dimension = Number(args.dimension ?? 256);
const storeNames = String(args.stores ?? "sqlite,pgvector,qdrant-stand-in").split(",");
const BATCH = 1000;

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const words = (
  "coffee tea postgres sqlite qdrant vector memory search user agent run dog cat rex lisbon porto berlin " +
  "travel flight hotel dinner lunch breakfast allergy peanut gluten vegan running cycling swimming piano " +
  "guitar book novel film series project deadline meeting manager sister brother mother father birthday " +
  "gift holiday summer winter spring autumn garden kitchen office remote typescript rust python golang"
).split(" ");

function sentence(next: () => number): string {
  const length = 6 + Math.floor(next() * 8);
  return Array.from({ length }, () => words[Math.floor(next() * words.length)]).join(" ");
}

const embedder = deterministicEmbedder({ dimension });

async function records(count: number, seed: number): Promise<MemoryRecord[]> {
  const next = random(seed);
  const texts = Array.from({ length: count }, (_, i) => `${sentence(next)} (${i})`);
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

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

interface Result {
  store: string;
  memories: number;
  users: number;
  queries: number;
  dimension: number;
  loadSeconds: number;
  p50Ms: number;
  p95Ms: number;
  meanHits: number;
}

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
    const next = random(7);
    const queries = await embedder.embed(Array.from({ length: queryCount }, () => sentence(next)));
    // A few warm-up queries: first-statement planning and connection setup are not search latency.
    for (const vector of queries.slice(0, 5)) await store.search({ vector, filter: { scope: { userId: "user-0" } }, limit: 10 });
    const latencies: number[] = [];
    let hits = 0;
    for (const vector of queries) {
      const userId = `user-${Math.floor(next() * userCount)}`;
      const started = performance.now();
      const results = await store.search({ vector, filter: { scope: { userId } }, limit: 10 });
      latencies.push(performance.now() - started);
      hits += results.length;
      if (results.some((hit) => hit.record.userId !== userId)) throw new Error(`${name} returned a record outside the scope`);
    }
    latencies.sort((a, b) => a - b);
    return {
      store: name,
      memories: size,
      users: userCount,
      queries: queryCount,
      dimension,
      loadSeconds: Number(loadSeconds.toFixed(1)),
      p50Ms: Number(percentile(latencies, 50).toFixed(2)),
      p95Ms: Number(percentile(latencies, 95).toFixed(2)),
      meanHits: Number((hits / queryCount).toFixed(1)),
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
};

const labels: Record<string, string> = {
  sqlite: "SQLite (embedded default)",
  pgvector: "pgvector over PGlite (WASM) socket server",
  "qdrant-stand-in": "Qdrant REST stand-in (NOT Qdrant)",
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

const header = ["store", "memories", "users", "dim", "load s", "p50 ms", "p95 ms", "hits/query"];
const rows = results.map((r) =>
  [labels[r.store] as string, r.memories, r.users, r.dimension, r.loadSeconds, r.p50Ms, r.p95Ms, r.meanHits].map(String),
);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
const line = (cells: string[]) =>
  cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join("  ");
console.log(`\nScoped search (limit 10), ${queryCount} queries per store, deterministic ${dimension}-d embedder`);
console.log(line(header));
for (const row of rows) console.log(line(row));
console.log("The Qdrant figure is the stand-in's (JavaScript, in this process, over HTTP), not Qdrant's.");

const out = join(root, "bench", "results");
mkdirSync(out, { recursive: true });
const file = join(out, `stores-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2)}\n`);
console.log(`Raw results: ${file}`);
