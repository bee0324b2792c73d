import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { expect, onTestFinished, test } from "vitest";
import { sqliteStore } from "../../src/stores/sqlite-store.js";
import type { VectorStore } from "../../src/stores/vector-store.js";
import { testVectorStore } from "../../src/testing/conformance/index.js";

const directory = mkdtempSync(join(tmpdir(), "engram-sqlite-store-"));
let files = 0;
const paths = new WeakMap<VectorStore, string>();

testVectorStore({
  name: "sqliteStore",
  create: () => {
    const path = join(directory, `store-${files++}.db`);
    const store = sqliteStore({ path });
    paths.set(store, path);
    return store;
  },
  cleanup: () => rmSync(directory, { recursive: true, force: true }),
  // Triggers added through a second connection: the store's own connection sees the new schema.
  failMidWrite: (store, id) => {
    const db = new DatabaseSync(paths.get(store) as string);
    try {
      db.exec("PRAGMA busy_timeout = 5000");
      for (const [operation, row] of [
        ["insert", "new"],
        ["update", "new"],
        ["delete", "old"],
      ] as const) {
        db.exec(`CREATE TRIGGER refuse_${operation} BEFORE ${operation} ON memories WHEN ${row}.id = '${id}'
          BEGIN SELECT RAISE(ABORT, 'refused by the test database'); END`);
      }
    } finally {
      db.close();
    }
  },
});

test("a database made before the scope was indexed for keyword search is migrated when opened", async () => {
  const own = mkdtempSync(join(tmpdir(), "engram-sqlite-migration-"));
  onTestFinished(() => rmSync(own, { recursive: true, force: true }));
  const path = join(own, "old-schema.db");
  const old = new DatabaseSync(path);
  // The first released schema: a keyword index over the text alone.
  old.exec(`
    CREATE TABLE engram_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE memories (
      rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, text TEXT NOT NULL, hash TEXT NOT NULL,
      user_id TEXT, agent_id TEXT, run_id TEXT, metadata TEXT NOT NULL, created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL, embedding BLOB NOT NULL);
    CREATE VIRTUAL TABLE memories_fts USING fts5(
      text, content = 'memories', content_rowid = 'rowid', tokenize = 'porter unicode61 remove_diacritics 2');
    CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
      INSERT INTO memories_fts (rowid, text) VALUES (new.rowid, new.text);
    END;
  `);
  const insert = old.prepare(
    "INSERT INTO memories (id, text, hash, user_id, agent_id, metadata, created_at, updated_at, embedding) VALUES (?, ?, 'h', ?, ?, '{}', 't', 't', ?)",
  );
  insert.run("m1", "alice likes walruses", "alice", "coder", new Uint8Array(new Float32Array([1, 0]).buffer));
  insert.run("m2", "bob likes walruses", "bob", null, new Uint8Array(new Float32Array([0, 1]).buffer));
  old.close();

  const store = sqliteStore({ path });
  await store.init({ dimension: 2 });
  const hits = await store.keywordSearch({ text: "walruses", filter: { scope: { userId: "alice", agentId: "coder" } }, limit: 10 });
  expect(hits.map((hit) => hit.record.id)).toEqual(["m1"]);
  await store.write({ delete: ["m1"] });
  expect(await store.keywordSearch({ text: "walruses", filter: { scope: { userId: "alice" } }, limit: 10 })).toEqual([]);
  expect(
    (await store.keywordSearch({ text: "walruses", filter: { scope: { userId: "bob" } }, limit: 10 })).map((hit) => hit.record.id),
  ).toEqual(["m2"]);
  await store.close();
});

test("a database whose keyword index does not stem words gets one that does, rebuilt from its texts", async () => {
  const own = mkdtempSync(join(tmpdir(), "engram-sqlite-migration-"));
  onTestFinished(() => rmSync(own, { recursive: true, force: true }));
  const path = join(own, "unstemmed.db");
  const first = sqliteStore({ path });
  await first.init({ dimension: 2 });
  const vector = new Float32Array([1, 0]);
  const at = "2024-01-01T00:00:00.000Z";
  await first.write({
    upsert: [{ id: "m1", text: "alice prefers walruses", hash: "h1", vector, userId: "alice", metadata: {}, createdAt: at, updatedAt: at }],
  });
  await first.close();
  // Turn it into a file of the version before stemming: the same index without the porter tokenizer.
  const old = new DatabaseSync(path);
  const definition = (old.prepare("SELECT sql FROM sqlite_master WHERE name = 'memories_fts'").get() as { sql: string }).sql;
  old.exec("DROP TABLE memories_fts");
  old.exec(definition.replace("porter ", ""));
  old.exec("INSERT INTO memories_fts (memories_fts) VALUES ('rebuild')");
  expect((old.prepare("SELECT count(*) AS n FROM memories_fts WHERE memories_fts MATCH 'preferences'").get() as { n: number }).n).toBe(0);
  old.close();

  const store = sqliteStore({ path });
  await store.init({ dimension: 2 });
  const hits = await store.keywordSearch({ text: "her preferences", filter: { scope: { userId: "alice" } }, limit: 10 });
  expect(hits.map((hit) => hit.record.id)).toEqual(["m1"]);
  await store.close();
});

test("a scope's memories are read in time order from an index (the newest, the stamps), not by sorting the scope; files made before get it on open", async () => {
  const own = mkdtempSync(join(tmpdir(), "engram-sqlite-time-index-"));
  onTestFinished(() => rmSync(own, { recursive: true, force: true }));
  const path = join(own, "engram.db");
  const first = sqliteStore({ path });
  await first.init({ dimension: 2 });
  const at = (minute: number) => new Date(Date.UTC(2025, 0, 1, 0, minute)).toISOString();
  await first.write({
    upsert: [3, 1, 2].map((minute) => ({
      id: `m${minute}`,
      text: `memory ${minute}`,
      hash: `h${minute}`,
      vector: Float32Array.from([1, minute]),
      userId: "alice",
      ...(minute === 2 ? { agentId: "coder" } : {}),
      metadata: {},
      createdAt: at(minute),
      updatedAt: at(minute),
    })),
  });
  await first.close();
  // As a file written before the index existed: dropped, then the store opens it again.
  const raw = new DatabaseSync(path);
  raw.exec("DROP INDEX memories_by_user_time; DROP INDEX memories_by_agent_time");
  raw.close();
  const store = sqliteStore({ path });
  await store.init({ dimension: 2 });
  onTestFinished(() => store.close());
  expect((await store.latest({ filter: { scope: { userId: "alice" } }, limit: 2 })).map((record) => record.id)).toEqual(["m3", "m2"]);
  expect((await store.stamps({ scope: { userId: "alice" } })).map((stamp) => stamp.id)).toEqual(["m1", "m2", "m3"]);
  expect((await store.list({ filter: { scope: { userId: "alice" }, hash: "h2" }, limit: 5 })).records.map((r) => r.id)).toEqual(["m2"]);
  const check = new DatabaseSync(path, { readOnly: true });
  onTestFinished(() => check.close());
  const plan = (sql: string) =>
    (check.prepare(`EXPLAIN QUERY PLAN ${sql}`).all("alice") as { detail: string }[]).map((row) => row.detail).join(" | ");
  for (const sql of [
    "SELECT id FROM memories WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT 1",
    "SELECT id, hash, created_at, updated_at FROM memories WHERE user_id = ? ORDER BY created_at, id",
  ]) {
    expect(plan(sql)).toMatch(/memories_by_user_time/);
    expect(plan(sql)).not.toMatch(/TEMP B-TREE/);
  }
});
