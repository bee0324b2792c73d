import { describe, expect, test } from "vitest";
import { ConfigError, WriteConflictError } from "../../../errors.js";
import { textHash } from "../../../internal/hash.js";
import { isKeywordSearchable, type MemoryRecord } from "../../../stores/vector-store.js";
import { DIMENSION, hitIds, ids, listAll, MODEL_ID, makeRecord, type SuiteContext, values } from "./fixtures.js";

/** `init`, `write`, and the preconditions and tombstones a write honours. */
export function describeWrites({ fresh, unopened, failMidWrite, atomicPreconditions }: SuiteContext): void {
  describe("init", () => {
    test("is idempotent and keeps what is stored", async () => {
      const store = await fresh();
      const record = makeRecord({ id: "init-1", userId: "u1" });
      await store.write({ upsert: [record] });
      await store.init({ dimension: DIMENSION, modelId: MODEL_ID });
      await store.init({ dimension: DIMENSION, modelId: MODEL_ID });
      expect(ids(await store.get(["init-1"], { scope: { userId: "u1" } }))).toEqual(["init-1"]);
    });

    test("concurrent init calls all resolve", async () => {
      const store = await unopened();
      await Promise.all(Array.from({ length: 5 }, () => store.init({ dimension: DIMENSION, modelId: MODEL_ID })));
      await store.write({ upsert: [makeRecord({ id: "init-2", userId: "u1" })] });
      expect(await store.get(["init-2"], { scope: { userId: "u1" } })).toHaveLength(1);
    });

    test("rejects another dimension with a ConfigError once vectors are stored", async () => {
      const store = await fresh();
      await store.write({ upsert: [makeRecord({ id: "dim-1", userId: "u1" })] });
      const error = await store.init({ dimension: DIMENSION * 2, modelId: MODEL_ID }).catch((e: unknown) => e);
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

    // Only stores whose write is one transaction can make this promise (see `failMidWrite`).
    if (failMidWrite) {
      test("a batch the database refuses mid-write applies nothing: upserts, deletes, tombstones and keyword index all roll back", async () => {
        const store = await fresh();
        const kept = makeRecord({ id: "mw-kept", text: "kept walrus", userId: "u1" });
        const refused = makeRecord({ id: "mw-refused", text: "refused walrus", userId: "u1" });
        await store.write({ upsert: [kept, refused] });
        await failMidWrite(store, "mw-refused");
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
      });
    }

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
      await store.init({ dimension: DIMENSION, modelId: MODEL_ID });
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
}
