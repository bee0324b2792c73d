import { describe, expect, test } from "vitest";
import { isTimeOrdered } from "../../../stores/vector-store.js";
import { seededRandom } from "../../seeded-random.js";
import { listAll, makeRecord, type SuiteContext, values } from "./fixtures.js";

const at = (second: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, second)).toISOString();

/** `stamps` and `latest`, for stores with the `TimeOrdered` capability (the others pass by not having it). */
export function describeTimeOrdered({ fresh }: SuiteContext): void {
  describe("time order (TimeOrdered stores)", () => {
    test("stamps: every record of the filter, in list order, with its version; nothing of other scopes", async () => {
      const store = await fresh();
      if (!isTimeOrdered(store)) {
        // Not a capability of this store: search reads the scope through list instead.
        expect(isTimeOrdered(store)).toBe(false);
        return;
      }
      const next = seededRandom(41);
      // Several records share one createdAt: the id breaks the tie, as in list.
      const records = Array.from({ length: 12 }, (_, i) =>
        makeRecord({ id: `t-${String.fromCharCode(108 - i)}`, userId: "u1", createdAt: at(Math.floor(i / 3)) }, next),
      );
      await store.write({
        upsert: [
          ...[...records].reverse(),
          makeRecord({ id: "t-other", userId: "u2", createdAt: at(1) }, next),
          makeRecord({ id: "t-agent", userId: "u1", agentId: "a1", createdAt: at(9) }, next),
        ],
      });
      const listed = await listAll(store, { scope: { userId: "u1" } });
      const stamps = await store.stamps({ scope: { userId: "u1" } });
      expect(stamps).toEqual(listed.map(({ id, hash, createdAt, updatedAt }) => ({ id, hash, createdAt, updatedAt })));
      expect(stamps.map((stamp) => stamp.id)).toContain("t-agent");
      expect((await store.stamps({ scope: { userId: "u1", agentId: "a1" } })).map((stamp) => stamp.id)).toEqual(["t-agent"]);
      expect(await store.stamps({ scope: { userId: "nobody" } })).toEqual([]);
      expect((await store.stamps({ scope: { userId: "u1" }, hash: records[0]?.hash })).map((stamp) => stamp.id)).toEqual(["t-l"]);
    });

    test("stamps: a changed record shows its new version, a deleted one is gone", async () => {
      const store = await fresh();
      if (!isTimeOrdered(store)) return;
      const next = seededRandom(43);
      const first = makeRecord({ id: "s-1", userId: "u1", text: "before", createdAt: at(1) }, next);
      const second = makeRecord({ id: "s-2", userId: "u1", createdAt: at(2) }, next);
      await store.write({ upsert: [first, second] });
      const changed = makeRecord({ id: "s-1", userId: "u1", text: "after", createdAt: at(1), updatedAt: at(30) }, next);
      await store.write({ upsert: [changed], delete: ["s-2"] });
      expect(await store.stamps({ scope: { userId: "u1" } })).toEqual([
        { id: "s-1", hash: changed.hash, createdAt: changed.createdAt, updatedAt: at(30) },
      ]);
    });

    test("latest: the newest records of the filter, newest first, with their vectors", async () => {
      const store = await fresh();
      if (!isTimeOrdered(store)) return;
      const next = seededRandom(47);
      const records = Array.from({ length: 7 }, (_, i) =>
        makeRecord({ id: `l-${i}`, userId: "u1", runId: i % 2 ? "r1" : "r2", createdAt: at(Math.floor(i / 2)) }, next),
      );
      await store.write({ upsert: [...records, makeRecord({ id: "l-newer-elsewhere", userId: "u2", createdAt: at(50) }, next)] });
      const newest = await store.latest({ filter: { scope: { userId: "u1" } }, limit: 3 });
      // l-5 and l-4 share a second: the larger id is newer, as the reverse of list order.
      expect(newest.map((record) => record.id)).toEqual(["l-6", "l-5", "l-4"]);
      for (const record of newest) {
        const source = records.find((r) => r.id === record.id);
        expect(values(record.vector)).toEqual(values(source?.vector));
        expect(record.text).toBe(source?.text);
      }
      expect((await store.latest({ filter: { scope: { userId: "u1", runId: "r1" } }, limit: 1 })).map((r) => r.id)).toEqual(["l-5"]);
      expect(await store.latest({ filter: { scope: { userId: "nobody" } }, limit: 5 })).toEqual([]);
      expect((await store.latest({ filter: { scope: { userId: "u1" } }, limit: 100 })).map((r) => r.id)).toEqual(
        [...records].reverse().map((r) => r.id),
      );
    });
  });
}
