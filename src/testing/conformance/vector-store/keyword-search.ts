import { describe, expect, test } from "vitest";
import { isKeywordSearchable, type MemoryRecord } from "../../../stores/vector-store.js";
import { seededRandom } from "../../seeded-random.js";
import { hitIds, makeRecord, type SuiteContext, values } from "./fixtures.js";

/** `keywordSearch`, for stores with the `KeywordSearchable` capability (the others pass by not having it). */
export function describeKeywordSearch({ fresh }: SuiteContext): void {
  describe("keyword search (KeywordSearchable stores)", () => {
    test("finds records by their words, best first, inside the scope, with their vectors", async () => {
      const store = await fresh();
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
      const store = await fresh();
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
      const store = await fresh();
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
      const store = await fresh();
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
}
