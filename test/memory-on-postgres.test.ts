import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { postgresHistory } from "../src/history/postgres-history.js";
import { Memory } from "../src/memory.js";
import { pgvectorStore } from "../src/stores/pgvector-store.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";
import { createDatabase, withClient } from "./support/databases.js";

// The public API end to end on the one-Postgres deployment: pgvector for memories, PostgreSQL for
// history and the outbox (pgvector served by PGlite, history by a real PostgreSQL 15).
const vectorUrl = inject("pgliteUrl");
const table = `memory_${process.pid}`;
let historyUrl: string;
let memory: Memory;

beforeAll(async () => {
  historyUrl = await createDatabase(inject("postgresUrl"), "memory_on_postgres");
  memory = new Memory({
    embedder: deterministicEmbedder(),
    vectorStore: pgvectorStore({ connectionString: vectorUrl, table }),
    historyStore: postgresHistory({ connectionString: historyUrl }),
    writeBehind: { pollIntervalMs: 20 },
  });
});
afterAll(async () => {
  await memory.close();
  await withClient(vectorUrl, (client) => client.query(`DROP TABLE IF EXISTS ${table}, ${table}_meta`));
});

test("add, hybrid search, update, history and purge work on pgvector and PostgreSQL history", async () => {
  const added = await memory.add(
    [
      { role: "user", content: "I prefer Postgres for everything except analytics" },
      { role: "user", content: "My dog is called Rex" },
    ],
    { userId: "alice" },
  );
  expect(added.results.map((result) => result.event)).toEqual(["ADD", "ADD"]);
  await memory.add("I prefer Postgres for everything except analytics", { userId: "bob" });

  const { results } = await memory.search("which database do I prefer", { userId: "alice", limit: 1, threshold: 0 });
  expect(results[0]?.memory).toBe("I prefer Postgres for everything except analytics");
  expect(results[0]?.userId).toBe("alice");

  const rex = (await memory.search("dog", { userId: "alice", limit: 1, threshold: 0 })).results[0];
  expect(rex?.memory).toBe("My dog is called Rex");
  await memory.update(rex?.id as string, "My dog is called Max", { userId: "alice" });
  expect((await memory.history(rex?.id as string, { userId: "alice" })).map((entry) => [entry.event, entry.newValue])).toEqual([
    ["ADD", "My dog is called Rex"],
    ["UPDATE", "My dog is called Max"],
  ]);
  expect(await memory.get(rex?.id as string, { userId: "bob" })).toBeNull();

  await memory.delete(rex?.id as string, { userId: "alice", purge: true });
  expect(
    (await memory.history(rex?.id as string, { userId: "alice" })).every(
      (entry) => entry.newValue === null && entry.previousValue === null,
    ),
  ).toBe(true);
  const leftover = await withClient(
    vectorUrl,
    async (client) =>
      (await client.query(`SELECT count(*)::int AS n FROM ${table} WHERE text LIKE '%Rex%' OR text LIKE '%Max%'`)).rows[0]?.n,
  );
  expect(leftover).toBe(0);

  await memory.enqueue("Remember that I moved to Lisbon", { userId: "alice", idempotencyKey: "moved" });
  expect(await memory.flush({ timeoutMs: 20_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
  expect((await memory.getAll({ userId: "alice" })).results.map((item) => item.memory).sort()).toEqual([
    "I prefer Postgres for everything except analytics",
    "Remember that I moved to Lisbon",
  ]);
  expect((await memory.getAll({ userId: "bob" })).results).toHaveLength(1);
  expect(await memory.deleteAll({ userId: "alice", purge: true })).toEqual({ deleted: 2 });
  expect((await memory.getAll({ userId: "bob" })).results).toHaveLength(1);
});
