import { describe, expect, test } from "vitest";
import { inMemoryHistory } from "../../../history/in-memory-history.js";
import { withLifecycle } from "../../../lifecycle.js";
import { liveStore } from "../../../live-store.js";
import { Memory } from "../../../memory.js";
import { isKeywordSearchable, isTimeOrdered, type MemoryRecord } from "../../../stores/vector-store.js";
import { deterministicEmbedder } from "../../deterministic-embedder.js";
import { seededRandom } from "../../seeded-random.js";
import { listAll, makeRecord, type SuiteContext } from "./fixtures.js";

const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();
const expiring = (record: MemoryRecord, at: number | undefined): MemoryRecord =>
  at === undefined ? record : { ...record, metadata: withLifecycle(record.metadata, { expiresAt: iso(at) }) };

/**
 * Expiry over the store, with a fake clock: the expiry lives in each record's metadata, so the
 * store must keep it as written, and reads through Engram's live view (and a whole `Memory`) must
 * never return a memory from the instant it expires, before any sweep; a sweep then deletes it.
 */
export function describeExpiry({ fresh, unopened }: SuiteContext): void {
  describe("expiry (fake clock)", () => {
    test("expired records are never read through the live view, from the instant they expire; limits still fill with live ones", async () => {
      const store = await fresh();
      let now = T0;
      const live = liveStore(store, () => now);
      const next = seededRandom(71);
      // Ten records of one scope, every other one expiring at T0 + 1 h; one more never expires.
      const records = Array.from({ length: 10 }, (_, i) =>
        expiring(
          makeRecord({ id: `x-${i}`, userId: "u1", text: `shared word ${i}`, createdAt: iso(T0 - 1_000 * (10 - i)) }, next),
          i % 2 === 0 ? T0 + 3_600_000 : T0 + 7_200_000,
        ),
      );
      const forever = makeRecord({ id: "x-forever", userId: "u1", text: "shared word forever", createdAt: iso(T0) }, next);
      await store.write({ upsert: [...records, forever] });

      // The store keeps the expiry exactly as written.
      const [stored] = await store.get(["x-0"], { scope: { userId: "u1" } });
      expect(stored?.metadata).toEqual(records[0]?.metadata);

      const scope = { userId: "u1" };
      expect((await listAll(live, { scope })).length).toBe(11);
      now = T0 + 3_600_000; // the instant the even ones expire
      const odd = ["x-1", "x-3", "x-5", "x-7", "x-9"];
      expect((await listAll(live, { scope }, 2)).map((record) => record.id)).toEqual([...odd, "x-forever"]);
      expect((await live.list({ filter: { scope }, limit: 3 })).records.map((record) => record.id)).toEqual(odd.slice(0, 3));
      expect((await live.get(["x-0", "x-1"], { scope })).map((record) => record.id)).toEqual(["x-1"]);
      // The best match is expired: a search for it still returns `limit` live records.
      const hits = await live.search({ vector: records[0]?.vector as Float32Array, filter: { scope }, limit: 3 });
      expect(hits).toHaveLength(3);
      for (const hit of hits) expect([...odd, "x-forever"]).toContain(hit.record.id);
      if (isKeywordSearchable(live)) {
        const keyword = await live.keywordSearch({ text: "shared word", filter: { scope }, limit: 4 });
        expect(keyword).toHaveLength(4);
        for (const hit of keyword) expect([...odd, "x-forever"]).toContain(hit.record.id);
      }
      if (isTimeOrdered(live)) {
        expect((await live.latest({ filter: { scope }, limit: 2 })).map((record) => record.id)).toEqual(["x-forever", "x-9"]);
      }
      now = T0 + 7_200_000;
      expect((await listAll(live, { scope })).map((record) => record.id)).toEqual(["x-forever"]);
      // Nothing was deleted: only a sweep deletes.
      expect(await listAll(store, { scope })).toHaveLength(11);
    });

    test("a Memory over the store: add with ttl, gone from search, get and getAll when it expires, sweep deletes it and keeps its history", async () => {
      const store = await unopened();
      let now = T0;
      const memory = new Memory({
        vectorStore: store,
        historyStore: inMemoryHistory(),
        embedder: deterministicEmbedder({ dimension: 16 }),
        writeBehind: { enabled: false },
        _internal: { now: () => now },
        onError: () => {},
      });
      try {
        const scope = { userId: "u1", runId: "r1" };
        const [short] = (await memory.add("The parking spot is level 3 bay 12", { ...scope, ttl: "1h" })).results;
        const [kept] = (await memory.add("Alice is allergic to peanuts", { userId: "u1" })).results;
        const shortId = short?.id as string;
        expect((await memory.get(shortId, scope))?.expiresAt).toBe(iso(T0 + 3_600_000));
        expect((await memory.search("parking spot level", { ...scope, threshold: 0 })).results.map((item) => item.id)).toContain(shortId);
        // The same search again after it expired: nothing else changed, so the scope's ranked index is reused, without it.
        expect((await memory.search("parking spot level", { userId: "u1", threshold: 0 })).results.map((item) => item.id)).toContain(
          shortId,
        );

        now = T0 + 3_600_000;
        expect(await memory.get(shortId, scope)).toBeNull();
        expect((await memory.getAll({ userId: "u1" })).results.map((item) => item.id)).toEqual([kept?.id]);
        expect((await memory.search("parking spot level", { userId: "u1", threshold: 0 })).results.map((item) => item.id)).toEqual([
          kept?.id,
        ]);
        expect(await listAll(store, { scope })).toHaveLength(1);

        expect(await memory.sweep({ userId: "u1" })).toEqual({ deleted: 1, purged: false });
        expect(await listAll(store, { scope: { userId: "u1" } })).toHaveLength(1);
        const history = await memory.history(shortId, scope);
        expect(history.map((entry) => [entry.event, entry.previousValue])).toEqual([
          ["ADD", null],
          ["DELETE", "The parking spot is level 3 bay 12"],
        ]);
        expect(await memory.sweep({ userId: "u1" })).toEqual({ deleted: 0, purged: false });
      } finally {
        await memory.close();
      }
    });
  });
}
