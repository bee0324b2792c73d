import { describe, expect, test } from "vitest";
import { MissingScopeError } from "../../../errors.js";
import type { Scope } from "../../../scope.js";
import { isKeywordSearchable, type ScoredRecord, type StoreFilter } from "../../../stores/vector-store.js";
import { seededRandom } from "../../seeded-random.js";
import {
  cosine,
  gridScopes,
  hitIds,
  ids,
  inScope,
  listAll,
  makeRecord,
  randomVector,
  type SuiteContext,
  scopeGrid,
  values,
} from "./fixtures.js";

/** `search`, `get`, and the scope filter on every read and delete. */
export function describeReads({ fresh }: SuiteContext): void {
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
      const survivors = [...(await listAll(store, { scope: { agentId: "a1" } })), ...(await listAll(store, { scope: { agentId: "a2" } }))];
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
}
