import { describe, expect, test } from "vitest";
import { StoreError } from "../../../errors.js";
import { textHash } from "../../../internal/hash.js";
import { isKeywordSearchable, type MetadataValue, type StoreFilter } from "../../../stores/vector-store.js";
import { seededRandom } from "../../seeded-random.js";
import { DIMENSION, hitIds, ids, listAll, MODEL_ID, makeRecord, randomVector, type SuiteContext, scopeGrid } from "./fixtures.js";

/** `list` paging, metadata and hash filters, `deleteMany` by filter, and `reset`. */
export function describeQueries({ fresh }: SuiteContext): void {
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

    test("regression: a cursor no list call returned was a plain Error in some stores; it is a StoreError in every one", async () => {
      const store = await fresh();
      await store.write({ upsert: [makeRecord({ id: "c-1", userId: "u1" }), makeRecord({ id: "c-2", userId: "u1" })] });
      const { cursor } = await store.list({ filter: { scope: { userId: "u1" } }, limit: 1 });
      expect(cursor).toEqual(expect.any(String));
      const forged = Buffer.from(JSON.stringify(["not", "a", "cursor", "of", "this", "store"])).toString("base64url");
      for (const bad of ["not a cursor", "", forged, `${cursor}x`.replace(/^./, "!")]) {
        const error = await store.list({ filter: { scope: { userId: "u1" } }, limit: 1, cursor: bad }).catch((e: unknown) => e);
        expect(StoreError.isInstance(error), `cursor ${JSON.stringify(bad)}: ${String(error)}`).toBe(true);
      }
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
      await store.init({ dimension: DIMENSION, modelId: MODEL_ID });
      await store.write({ upsert: [makeRecord({ id: "after-reset", userId: "u1" })] });
      expect(ids(await listAll(store, { scope: { userId: "u1" } }))).toEqual(["after-reset"]);
    });
  });
}
