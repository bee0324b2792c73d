import { afterAll, afterEach, describe, expect, test } from "vitest";
import { seededRandom } from "../../bench/support/synthetic.js";
import { ConfigError, MissingScopeError, WriteConflictError } from "../../src/errors.js";
import { textHash } from "../../src/internal/hash.js";
import type { Scope } from "../../src/scope.js";
import {
  isKeywordSearchable,
  type MemoryRecord,
  type MetadataValue,
  type ScoredRecord,
  type StoreFilter,
  type VectorStore,
} from "../../src/stores/vector-store.js";

export interface VectorStoreConformanceOptions {
  /** Shown in the test names, e.g. "sqliteStore". */
  name: string;
  /** A new, EMPTY store (a fresh file, table or collection). Called once per test; the suite inits and closes it. */
  create: () => Promise<VectorStore> | VectorStore;
  /** Runs once after every test of the suite (e.g. removes temporary directories, drops databases). */
  cleanup?: () => Promise<void> | void;
  /**
   * For stores whose `write` is one transaction: makes the database itself refuse, from now on,
   * every insert, update and delete of the record with this id (a trigger, a check constraint).
   * The suite then writes batches whose earlier rows are written before the database refuses that
   * one, and checks that none of them stayed. A store without transactions leaves it out, and the
   * test is skipped: it only promises that a batch is validated before anything is sent.
   */
  failMidWrite?: (store: VectorStore, id: string) => Promise<void> | void;
  /**
   * Whether a write's preconditions (`expect`, tombstones) are checked in the same transaction as
   * the write. Stores without transactions check just before writing and set it to false: of
   * concurrent writes expecting one version, they only promise that at least one lands. @default true
   */
  atomicPreconditions?: boolean;
}

const DIMENSION = 8;

function randomVector(next: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: DIMENSION }, () => (next() * 2 - 1) * scale);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i++) {
    dot += (a[i] as number) * (b[i] as number);
    normA += (a[i] as number) ** 2;
    normB += (b[i] as number) ** 2;
  }
  return dot / Math.sqrt(normA * normB);
}

let sequence = 0;

function makeRecord(
  fields: Partial<MemoryRecord> & { id: string } & Scope,
  next: () => number = seededRandom(fields.id.length * 7919 + sequence++),
): MemoryRecord {
  const text = fields.text ?? `memory ${fields.id}`;
  const createdAt = fields.createdAt ?? new Date(Date.UTC(2025, 0, 1, 0, 0, sequence++)).toISOString();
  const record: MemoryRecord = {
    text,
    hash: textHash(text),
    vector: randomVector(next),
    metadata: {},
    createdAt,
    updatedAt: createdAt,
    ...fields,
  };
  // Scope keys given as undefined are left out, like Engram writes them.
  const cleaned = { ...record } as Record<string, unknown>;
  for (const key of ["userId", "agentId", "runId"]) if (cleaned[key] === undefined) delete cleaned[key];
  return cleaned as unknown as MemoryRecord;
}

/** The numbers of a vector, failing the test when it is missing. */
function values(vector: Float32Array | undefined): number[] {
  expect(vector).toBeInstanceOf(Float32Array);
  return [...(vector ?? [])];
}

function ids(records: readonly { id: string }[]): string[] {
  return records.map((record) => record.id).sort();
}

function hitIds(hits: readonly { record: { id: string } }[]): string[] {
  return ids(hits.map((hit) => hit.record));
}

function inScope(record: MemoryRecord, scope: Scope): boolean {
  return (["userId", "agentId", "runId"] as const).every((key) => scope[key] === undefined || record[key] === scope[key]);
}

async function listAll(store: VectorStore, filter: StoreFilter, limit = 1000): Promise<MemoryRecord[]> {
  const all: MemoryRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({ filter, limit, cursor });
    all.push(...page.records);
    cursor = page.cursor;
  } while (cursor);
  return all;
}

/** Every record of a grid of users × agents × runs (each optional, never all absent). */
function scopeGrid(): MemoryRecord[] {
  const records: MemoryRecord[] = [];
  const next = seededRandom(42);
  for (const userId of ["u1", "u2", undefined]) {
    for (const agentId of ["a1", "a2", undefined]) {
      for (const runId of ["r1", "r2", undefined]) {
        if (!userId && !agentId && !runId) continue;
        const id = `grid-${userId ?? "_"}-${agentId ?? "_"}-${runId ?? "_"}`;
        records.push(makeRecord({ id, text: `shared word ${id}`, userId, agentId, runId }, next));
      }
    }
  }
  return records;
}

/** Every filter scope over the grid's ids plus ids no record has: 4 × 4 × 4 − 1 combinations. */
function gridScopes(): Scope[] {
  const scopes: Scope[] = [];
  for (const userId of ["u1", "u2", "u3", undefined]) {
    for (const agentId of ["a1", "a2", "a3", undefined]) {
      for (const runId of ["r1", "r2", "r3", undefined]) {
        if (!userId && !agentId && !runId) continue;
        const scope: Scope = {};
        if (userId) scope.userId = userId;
        if (agentId) scope.agentId = agentId;
        if (runId) scope.runId = runId;
        scopes.push(scope);
      }
    }
  }
  return scopes;
}

/**
 * The shared conformance suite of the `VectorStore` contract (src/stores/vector-store.ts). Every
 * store implementation runs it from its own test file:
 *
 * @example
 * testVectorStore({ name: "sqliteStore", create: () => sqliteStore({ path: join(mkdtempSync(...), "a.db") }) });
 */
