import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { migrateMemories } from "../../examples/migrate-store.js";
import { postgresHistory } from "../../src/history/postgres-history.js";
import { sqliteHistory } from "../../src/history/sqlite-history.js";
import { Memory } from "../../src/memory.js";
import { chromaStore } from "../../src/stores/chroma-store.js";
import { pgvectorStore } from "../../src/stores/pgvector-store.js";
import { sqliteStore } from "../../src/stores/sqlite-store.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";
import { type ChromaServer, startChroma } from "../support/chroma-server.js";
import { createDatabase, withClient } from "../support/databases.js";

const directory = mkdtempSync(join(tmpdir(), "engram-migrate-"));
const vectorUrl = inject("pgliteUrl");
const table = `migrated_${process.pid}`;
let chroma: ChromaServer;
beforeAll(async () => {
  chroma = await startChroma();
}, 120_000);
afterAll(async () => {
  await chroma?.remove();
  rmSync(directory, { recursive: true, force: true });
  await withClient(vectorUrl, (client) => client.query(`DROP TABLE IF EXISTS ${table}, ${table}_meta`));
});

test("examples/migrate-store.ts moves memories from SQLite to pgvector + PostgreSQL with their ids, dates and history", async () => {
  const file = join(directory, "engram.db");
  const embedder = deterministicEmbedder();
  const before = new Memory({ dataDir: directory, embedder, writeBehind: { enabled: false } });
  const { results } = await before.add(
    [
      { role: "user", content: "I prefer Postgres" },
      { role: "user", content: "My dog is called Rex" },
    ],
    {
      userId: "alice",
      timestamp: "2024-05-01T10:00:00.000Z",
    },
  );
  await before.add("I live in Porto", { userId: "bob", agentId: "travel" });
  await before.update(results[1]?.id as string, "My dog is called Max", { userId: "alice" });
  const alice = (await before.getAll({ userId: "alice" })).results;
  const bob = (await before.getAll({ userId: "bob" })).results;
  await before.close();

  const historyUrl = await createDatabase(inject("postgresUrl"), "migrated_history");
  const moved = await migrateMemories({
    from: { store: sqliteStore({ path: file }), history: sqliteHistory({ path: file }) },
    to: { store: pgvectorStore({ connectionString: vectorUrl, table }), history: postgresHistory({ connectionString: historyUrl }) },
    scopes: [{ userId: "alice" }, { userId: "bob" }],
    dimension: embedder.dimension,
    modelId: embedder.modelId,
  });
  expect(moved).toBe(3);

  const after = new Memory({
    embedder,
    vectorStore: pgvectorStore({ connectionString: vectorUrl, table }),
    historyStore: postgresHistory({ connectionString: historyUrl }),
    writeBehind: { enabled: false },
  });
  expect((await after.getAll({ userId: "alice" })).results).toEqual(alice);
  expect((await after.getAll({ userId: "bob" })).results).toEqual(bob);
  expect((await after.history(results[1]?.id as string, { userId: "alice" })).map((entry) => entry.newValue)).toEqual([
    "My dog is called Rex",
    "My dog is called Max",
  ]);
  expect((await after.search("dog", { userId: "alice", limit: 1, threshold: 0 })).results[0]?.memory).toBe("My dog is called Max");
  await after.close();
});

test("examples/migrate-store.ts moves memories from SQLite to Chroma (history in PostgreSQL) and back, with their ids, dates and history", async () => {
  const embedder = deterministicEmbedder();
  const first = join(directory, "to-chroma");
  const back = join(directory, "from-chroma");
  mkdirSync(back);
  const before = new Memory({ dataDir: first, embedder, writeBehind: { enabled: false } });
  const { results } = await before.add("My cat is called Tom", { userId: "alice", timestamp: "2024-05-01T10:00:00.000Z" });
  await before.add("I live in Porto", { userId: "bob", agentId: "travel" });
  await before.update(results[0]?.id as string, "My cat is called Felix", { userId: "alice" });
  const alice = (await before.getAll({ userId: "alice" })).results;
  const bob = (await before.getAll({ userId: "bob" })).results;
  await before.close();

  const historyUrl = await createDatabase(inject("postgresUrl"), "chroma_history");
  const scopes = [{ userId: "alice" }, { userId: "bob" }];
  const inChroma = () => ({
    store: chromaStore({ url: chroma.url, collection: "migrated" }),
    history: postgresHistory({ connectionString: historyUrl }),
  });
  const from = join(first, "engram.db");
  const common = { scopes, dimension: embedder.dimension, modelId: embedder.modelId };
  expect(
    await migrateMemories({
      from: { store: sqliteStore({ path: from }), history: sqliteHistory({ path: from }) },
      to: inChroma(),
      ...common,
    }),
  ).toBe(2);

  const onChroma = new Memory({
    embedder,
    vectorStore: chromaStore({ url: chroma.url, collection: "migrated" }),
    historyStore: postgresHistory({ connectionString: historyUrl }),
    writeBehind: { enabled: false },
  });
  expect((await onChroma.getAll({ userId: "alice" })).results).toEqual(alice);
  expect((await onChroma.getAll({ userId: "bob" })).results).toEqual(bob);
  expect((await onChroma.search("cat", { userId: "alice", limit: 1, threshold: 0 })).results[0]?.memory).toBe("My cat is called Felix");
  await onChroma.close();

  const to = join(back, "engram.db");
  expect(
    await migrateMemories({ from: inChroma(), to: { store: sqliteStore({ path: to }), history: sqliteHistory({ path: to }) }, ...common }),
  ).toBe(2);
  const after = new Memory({ dataDir: back, embedder, writeBehind: { enabled: false } });
  expect((await after.getAll({ userId: "alice" })).results).toEqual(alice);
  expect((await after.getAll({ userId: "bob" })).results).toEqual(bob);
  expect((await after.history(results[0]?.id as string, { userId: "alice" })).map((entry) => entry.newValue)).toEqual([
    "My cat is called Tom",
    "My cat is called Felix",
  ]);
  await after.close();
});
