import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, inject, test } from "vitest";
import { postgresHistory } from "../src/history/postgres-history.js";
import { InvalidInputError, Memory, type MemoryOptions } from "../src/index.js";
import { pgvectorStore } from "../src/stores/pgvector-store.js";
import { deterministicEmbedder, scriptedLanguageModel } from "../src/testing/index.js";
import { reply } from "./extraction/setup.js";
import { createDatabase, withClient } from "./support/databases.js";

const root = mkdtempSync(join(tmpdir(), "engram-review-"));
const tables: string[] = [];
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await withClient(inject("pgliteUrl"), async (client) => {
    for (const table of tables) await client.query(`DROP TABLE IF EXISTS ${table}, ${table}_meta`);
  });
});

const T0 = Date.UTC(2026, 2, 1);
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

const backends: [string, () => Promise<Partial<MemoryOptions>>][] = [
  ["SQLite (the default data dir)", async () => ({ dataDir: mkdtempSync(join(root, "data-")) })],
  [
    "pgvector and PostgreSQL history",
    async () => {
      const table = `review_${process.pid}_${tables.length}`;
      tables.push(table);
      return {
        vectorStore: pgvectorStore({ connectionString: inject("pgliteUrl"), table }),
        historyStore: postgresHistory({ connectionString: await createDatabase(inject("postgresUrl"), "review") }),
      };
    },
  ],
];

describe.each(backends)("review on %s", (_name, backend) => {
  test("lists the newest memories since a date with their source (the message, or the model and turn) and history; accept marks, reject deletes", async () => {
    const clock = { now: T0 };
    const llm = scriptedLanguageModel([reply(["new", "ADD", "Alice is vegetarian"])], { modelId: "extractor-1" });
    const memory = new Memory({
      ...(await backend()),
      embedder: deterministicEmbedder({ dimension: 32 }),
      llm,
      writeBehind: { enabled: false },
      onError: () => {},
      _internal: { now: () => clock.now },
    });
    try {
      await memory.add("An old fact", { userId: "alice", infer: false, timestamp: iso(T0 - 30 * DAY) });
      clock.now = T0 + DAY;
      const [said] = (await memory.add([{ role: "user", content: "I live in Porto", name: "Alice" }], { userId: "alice", infer: false }))
        .results;
      clock.now = T0 + 2 * DAY;
      const [extracted] = (await memory.add("I stopped eating meat last year", { userId: "alice" })).results;
      clock.now = T0 + 3 * DAY;
      await memory.add("Bob's fact", { userId: "bob", infer: false });
      await memory.update(said?.id as string, "Alice: I live in Lisbon", { userId: "alice" });

      const { results } = await memory.review({ userId: "alice" }, { since: "7d" });
      expect(results.map((item) => item.id)).toEqual([said?.id, extracted?.id]);
      const [first, second] = results;
      expect(first?.source).toEqual({ kind: "verbatim", role: "user", name: "Alice" });
      expect(first?.history.map((entry) => [entry.event, entry.newValue])).toEqual([
        ["ADD", "Alice: I live in Porto"],
        ["UPDATE", "Alice: I live in Lisbon"],
      ]);
      expect(second?.source).toEqual({
        kind: "extracted",
        model: "engram-test/extractor-1",
        turn: "user: I stopped eating meat last year",
      });
      expect(second?.history.map((entry) => entry.event)).toEqual(["ADD"]);
      expect(second?.metadata).toEqual({});

      // A date works as well as a duration; the operator's pass covers every scope.
      expect((await memory.review({ userId: "alice" }, { since: iso(T0 + 2 * DAY) })).results.map((item) => item.id)).toEqual([
        said?.id,
        extracted?.id,
      ]);
      expect((await memory.review({ userId: "alice" }, { since: "40d" })).results).toHaveLength(3);
      // Changed at the same instant: the one said later comes first.
      expect((await memory.review({ allScopes: true }, { limit: 2 })).results.map((item) => item.memory)).toEqual([
        "Bob's fact",
        "Alice: I live in Lisbon",
      ]);

      const accepted = await memory.markReviewed(extracted?.id as string, { userId: "alice" });
      expect(accepted.reviewedAt).toBe(iso(T0 + 3 * DAY));
      expect((await memory.review({ userId: "alice" }, { unreviewedOnly: true })).results.map((item) => item.id)).toEqual([said?.id]);
      // The mark belongs to the text it was given for, and never shows in the caller's metadata.
      expect((await memory.get(extracted?.id as string, { userId: "alice" }))?.metadata).toEqual({});
      await memory.update(extracted?.id as string, "Alice is vegan", { userId: "alice" });
      expect((await memory.review({ userId: "alice" }, { unreviewedOnly: true })).results).toHaveLength(2);
      await expect(memory.markReviewed(extracted?.id as string, { userId: "bob" })).rejects.toMatchObject({ code: "MEMORY_NOT_FOUND" });

      await memory.delete(said?.id as string, { userId: "alice" });
      expect((await memory.review({ userId: "alice" })).results.map((item) => item.id)).toEqual([extracted?.id]);
      for (const bad of [{ since: "last week" }, { limit: 0 }, { since: "7d", extra: true }]) {
        await expect(memory.review({ userId: "alice" }, bad as never)).rejects.toSatisfy((error) => InvalidInputError.isInstance(error));
      }
      await expect(memory.review({} as never)).rejects.toMatchObject({ code: "MISSING_SCOPE" });
    } finally {
      await memory.close();
    }
  });

  test("sweep deletes expired memories and keeps their history", async () => {
    const clock = { now: T0 };
    const memory = new Memory({
      ...(await backend()),
      embedder: deterministicEmbedder({ dimension: 32 }),
      ttl: { run: "1d" },
      sweep: { enabled: false },
      writeBehind: { enabled: false },
      onError: () => {},
      _internal: { now: () => clock.now },
    });
    try {
      const [short] = (await memory.add("Run-only detail", { userId: "alice", runId: "r1" })).results;
      await memory.add("Lasting fact", { userId: "alice" });
      clock.now = T0 + DAY;
      expect((await memory.getAll({ userId: "alice" })).results.map((item) => item.memory)).toEqual(["Lasting fact"]);
      expect(await memory.sweep({ userId: "alice" })).toEqual({ deleted: 1, purged: false });
      expect((await memory.history(short?.id as string, { userId: "alice", runId: "r1" })).map((entry) => entry.event)).toEqual([
        "ADD",
        "DELETE",
      ]);
    } finally {
      await memory.close();
    }
  });
});