export function testVectorStore({ name, create, cleanup, failMidWrite, atomicPreconditions = true }: VectorStoreConformanceOptions): void {
  describe(`VectorStore conformance: ${name}`, () => {
    const open: VectorStore[] = [];

    async function fresh(): Promise<VectorStore> {
      const store = await create();
      open.push(store);
      await store.init({ dimension: DIMENSION, modelId: "conformance-model" });
      return store;
    }

    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((store) => store.close()));
    });
    afterAll(async () => {
      await cleanup?.();
    });

    describe("init", () => {
      test("is idempotent and keeps what is stored", async () => {
        const store = await fresh();
        const record = makeRecord({ id: "init-1", userId: "u1" });
        await store.write({ upsert: [record] });
        await store.init({ dimension: DIMENSION, modelId: "conformance-model" });
        await store.init({ dimension: DIMENSION, modelId: "conformance-model" });
        expect(ids(await store.get(["init-1"], { scope: { userId: "u1" } }))).toEqual(["init-1"]);
      });

      test("concurrent init calls all resolve", async () => {
        const store = await create();
        open.push(store);
        await Promise.all(Array.from({ length: 5 }, () => store.init({ dimension: DIMENSION, modelId: "conformance-model" })));
        await store.write({ upsert: [makeRecord({ id: "init-2", userId: "u1" })] });
        expect(await store.get(["init-2"], { scope: { userId: "u1" } })).toHaveLength(1);
      });

      test("rejects another dimension with a ConfigError once vectors are stored", async () => {
        const store = await fresh();
        await store.write({ upsert: [makeRecord({ id: "dim-1", userId: "u1" })] });
        const error = await store.init({ dimension: DIMENSION * 2, modelId: "conformance-model" }).catch((e: unknown) => e);
        expect(ConfigError.isInstance(error)).toBe(true);
        expect((error as Error).message).toMatch(String(DIMENSION));
        // The store still works with the dimension it holds.
        expect(await store.get(["dim-1"], { scope: { userId: "u1" } })).toHaveLength(1);
      });

      test("rejects another embedding model with a ConfigError once vectors are stored", async () => {
        const store = await fresh();
        await store.write({ upsert: [makeRecord({ id: "model-1", userId: "u1" })] });
        const error = await store.init({ dimension: DIMENSION, modelId: "another-model" }).catch((e: unknown) => e);
        expect(ConfigError.isInstance(error)).toBe(true);
      });
    });

    describe("write", () => {
      test("inserts records and returns them as written, with their vectors", async () => {
        const store = await fresh();
        const record = makeRecord({
          id: "w-1",
          text: "Ünïcödé text with \"quotes\", 'apostrophes' and emoji 🎉",
          userId: "u1",
          agentId: "a1",
          metadata: { nested: { list: [1, "two", null, true] }, plain: "x", number: 1.5 },
        });
        await store.write({ upsert: [record] });
        const [got] = await store.get(["w-1"], { scope: { userId: "u1" } });
        expect(got).toBeDefined();
        const { vector, ...rest } = got as MemoryRecord;
        const { vector: expectedVector, ...expected } = record;
        expect(rest).toEqual(expected);
        expect(got?.runId).toBeUndefined();
        expect(vector).toBeInstanceOf(Float32Array);
        expect(values(vector)).toEqual(values(expectedVector));
      });

      test("upsert of an existing id replaces the whole record, scope and vector included", async () => {
        const store = await fresh();
        await store.write({ upsert: [makeRecord({ id: "w-2", text: "old text", userId: "u1", metadata: { a: 1 } })] });
        const replacement = makeRecord({ id: "w-2", text: "new text", userId: "u2", agentId: "a1", metadata: { b: 2 } });
        await store.write({ upsert: [replacement] });
        expect(await store.get(["w-2"], { scope: { userId: "u1" } })).toEqual([]);
        const [got] = await store.get(["w-2"], { scope: { userId: "u2", agentId: "a1" } });
        expect(got?.text).toBe("new text");
        expect(got?.hash).toBe(textHash("new text"));
        expect(got?.metadata).toEqual({ b: 2 });
        expect(values(got?.vector)).toEqual(values(replacement.vector));
        expect(await listAll(store, { scope: { userId: "u2" } })).toHaveLength(1);
        const [hit] = await store.search({ vector: replacement.vector as Float32Array, filter: { scope: { userId: "u2" } }, limit: 5 });
        expect(hit?.score).toBeCloseTo(1, 4);
      });

      test("deletes ids, ignoring unknown ones, and applies upserts and deletes of one batch together", async () => {
        const store = await fresh();
        await store.write({ upsert: [makeRecord({ id: "d-1", userId: "u1" }), makeRecord({ id: "d-2", userId: "u1" })] });
        await store.write({ upsert: [makeRecord({ id: "d-3", userId: "u1" })], delete: ["d-1", "no-such-id"] });
        expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(["d-2", "d-3"]);
        await store.write({ delete: ["d-2"], erase: true });
        expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(["d-3"]);
        await store.write({});
        await store.write({ upsert: [], delete: [] });
        expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(["d-3"]);
      });

      test("a batch with a record of the wrong dimension or without a vector is refused before anything is written", async () => {
        const store = await fresh();
        await store.write({ upsert: [makeRecord({ id: "a-1", userId: "u1" })] });
        const bad = { ...makeRecord({ id: "a-3", userId: "u1" }), vector: new Float32Array(DIMENSION + 1).fill(1) };
        await expect(store.write({ upsert: [makeRecord({ id: "a-2", userId: "u1" }), bad], delete: ["a-1"] })).rejects.toThrow();
        const missing = { ...makeRecord({ id: "a-4", userId: "u1" }), vector: undefined };
        await expect(store.write({ upsert: [makeRecord({ id: "a-5", userId: "u1" }), missing], delete: ["a-1"] })).rejects.toThrow();
        expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(["a-1"]);
      });

      test.runIf(failMidWrite !== undefined)(
        "a batch the database refuses mid-write applies nothing: upserts, deletes, tombstones and keyword index all roll back",
        async () => {
          const store = await fresh();
          const kept = makeRecord({ id: "mw-kept", text: "kept walrus", userId: "u1" });
          const refused = makeRecord({ id: "mw-refused", text: "refused walrus", userId: "u1" });
          await store.write({ upsert: [kept, refused] });
          await failMidWrite?.(store, "mw-refused");
          const landed = [
            makeRecord({ id: "mw-new-1", text: "penguin one", userId: "u1" }),
            makeRecord({ id: "mw-new-2", text: "penguin two", userId: "u1" }),
          ];
          const batches = {
            // Rows are written in order: the new records land before the database refuses the update.
            "an update refused after inserts": {
              upsert: [...landed, { ...refused, text: "changed walrus", hash: textHash("changed walrus") }],
            },
            "a delete refused after inserts and another delete": { upsert: landed, delete: ["mw-kept", "mw-refused"] },
            "an erasing delete refused after another one": { upsert: landed, delete: ["mw-kept", "mw-refused"], erase: true },
          };
          for (const [what, batch] of Object.entries(batches)) {
            const error = await store.write(batch).then(
              () => undefined,
              (e: unknown) => e,
            );
            expect(error, `${what}: the write must fail`).toBeInstanceOf(Error);
            expect(WriteConflictError.isInstance(error), `${what}: refused by the database, not by a precondition`).toBe(false);
            const stored = await store.get(["mw-kept", "mw-refused", "mw-new-1", "mw-new-2"], { scope: { userId: "u1" } });
            expect(stored.map((record) => [record.id, record.text, record.updatedAt]).sort(), what).toEqual([
              [kept.id, kept.text, kept.updatedAt],
              [refused.id, refused.text, refused.updatedAt],
            ]);
          }
          const probe = landed[0]?.vector as Float32Array;
          expect(hitIds(await store.search({ vector: probe, filter: { scope: { userId: "u1" } }, limit: 10 }))).toEqual([
            "mw-kept",
            "mw-refused",
          ]);
          if (isKeywordSearchable(store)) {
            expect(await store.keywordSearch({ text: "penguin", filter: { scope: { userId: "u1" } }, limit: 10 })).toEqual([]);
          }
          // No tombstone of the rolled-back erasing delete stayed: the id can be written again.
          await store.write({
            upsert: [{ ...kept, text: "kept again", hash: textHash("kept again") }],
            expect: [{ id: kept.id, version: { hash: kept.hash, updatedAt: kept.updatedAt } }],
          });
          expect((await store.get([kept.id], { scope: { userId: "u1" } }))[0]?.text).toBe("kept again");
          // The refusal is the database's, for that id only: a batch without it lands whole.
          await store.write({ upsert: landed });
          expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(["mw-kept", "mw-new-1", "mw-new-2", "mw-refused"]);
        },
      );

      test("concurrent writes and reads all land", async () => {
        const store = await fresh();
        const records = Array.from({ length: 60 }, (_, i) => makeRecord({ id: `c-${String(i).padStart(2, "0")}`, userId: `u${i % 3}` }));
        const probe = records[0]?.vector as Float32Array;
        await Promise.all([
          ...records.map((record) => store.write({ upsert: [record] })),
          ...records.map(() => store.search({ vector: probe, filter: { scope: { userId: "u0" } }, limit: 3 })),
          // Concurrent replacements of one id leave exactly one record.
          ...Array.from({ length: 10 }, (_, i) =>
            store.write({ upsert: [makeRecord({ id: "c-same", text: `version ${i}`, userId: "u9" })] }),
          ),
        ]);
        for (const userId of ["u0", "u1", "u2"]) {
          expect(ids(await listAll(store, { scope: { userId } }))).toEqual(ids(records.filter((r) => r.userId === userId)));
        }
        const same = await listAll(store, { scope: { userId: "u9" } });
        expect(same).toHaveLength(1);
        expect(same[0]?.text).toMatch(/^version \d$/);
      });
    });

    describe("preconditions and tombstones (a write never lands on a changed or purged memory)", () => {
      const version = (record: MemoryRecord) => ({ hash: record.hash, updatedAt: record.updatedAt });
      const refused = async (write: Promise<void>, memoryIds: string[]) => {
        const error = await write.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(WriteConflictError.isInstance(error), String(error)).toBe(true);
        expect([...(error as WriteConflictError).memoryIds].sort()).toEqual([...memoryIds].sort());
      };

      test("applies a batch whose expectations hold: the expected version, or absent for a new id", async () => {
        const store = await fresh();
        const old = makeRecord({ id: "p-1", text: "old", userId: "u1" });
        await store.write({ upsert: [old], expect: [{ id: "p-1", version: null }] });
        const updated = makeRecord({ id: "p-1", text: "new", userId: "u1", updatedAt: "2026-01-01T00:00:00.000Z" });
        await store.write({ upsert: [updated], expect: [{ id: "p-1", version: version(old) }] });
        expect((await store.get(["p-1"], { scope: { userId: "u1" } }))[0]?.text).toBe("new");
        await store.write({ delete: ["p-1"], expect: [{ id: "p-1", version: version(updated) }] });
        expect(await store.get(["p-1"], { scope: { userId: "u1" } })).toEqual([]);
      });

      test("refuses the whole batch with a WriteConflictError naming the memory when an expectation fails", async () => {
        const store = await fresh();
        const old = makeRecord({ id: "p-2", text: "old", userId: "u1" });
        const other = makeRecord({ id: "p-3", text: "other", userId: "u1" });
        await store.write({ upsert: [old, other] });
        const stale = { hash: textHash("older"), updatedAt: old.updatedAt };
        const fresh4 = makeRecord({ id: "p-4", userId: "u1" });
        await refused(
          store.write({
            upsert: [makeRecord({ id: "p-2", text: "lost update", userId: "u1" }), fresh4],
            delete: ["p-3"],
            expect: [
              { id: "p-2", version: stale },
              { id: "p-4", version: null },
            ],
          }),
          ["p-2"],
        );
        // Nothing of the batch was applied.
        expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(["p-2", "p-3"]);
        expect((await store.get(["p-2"], { scope: { userId: "u1" } }))[0]?.text).toBe("old");
        // An id expected absent that exists, and an id expected present that is gone, conflict too.
        await refused(store.write({ upsert: [makeRecord({ id: "p-3", userId: "u1" })], expect: [{ id: "p-3", version: null }] }), ["p-3"]);
        await refused(store.write({ delete: ["p-9"], expect: [{ id: "p-9", version: version(old) }] }), ["p-9"]);
      });

      test("an erased id is tombstoned: no upsert, with or without expectations, brings it back", async () => {
        const store = await fresh();
        const record = makeRecord({ id: "t-1", text: "my bank PIN is 4321", userId: "u1" });
        await store.write({ upsert: [record, makeRecord({ id: "t-2", userId: "u1" })] });
        await store.write({ delete: ["t-1"], erase: true });
        await refused(store.write({ upsert: [record] }), ["t-1"]);
        await refused(store.write({ upsert: [record], expect: [{ id: "t-1", version: null }] }), ["t-1"]);
        await refused(store.write({ upsert: [record], expect: [{ id: "t-1", version: version(record) }] }), ["t-1"]);
        expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(["t-2"]);
        // Erasing an id that is not stored (deleted earlier, or never written) tombstones it too.
        await store.write({ delete: ["t-3"], erase: true });
        await refused(store.write({ upsert: [makeRecord({ id: "t-3", userId: "u1" })] }), ["t-3"]);
        // A plain delete leaves no tombstone: the id may be written again (e.g. an undo).
        await store.write({ delete: ["t-2"] });
        await store.write({ upsert: [makeRecord({ id: "t-2", userId: "u1" })], expect: [{ id: "t-2", version: null }] });
        expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(["t-2"]);
      });

      test("deleteMany tombstones every id it deletes, and reset forgets the tombstones", async () => {
        const store = await fresh();
        const mine = makeRecord({ id: "m-1", userId: "u1" });
        const theirs = makeRecord({ id: "m-2", userId: "u2" });
        await store.write({ upsert: [mine, theirs] });
        expect(await store.deleteMany({ scope: { userId: "u1" } })).toBe(1);
        await refused(store.write({ upsert: [mine] }), ["m-1"]);
        await store.write({ upsert: [theirs] });
        await store.reset();
        await store.init({ dimension: DIMENSION, modelId: "conformance-model" });
        await store.write({ upsert: [mine], expect: [{ id: "m-1", version: null }] });
        expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(["m-1"]);
      });

      test("of concurrent writes expecting the same version, exactly one lands", async () => {
        const store = await fresh();
        const old = makeRecord({ id: "race-1", text: "v0", userId: "u1" });
        await store.write({ upsert: [old] });
        const outcomes = await Promise.allSettled(
          Array.from({ length: 6 }, (_, i) =>
            store.write({
              upsert: [makeRecord({ id: "race-1", text: `v${i + 1}`, userId: "u1", updatedAt: `2026-01-0${i + 1}T00:00:00.000Z` })],
              expect: [{ id: "race-1", version: version(old) }],
            }),
          ),
        );
        const landed = outcomes.filter((outcome) => outcome.status === "fulfilled");
        // Stores without transactions check just before writing: they can only promise at least one.
        if (atomicPreconditions) expect(landed).toHaveLength(1);
        else expect(landed.length).toBeGreaterThanOrEqual(1);
        for (const outcome of outcomes) {
          if (outcome.status === "rejected") expect(WriteConflictError.isInstance(outcome.reason)).toBe(true);
        }
      });
    });

    describe("search", () => {
      test("returns the exact cosine order, best first, with cosine scores, whatever the vector lengths", async () => {
        const store = await fresh();
        const next = seededRandom(7);
        const query = randomVector(next);
        const records = Array.from({ length: 40 }, (_, i) =>
          makeRecord({ id: `s-${i}`, userId: "u1", vector: randomVector(next, 0.01 + next() * 50) }),
        );
        // Same direction as the query, much longer: cosine 1, although it is far away in L2 and huge in dot product terms.
        records.push(makeRecord({ id: "s-parallel", userId: "u1", vector: query.map((x) => x * 7) }));
        records.push(makeRecord({ id: "s-opposite", userId: "u1", vector: query.map((x) => -x) }));
        await store.write({ upsert: records });
        const expected = records
          .map((record) => ({ id: record.id, score: cosine(query, record.vector as Float32Array) }))
          .sort((a, b) => b.score - a.score);

        const hits = await store.search({ vector: query, filter: { scope: { userId: "u1" } }, limit: 10 });
        expect(hits.map((hit) => hit.record.id)).toEqual(expected.slice(0, 10).map((e) => e.id));
        hits.forEach((hit, i) => {
          expect(hit.score).toBeCloseTo(expected[i]?.score as number, 4);
        });
        expect(hits[0]?.record.id).toBe("s-parallel");
        expect(hits[0]?.score).toBeCloseTo(1, 4);

        const all = await store.search({ vector: query, filter: { scope: { userId: "u1" } }, limit: 100 });
        expect(all).toHaveLength(records.length);
        expect(all.at(-1)?.record.id).toBe("s-opposite");
        expect(all.at(-1)?.score).toBeCloseTo(-1, 4);
        expect(await store.search({ vector: query, filter: { scope: { userId: "u1" } }, limit: 1 })).toHaveLength(1);
      });

      test("search results are full records (text, hash, scope, metadata, dates)", async () => {
        const store = await fresh();
        const record = makeRecord({ id: "s-full", text: "full record", userId: "u1", runId: "r1", metadata: { k: "v" } });
        await store.write({ upsert: [record] });
        const hits = await store.search({ vector: record.vector as Float32Array, filter: { scope: { runId: "r1" } }, limit: 1 });
        expect(hits).toHaveLength(1);
        const { vector: _vector, ...got } = (hits[0] as ScoredRecord).record;
        const { vector: _expectedVector, ...expected } = record;
        expect(got).toEqual(expected);
      });

      test("applies the scope filter inside the query: a small scope among many closer records still gets its top k", async () => {
        const store = await fresh();
        const next = seededRandom(11);
        const query = randomVector(next);
        // 400 records of other scopes, all nearly identical to the query.
        const crowd = Array.from({ length: 400 }, (_, i) =>
          makeRecord({
            id: `crowd-${i}`,
            userId: i % 2 ? "crowd" : "target",
            agentId: i % 2 ? "a1" : "other-agent",
            vector: query.map((x) => x + (next() - 0.5) * 0.01),
          }),
        );
        // 4 records of the target scope, far from the query.
        const target = Array.from({ length: 4 }, (_, i) =>
          makeRecord({ id: `target-${i}`, userId: "target", agentId: "a1", vector: randomVector(next) }),
        );
        for (let i = 0; i < crowd.length; i += 100) await store.write({ upsert: crowd.slice(i, i + 100) });
        await store.write({ upsert: target });
        const hits = await store.search({ vector: query, filter: { scope: { userId: "target", agentId: "a1" } }, limit: 3 });
        const expected = target
          .map((record) => ({ id: record.id, score: cosine(query, record.vector as Float32Array) }))
          .sort((a, b) => b.score - a.score)
          .slice(0, 3)
          .map((e) => e.id);
        expect(hits.map((hit) => hit.record.id)).toEqual(expected);
      });

      test("a query with nothing in scope returns nothing", async () => {
        const store = await fresh();
        const record = makeRecord({ id: "lonely", userId: "u1" });
        await store.write({ upsert: [record] });
        expect(await store.search({ vector: record.vector as Float32Array, filter: { scope: { userId: "u2" } }, limit: 10 })).toEqual([]);
      });
    });

    describe("scope filter: AND of the given ids, exact matches, on every read and delete", () => {
      test("search, get, list and keyword search see exactly the records of every scope combination", async () => {
        const store = await fresh();
        const records = scopeGrid();
        await store.write({ upsert: records });
        const allIds = records.map((r) => r.id);
        const query = randomVector(seededRandom(3));
        for (const scope of gridScopes()) {
          const expected = ids(records.filter((record) => inScope(record, scope)));
          const where = JSON.stringify(scope);
          expect(hitIds(await store.search({ vector: query, filter: { scope }, limit: 100 })), `search ${where}`).toEqual(expected);
          expect(ids(await store.get(allIds, { scope })), `get ${where}`).toEqual(expected);
          expect(ids(await listAll(store, { scope }, 7)), `list ${where}`).toEqual(expected);
          if (isKeywordSearchable(store)) {
            expect(hitIds(await store.keywordSearch({ text: "shared", filter: { scope }, limit: 100 })), `keywordSearch ${where}`).toEqual(
              expected,
            );
          }
        }
      });

      test("ids are matched exactly: no prefix, case or wildcard matches", async () => {
        const store = await fresh();
        const next = seededRandom(5);
        const records = ["alice", "Alice", "alice2", "ali%", "ali_e", "al'ice", 'al"ice', "a*"].map((userId, i) =>
          makeRecord({ id: `exact-${i}`, text: `exact ${i}`, userId }, next),
        );
        await store.write({ upsert: records });
        for (const record of records) {
          const scope = { userId: record.userId };
          expect(ids(await listAll(store, { scope })), record.userId).toEqual([record.id]);
          expect(hitIds(await store.search({ vector: randomVector(next), filter: { scope }, limit: 100 }))).toEqual([record.id]);
        }
        for (const userId of ["ali", "ALICE", "%", "_", "*", "alice "]) {
          expect(await listAll(store, { scope: { userId } }), userId).toEqual([]);
        }
      });

      test("deleteMany deletes exactly the scope's records and returns how many", async () => {
        const store = await fresh();
        const records = scopeGrid();
        await store.write({ upsert: records });
        let left = records;
        for (const scope of [
          { userId: "u1", agentId: "a1" },
          { agentId: "a2", runId: "r1" },
          { runId: "r2" },
          { userId: "u3" },
          { userId: "u2" },
        ]) {
          const doomed = left.filter((record) => inScope(record, scope));
          expect(await store.deleteMany({ scope }), JSON.stringify(scope)).toBe(doomed.length);
          left = left.filter((record) => !inScope(record, scope));
          const remaining = await store.get(
            records.map((r) => r.id),
            { scope: { userId: "u1" } },
          );
          expect(ids(remaining)).toEqual(ids(left.filter((r) => r.userId === "u1")));
        }
        expect(await store.deleteMany({ scope: { userId: "u2" } })).toBe(0);
        const survivors = [
          ...(await listAll(store, { scope: { agentId: "a1" } })),
          ...(await listAll(store, { scope: { agentId: "a2" } })),
        ];
        expect(ids(survivors)).toEqual(ids(left.filter((r) => r.agentId)));
      });

      test("a filter without any scope id is refused with MissingScopeError, and nothing is deleted", async () => {
        const store = await fresh();
        const record = makeRecord({ id: "guarded", userId: "u1" });
        await store.write({ upsert: [record] });
        const vector = record.vector as Float32Array;
        const unscoped: Scope[] = [{}, { userId: "" }, { userId: undefined, agentId: "", runId: "" }];
        for (const scope of unscoped) {
          const filter: StoreFilter = { scope };
          const calls: [string, () => Promise<unknown>][] = [
            ["search", () => store.search({ vector, filter, limit: 10 })],
            ["get", () => store.get(["guarded"], filter)],
            ["list", () => store.list({ filter, limit: 10 })],
            ["deleteMany", () => store.deleteMany(filter)],
            ["deleteMany with hash", () => store.deleteMany({ scope, hash: record.hash })],
          ];
          if (isKeywordSearchable(store)) calls.push(["keywordSearch", () => store.keywordSearch({ text: "memory", filter, limit: 10 })]);
          for (const [call, run] of calls) {
            const error = await run().then(
              () => undefined,
              (e: unknown) => e,
            );
            expect(MissingScopeError.isInstance(error), `${call} with scope ${JSON.stringify(scope)}`).toBe(true);
          }
        }
        expect(await store.get(["guarded"], { scope: { userId: "u1" } })).toHaveLength(1);
      });
    });

    describe("get", () => {
      test("returns only the requested records inside the filter, once each, with their vectors", async () => {
        const store = await fresh();
        const mine = makeRecord({ id: "g-1", userId: "u1", agentId: "a1" });
        const alsoMine = makeRecord({ id: "g-2", userId: "u1", agentId: "a2" });
        const theirs = makeRecord({ id: "g-3", userId: "u2", agentId: "a1" });
        await store.write({ upsert: [mine, alsoMine, theirs] });
        const got = await store.get(["g-1", "g-3", "g-1", "unknown"], { scope: { userId: "u1" } });
        expect(ids(got)).toEqual(["g-1"]);
        expect(values(got[0]?.vector)).toEqual(values(mine.vector));
        expect(await store.get(["g-3"], { scope: { userId: "u1" } })).toEqual([]);
        expect(await store.get(["g-2"], { scope: { userId: "u1", agentId: "a1" } })).toEqual([]);
        expect(ids(await store.get(["g-1", "g-2"], { scope: { userId: "u1" } }))).toEqual(["g-1", "g-2"]);
        expect(await store.get([], { scope: { userId: "u1" } })).toEqual([]);
      });
    });

    describe("list", () => {
      test("pages oldest first (createdAt, then id), completely, without duplicates", async () => {
        const store = await fresh();
        const next = seededRandom(13);
        // Several records share one createdAt: the id breaks the tie.
        const records = Array.from({ length: 23 }, (_, i) =>
          makeRecord(
            {
              id: `p-${String.fromCharCode(122 - i)}`,
              userId: "u1",
              createdAt: new Date(Date.UTC(2025, 0, 1, 0, 0, Math.floor(i / 4))).toISOString(),
            },
            next,
          ),
        );
        await store.write({ upsert: [...records].reverse() });
        await store.write({ upsert: [makeRecord({ id: "p-other", userId: "u2" }, next)] });
        const expected = [...records]
          .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1))
          .map((r) => r.id);
        for (const limit of [1, 5, 7, 23, 100]) {
          const seen: string[] = [];
          let cursor: string | undefined;
          let pages = 0;
          do {
            const page = await store.list({ filter: { scope: { userId: "u1" } }, limit, cursor });
            expect(page.records.length).toBeLessThanOrEqual(limit);
            seen.push(...page.records.map((r) => r.id));
            cursor = page.cursor;
            pages++;
          } while (cursor && pages < 100);
          expect(seen, `limit ${limit}`).toEqual(expected);
          expect(pages, `limit ${limit}`).toBe(Math.max(1, Math.ceil(expected.length / limit)));
        }
      });

      test("a cursor stays valid while records are added and deleted: no duplicates, nothing skipped", async () => {
        const store = await fresh();
        const next = seededRandom(17);
        const at = (second: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, second)).toISOString();
        const records = Array.from({ length: 10 }, (_, i) => makeRecord({ id: `q-${i}`, userId: "u1", createdAt: at(10 + i) }, next));
        await store.write({ upsert: records });
        const first = await store.list({ filter: { scope: { userId: "u1" } }, limit: 4 });
        expect(first.records.map((r) => r.id)).toEqual(["q-0", "q-1", "q-2", "q-3"]);
        // An older record appears, one already seen and one not yet seen are deleted, a newer one appears.
        await store.write({
          upsert: [
            makeRecord({ id: "q-old", userId: "u1", createdAt: at(1) }, next),
            makeRecord({ id: "q-new", userId: "u1", createdAt: at(59) }, next),
          ],
          delete: ["q-1", "q-5"],
        });
        const rest: string[] = [];
        let cursor = first.cursor;
        while (cursor) {
          const page = await store.list({ filter: { scope: { userId: "u1" } }, limit: 4, cursor });
          rest.push(...page.records.map((r) => r.id));
          cursor = page.cursor;
        }
        expect(rest).toEqual(["q-4", "q-6", "q-7", "q-8", "q-9", "q-new"]);
      });

      test("an empty scope lists nothing and no cursor", async () => {
        const store = await fresh();
        expect(await store.list({ filter: { scope: { userId: "nobody" } }, limit: 10 })).toEqual({ records: [], cursor: undefined });
      });
    });

    describe("metadata and hash filters", () => {
      const values: [string, Record<string, unknown>][] = [
        ["m-string-1", { kind: "1" }],
        ["m-number-1", { kind: 1 }],
        ["m-number-1.5", { kind: 1.5 }],
        ["m-number-0", { kind: 0 }],
        ["m-true", { kind: true }],
        ["m-string-true", { kind: "true" }],
        ["m-false", { kind: false }],
        ["m-null", { kind: null }],
        ["m-string-null", { kind: "null" }],
        ["m-empty-string", { kind: "" }],
        ["m-missing", {}],
        ["m-object", { kind: { nested: 1 } }],
        ["m-array", { kind: [1] }],
        ["m-other-key", { other: 1 }],
        ["m-both", { kind: "both", other: 2, "dotted.key": "yes" }],
      ];
      const filters: [Record<string, MetadataValue>, string[]][] = [
        [{ kind: "1" }, ["m-string-1"]],
        [{ kind: 1 }, ["m-number-1"]],
        [{ kind: 1.5 }, ["m-number-1.5"]],
        [{ kind: 0 }, ["m-number-0"]],
        [{ kind: true }, ["m-true"]],
        [{ kind: "true" }, ["m-string-true"]],
        [{ kind: false }, ["m-false"]],
        [{ kind: null }, ["m-null"]],
        [{ kind: "null" }, ["m-string-null"]],
        [{ kind: "" }, ["m-empty-string"]],
        [{ kind: "both", other: 2 }, ["m-both"]],
        [{ kind: "both", other: 3 }, []],
        [{ "dotted.key": "yes" }, ["m-both"]],
        [{ other: 1 }, ["m-other-key"]],
        [{ absent: null }, []],
        [{}, values.map(([id]) => id)],
      ];

      test("equality filters are type-exact and AND-ed, in search, get, list and keyword search", async () => {
        const store = await fresh();
        const next = seededRandom(19);
        const records = values.map(([id, metadata]) => makeRecord({ id, text: `tagged ${id}`, userId: "u1", metadata }, next));
        // The same metadata in another scope never leaks in.
        const elsewhere = values.map(([id, metadata]) => makeRecord({ id: `x-${id}`, text: `tagged ${id}`, userId: "u2", metadata }, next));
        await store.write({ upsert: [...records, ...elsewhere] });
        for (const [metadata, expectedIds] of filters) {
          const filter: StoreFilter = { scope: { userId: "u1" }, metadata };
          const expected = [...expectedIds].sort();
          const where = JSON.stringify(metadata);
          expect(hitIds(await store.search({ vector: randomVector(next), filter, limit: 100 })), `search ${where}`).toEqual(expected);
          expect(
            ids(
              await store.get(
                records.map((r) => r.id),
                filter,
              ),
            ),
            `get ${where}`,
          ).toEqual(expected);
          expect(ids(await listAll(store, filter, 4)), `list ${where}`).toEqual(expected);
          if (isKeywordSearchable(store)) {
            expect(hitIds(await store.keywordSearch({ text: "tagged", filter, limit: 100 })), `keywordSearch ${where}`).toEqual(expected);
          }
        }
      });

      test("deleteMany honours metadata filters", async () => {
        const store = await fresh();
        const next = seededRandom(23);
        await store.write({ upsert: values.map(([id, metadata]) => makeRecord({ id, userId: "u1", metadata }, next)) });
        expect(await store.deleteMany({ scope: { userId: "u1" }, metadata: { kind: 1 } })).toBe(1);
        expect(await store.deleteMany({ scope: { userId: "u1" }, metadata: { kind: null } })).toBe(1);
        expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(
          values
            .map(([id]) => id)
            .filter((id) => id !== "m-number-1" && id !== "m-null")
            .sort(),
        );
      });

      test("the hash filter finds a text's records inside the scope only", async () => {
        const store = await fresh();
        const next = seededRandom(29);
        await store.write({
          upsert: [
            makeRecord({ id: "h-1", text: "same text", userId: "u1", agentId: "a1" }, next),
            makeRecord({ id: "h-2", text: "same text", userId: "u1", agentId: "a2" }, next),
            makeRecord({ id: "h-3", text: "same text", userId: "u2" }, next),
            makeRecord({ id: "h-4", text: "other text", userId: "u1", agentId: "a1" }, next),
          ],
        });
        const hash = textHash("same text");
        expect(ids(await listAll(store, { scope: { userId: "u1" }, hash }))).toEqual(["h-1", "h-2"]);
        expect(ids(await listAll(store, { scope: { userId: "u1", agentId: "a1" }, hash }))).toEqual(["h-1"]);
        expect(
          hitIds(
            await store.search({
              vector: randomVector(next),
              filter: { scope: { agentId: "a1" }, hash: textHash("other text") },
              limit: 10,
            }),
          ),
        ).toEqual(["h-4"]);
        expect(await store.deleteMany({ scope: { userId: "u1" }, hash })).toBe(2);
        expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(["h-4"]);
        expect(ids(await listAll(store, { scope: { userId: "u2" } }))).toEqual(["h-3"]);
      });
    });

    describe("reset", () => {
      test("deletes every record of every scope, and the store works again after init", async () => {
        const store = await fresh();
        await store.write({ upsert: scopeGrid() });
        await store.reset();
        for (const scope of [{ userId: "u1" }, { userId: "u2" }, { agentId: "a1" }, { agentId: "a2" }, { runId: "r1" }, { runId: "r2" }]) {
          expect(await listAll(store, { scope })).toEqual([]);
        }
        await store.init({ dimension: DIMENSION, modelId: "conformance-model" });
        await store.write({ upsert: [makeRecord({ id: "after-reset", userId: "u1" })] });
        expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(["after-reset"]);
      });
    });

    describe("keyword search (KeywordSearchable stores)", () => {
      test("finds records by their words, best first, inside the scope, with their vectors", async () => {
        const store = await create();
        open.push(store);
        await store.init({ dimension: DIMENSION, modelId: "conformance-model" });
        if (!isKeywordSearchable(store)) {
          // Not a capability of this store: hybrid search falls back to vectors alone.
          expect(isKeywordSearchable(store)).toBe(false);
          return;
        }
        const next = seededRandom(31);
        const records = [
          makeRecord({ id: "k-1", text: "postgres postgres postgres is my database", userId: "u1" }, next),
          makeRecord({ id: "k-2", text: "I like postgres and a lot of other unrelated things in a long sentence", userId: "u1" }, next),
          makeRecord({ id: "k-3", text: "my cat is called Rex", userId: "u1" }, next),
          makeRecord({ id: "k-4", text: "postgres everywhere", userId: "u2" }, next),
          makeRecord({ id: "k-5", text: "clickhouse for analytics", userId: "u1", agentId: "a1" }, next),
        ];
        await store.write({ upsert: records });
        const hits = await store.keywordSearch({ text: "Which postgres?", filter: { scope: { userId: "u1" } }, limit: 10 });
        expect(hits.map((hit) => hit.record.id)).toEqual(["k-1", "k-2"]);
        expect(hits[0]?.score).toBeGreaterThan(hits[1]?.score as number);
        for (const hit of hits) {
          const source = records.find((r) => r.id === hit.record.id) as MemoryRecord;
          expect(values(hit.record.vector)).toEqual(values(source.vector));
          expect(hit.record.text).toBe(source.text);
          expect(hit.record.userId).toBe("u1");
        }
        expect(
          hitIds(await store.keywordSearch({ text: "postgres clickhouse", filter: { scope: { userId: "u1", agentId: "a1" } }, limit: 10 })),
        ).toEqual(["k-5"]);
        expect(await store.keywordSearch({ text: "postgres", filter: { scope: { userId: "u1" } }, limit: 1 })).toHaveLength(1);
        expect(await store.keywordSearch({ text: "nothing matches this", filter: { scope: { userId: "u1" } }, limit: 10 })).toEqual([]);
        expect(await store.keywordSearch({ text: "postgres", filter: { scope: { userId: "u3" } }, limit: 10 })).toEqual([]);
      });

      test("query syntax characters are plain text, never an error or an operator", async () => {
        const store = await create();
        open.push(store);
        await store.init({ dimension: DIMENSION, modelId: "conformance-model" });
        if (!isKeywordSearchable(store)) return;
        await store.write({ upsert: [makeRecord({ id: "syntax", text: "alpha beta gamma", userId: "u1" })] });
        for (const text of [
          'alpha" OR "',
          "alpha*",
          "NOT alpha",
          "alpha AND",
          "(alpha",
          "beta:gamma",
          "^alpha",
          "NEAR(alpha beta)",
          "'; DROP TABLE x; --",
          "!!!",
          "",
        ]) {
          const hits = await store.keywordSearch({ text, filter: { scope: { userId: "u1" } }, limit: 10 });
          expect(Array.isArray(hits), text).toBe(true);
        }
        expect(hitIds(await store.keywordSearch({ text: 'alpha" OR "zzz', filter: { scope: { userId: "u1" } }, limit: 10 }))).toEqual([
          "syntax",
        ]);
        expect(await store.keywordSearch({ text: "gamma", filter: { scope: { userId: "u2" } }, limit: 10 })).toEqual([]);
      });

      test("a small scope gets its keyword hits even when many other scopes match better", async () => {
        const store = await create();
        open.push(store);
        await store.init({ dimension: DIMENSION, modelId: "conformance-model" });
        if (!isKeywordSearchable(store)) return;
        const next = seededRandom(37);
        const crowd = Array.from({ length: 300 }, (_, i) =>
          makeRecord({ id: `kc-${i}`, text: "zebra zebra zebra", userId: `crowd-${i % 5}` }, next),
        );
        await store.write({ upsert: crowd });
        await store.write({
          upsert: [makeRecord({ id: "kt-1", text: "a zebra in a long sentence about many other things entirely", userId: "target" }, next)],
        });
        expect(hitIds(await store.keywordSearch({ text: "zebra", filter: { scope: { userId: "target" } }, limit: 2 }))).toEqual(["kt-1"]);
      });

      test("deleted and replaced texts are no longer found by their old words", async () => {
        const store = await create();
        open.push(store);
        await store.init({ dimension: DIMENSION, modelId: "conformance-model" });
        if (!isKeywordSearchable(store)) return;
        await store.write({
          upsert: [
            makeRecord({ id: "kd-1", text: "walrus one", userId: "u1" }),
            makeRecord({ id: "kd-2", text: "walrus two", userId: "u1" }),
          ],
        });
        await store.write({ upsert: [makeRecord({ id: "kd-1", text: "penguin one", userId: "u1" })], delete: ["kd-2"] });
        expect(await store.keywordSearch({ text: "walrus", filter: { scope: { userId: "u1" } }, limit: 10 })).toEqual([]);
        expect(hitIds(await store.keywordSearch({ text: "penguin", filter: { scope: { userId: "u1" } }, limit: 10 }))).toEqual(["kd-1"]);
        await store.deleteMany({ scope: { userId: "u1" } });
        expect(await store.keywordSearch({ text: "penguin", filter: { scope: { userId: "u1" } }, limit: 10 })).toEqual([]);
      });
    });
  });
}
