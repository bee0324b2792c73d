import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, expect, test } from "vitest";
import { textHash } from "../../src/internal/hash.js";
import { loadNodeSqlite } from "../../src/internal/node-sqlite.js";
import { Memory } from "../../src/memory.js";
import { prefilterCandidates, sqliteStore } from "../../src/stores/sqlite-store.js";
import type { MemoryRecord, StoreFilter } from "../../src/stores/vector-store.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";
import { seededRandom } from "../../src/testing/seeded-random.js";

// sqliteStore's vector search reads a compact index: int8 copies of the vectors in a sqlite-vec
// vec0 table partitioned by scope, re-ranked exactly on the full vectors.

const directory = mkdtempSync(join(tmpdir(), "engram-compact-index-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let files = 0;
const newPath = () => join(directory, `store-${files++}.db`);

const at = new Date(Date.UTC(2025, 0, 1)).toISOString();
function record(id: string, vector: Float32Array, scope: { userId?: string; agentId?: string; runId?: string }): MemoryRecord {
  const text = `memory ${id}`;
  return { id, text, hash: textHash(text), vector, metadata: {}, createdAt: at, updatedAt: at, ...scope };
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += (a[i] as number) * (b[i] as number);
    na += (a[i] as number) ** 2;
    nb += (b[i] as number) ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

function inside(item: MemoryRecord, filter: StoreFilter): boolean {
  const { userId, agentId, runId } = filter.scope;
  return (
    (userId === undefined || item.userId === userId) &&
    (agentId === undefined || item.agentId === agentId) &&
    (runId === undefined || item.runId === runId)
  );
}

/** The exact answer: every record of the filter by cosine, then id. */
function exactTop(records: readonly MemoryRecord[], filter: StoreFilter, query: Float32Array, limit: number): string[] {
  return records
    .filter((item) => inside(item, filter))
    .map((item) => ({ id: item.id, score: cosine(query, item.vector as Float32Array) }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
    .slice(0, limit)
    .map((hit) => hit.id);
}

const randomVector = (next: () => number, dimension: number) => Float32Array.from({ length: dimension }, () => next() * 2 - 1);

function tablesOf(path: string): string[] {
  const { DatabaseSync } = loadNodeSqlite();
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return (db.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') ORDER BY name").all() as { name: string }[]).map(
      (row) => row.name,
    );
  } finally {
    db.close();
  }
}

test("a file written by the release before the compact index (a8ca2e0) gets it when opened, filled from its vectors; scoped searches answer as an exact scan", async () => {
  // test/fixtures/sqlite-a8ca2e0.db was written by test/fixtures/make-sqlite-fixture.ts run in a
  // checkout of a8ca2e0: 30 memories in 5 scopes, deterministic 16-d embedder.
  const dataDir = join(directory, "release-a8ca2e0");
  const path = join(dataDir, "engram.db");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(dataDir, { recursive: true });
  copyFileSync(join(import.meta.dirname, "../fixtures/sqlite-a8ca2e0.db"), path);
  expect(tablesOf(path)).not.toContain("memory_vectors");

  const embedder = deterministicEmbedder({ dimension: 16 });
  const memory = new Memory({ dataDir, embedder, writeBehind: { enabled: false } });
  expect((await memory.getAll({ userId: "alice" })).results).toHaveLength(18);
  await memory.close();
  expect(tablesOf(path)).toEqual(expect.arrayContaining(["memory_vectors", "memory_vectors_delete", "memory_vectors_insert"]));

  const store = sqliteStore({ path });
  await store.init({ dimension: 16, modelId: embedder.modelId });
  const all: MemoryRecord[] = [];
  for (const userId of ["alice", "bob"]) {
    const { records } = await store.list({ filter: { scope: { userId } }, limit: 100 });
    all.push(
      ...(await store.get(
        records.map((item) => item.id),
        { scope: { userId } },
      )),
    );
  }
  all.push(
    ...(await store.get(
      (await store.list({ filter: { scope: { agentId: "coder" } }, limit: 100 })).records.map((item) => item.id),
      { scope: { agentId: "coder" } },
    )),
  );
  const unique = [...new Map(all.map((item) => [item.id, item])).values()];
  expect(unique).toHaveLength(30);
  const [query] = await embedder.embed(["where do walruses live"]);
  for (const scope of [
    { userId: "alice" },
    { userId: "alice", agentId: "coder" },
    { agentId: "coder" },
    { userId: "bob" },
    { runId: "r1" },
  ]) {
    const hits = await store.search({ vector: query as Float32Array, filter: { scope }, limit: 5 });
    expect(
      hits.map((hit) => hit.record.id),
      JSON.stringify(scope),
    ).toEqual(exactTop(unique, { scope }, query as Float32Array, 5));
  }
  // Writes after the migration go to the index too.
  const vector = (await embedder.embed(["walruses walruses walruses"]))[0] as Float32Array;
  await store.write({ upsert: [record("new-one", vector, { userId: "bob" })] });
  expect((await store.search({ vector, filter: { scope: { userId: "bob" } }, limit: 1 }))[0]?.record.id).toBe("new-one");
  await store.close();
});

test("the partitioned search reads the scope's partitions only, inner scopes included, and nothing of other scopes", async () => {
  const store = sqliteStore({ path: newPath() });
  await store.init({ dimension: 8 });
  const next = seededRandom(7);
  const query = randomVector(next, 8);
  const far = () => randomVector(next, 8);
  // Other scopes hold the query's own vector; alice's scopes hold random ones.
  const records = [
    record("bob-exact", query, { userId: "bob" }),
    record("bob-coder-exact", query, { userId: "bob", agentId: "coder" }),
    record("nobody-coder-exact", query, { agentId: "coder" }),
    ...Array.from({ length: 120 }, (_, i) => record(`alice-${i}`, far(), { userId: "alice" })),
    ...Array.from({ length: 30 }, (_, i) => record(`alice-coder-${i}`, far(), { userId: "alice", agentId: "coder" })),
    ...Array.from({ length: 30 }, (_, i) => record(`alice-coder-r1-${i}`, far(), { userId: "alice", agentId: "coder", runId: "r1" })),
  ];
  await store.write({ upsert: records });
  for (const scope of [{ userId: "alice" }, { userId: "alice", agentId: "coder" }, { userId: "alice", runId: "r1" }]) {
    const hits = await store.search({ vector: query, filter: { scope }, limit: 10 });
    expect(hits.map((hit) => hit.record.id)).toEqual(exactTop(records, { scope }, query, 10));
    expect(hits.every((hit) => hit.record.userId === "alice")).toBe(true);
  }
  // An agent's scope spans users: alice's coder memories and nobody's, not alice's own.
  const agent = await store.search({ vector: query, filter: { scope: { agentId: "coder" } }, limit: 3 });
  expect(agent.map((hit) => hit.record.id)).toEqual(["bob-coder-exact", "nobody-coder-exact", expect.stringMatching(/^alice-coder-/)]);
  // A memory moved to another scope leaves its old partition.
  await store.write({ upsert: [{ ...(records[0] as MemoryRecord), userId: "alice" }] });
  expect((await store.search({ vector: query, filter: { scope: { userId: "alice" } }, limit: 1 }))[0]?.record.id).toBe("bob-exact");
  expect((await store.search({ vector: query, filter: { scope: { userId: "bob" } }, limit: 1 }))[0]?.record.id).toBe("bob-coder-exact");
  await store.close();
});

test("past the prefilter's candidates the results are ranked on the full vectors: vectors alike in int8 keep their exact order and scores", async () => {
  const store = sqliteStore({ path: newPath() });
  await store.init({ dimension: 8 });
  const next = seededRandom(11);
  const query = Float32Array.from([0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0]);
  // Differences below one int8 step (2/255): the compact copies of these three are identical.
  const near = [0.002, 0.001, 0.003].map((offset) => Float32Array.from([0.5, 0.5, 0.5, 0.5, offset, 0, 0, 0]));
  const { DatabaseSync } = loadNodeSqlite();
  const db = new DatabaseSync(":memory:", { allowExtension: true });
  (await import("sqlite-vec")).load(db);
  const compact = near.map((vector) =>
    Buffer.from(
      (db.prepare("SELECT vec_quantize_int8(vec_normalize(?), 'unit') AS q").get(new Uint8Array(vector.buffer)) as { q: Uint8Array }).q,
    ).toString("hex"),
  );
  db.close();
  expect(new Set(compact).size).toBe(1);
  const records = [
    ...near.map((vector, i) => record(`near-${i}`, vector, { userId: "u" })),
    ...Array.from({ length: prefilterCandidates * 20 }, (_, i) => record(`other-${i}`, randomVector(next, 8), { userId: "u" })),
  ];
  await store.write({ upsert: records });
  const hits = await store.search({ vector: query, filter: { scope: { userId: "u" } }, limit: 10 });
  expect(hits.slice(0, 3).map((hit) => hit.record.id)).toEqual(["near-1", "near-0", "near-2"]);
  expect(hits.map((hit) => hit.record.id)).toEqual(exactTop(records, { scope: { userId: "u" } }, query, 10));
  for (const hit of hits) {
    const full = records.find((item) => item.id === hit.record.id) as MemoryRecord;
    expect(hit.score).toBeCloseTo(cosine(query, full.vector as Float32Array), 6);
  }
  await store.close();
});

test("a reset store made for another dimension gets a compact index of that dimension", async () => {
  const store = sqliteStore({ path: newPath() });
  await store.init({ dimension: 8 });
  await store.write({ upsert: [record("a", Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0]), { userId: "u" })] });
  await store.reset();
  await store.init({ dimension: 4 });
  await store.write({ upsert: [record("b", Float32Array.from([0, 1, 0, 0]), { userId: "u" })] });
  const hits = await store.search({ vector: Float32Array.from([0, 1, 0, 0]), filter: { scope: { userId: "u" } }, limit: 5 });
  expect(hits.map((hit) => [hit.record.id, Number(hit.score.toFixed(6))])).toEqual([["b", 1]]);
  await store.close();
});

test("property: whatever the scopes and vectors, a search returns only the filter's records, exactly scored, best first; a scope within the prefilter's candidates gets the exact top k", async () => {
  const scopeArb = fc.record(
    {
      userId: fc.option(fc.constantFrom("u1", "u2"), { nil: undefined }),
      agentId: fc.option(fc.constantFrom("a1", "a2"), { nil: undefined }),
      runId: fc.option(fc.constantFrom("r1"), { nil: undefined }),
    },
    { requiredKeys: [] },
  );
  const nonEmpty = scopeArb.filter((scope) => Object.values(scope).some((value) => value !== undefined));
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(nonEmpty, { minLength: 1, maxLength: 160 }),
      fc.array(fc.tuple(nonEmpty, fc.integer({ min: 1, max: 40 })), { minLength: 1, maxLength: 6 }),
      fc.integer(),
      async (scopes, searches, seed) => {
        const next = seededRandom(seed);
        const store = sqliteStore({ path: newPath() });
        try {
          await store.init({ dimension: 8 });
          const records = scopes.map((scope, i) =>
            record(`m${i}`, randomVector(next, 8), Object.fromEntries(Object.entries(scope).filter(([, value]) => value !== undefined))),
          );
          await store.write({ upsert: records });
          for (const [scope, limit] of searches) {
            const filter = { scope: Object.fromEntries(Object.entries(scope).filter(([, value]) => value !== undefined)) };
            const query = randomVector(next, 8);
            const hits = await store.search({ vector: query, filter, limit });
            const inScope = records.filter((item) => inside(item, filter));
            expect(hits).toHaveLength(Math.min(limit, inScope.length));
            for (const hit of hits) {
              const full = records.find((item) => item.id === hit.record.id) as MemoryRecord;
              expect(inside(full, filter)).toBe(true);
              expect(hit.score).toBeCloseTo(cosine(query, full.vector as Float32Array), 5);
            }
            expect(hits.every((hit, i) => i === 0 || (hits[i - 1]?.score as number) >= hit.score - 1e-9)).toBe(true);
            if (inScope.length <= prefilterCandidates)
              expect(hits.map((hit) => hit.record.id)).toEqual(exactTop(records, filter, query, limit));
          }
        } finally {
          await store.close();
        }
        runs++;
      },
    ),
    { numRuns: 25 },
  );
  expect(runs).toBe(25);
});
