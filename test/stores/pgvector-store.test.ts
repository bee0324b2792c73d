import pg from "pg";
import { describe, expect, inject, test } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { pgvectorStore } from "../../src/stores/pgvector-store.js";
import type { VectorStore } from "../../src/stores/vector-store.js";
import { testVectorStore } from "../../src/testing/conformance/index.js";
import { withClient } from "../support/databases.js";

// Real Postgres with the real pgvector extension (PGlite), over the wire protocol, one table per test.
const url = inject("pgliteUrl");
const tables: string[] = [];
const tableOf = new WeakMap<VectorStore, string>();

testVectorStore({
  name: "pgvectorStore over the PostgreSQL wire protocol (PGlite + pgvector)",
  create: () => {
    const table = `conformance_${process.pid}_${tables.length}`;
    tables.push(table);
    const store = pgvectorStore({ connectionString: url, table });
    tableOf.set(store, table);
    return store;
  },
  cleanup: () =>
    withClient(url, async (client) => {
      for (const table of tables) await client.query(`DROP TABLE IF EXISTS ${table}, ${table}_meta`);
      for (const table of tables) await client.query(`DROP FUNCTION IF EXISTS ${table}_refuse`);
    }),
  failMidWrite: (store, id) =>
    withClient(url, async (client) => {
      const table = tableOf.get(store) as string;
      await client.query(`
        CREATE FUNCTION ${table}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF (TG_OP = 'DELETE' AND OLD.id = TG_ARGV[0]) OR (TG_OP <> 'DELETE' AND NEW.id = TG_ARGV[0]) THEN
            RAISE EXCEPTION 'refused by the test database';
          END IF;
          RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$`);
      await client.query(
        `CREATE TRIGGER refuse BEFORE INSERT OR UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_refuse('${id}')`,
      );
    }),
});

describe("pgvectorStore", () => {
  const table = (name: string) => {
    const full = `${name}_${process.pid}_${tables.length}`;
    tables.push(full);
    return full;
  };

  test("creates its schema on first use: b-tree indexes on the scope columns, a GIN full-text index, and no ANN index", async () => {
    const name = table("schema");
    const store = pgvectorStore({ connectionString: url, table: name });
    await store.init({ dimension: 8, modelId: "model-a" });
    const { indexes, dimension, meta } = await withClient(url, async (client) => ({
      indexes: (await client.query("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname", [name])).rows,
      dimension: (await client.query("SELECT atttypmod FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'embedding'", [name]))
        .rows[0]?.atttypmod,
      meta: (await client.query(`SELECT key, value FROM ${name}_meta ORDER BY key`)).rows,
    }));
    expect(dimension).toBe(8);
    expect(meta).toEqual([
      { key: "dimension", value: "8" },
      { key: "embedding_model", value: "model-a" },
    ]);
    const definitions = Object.fromEntries(indexes.map((row) => [row.indexname, row.indexdef as string]));
    expect(definitions[`${name}_by_user`]).toMatch(/btree \(user_id, agent_id, run_id, created_at\)/);
    expect(definitions[`${name}_by_agent`]).toMatch(/btree \(agent_id, run_id, created_at\)/);
    expect(definitions[`${name}_by_run`]).toMatch(/btree \(run_id, created_at\)/);
    expect(definitions[`${name}_by_hash`]).toMatch(/btree \(hash\)/);
    expect(definitions[`${name}_text_search`]).toMatch(/gin \(text_search\)/);
    expect(Object.values(definitions).some((definition) => /hnsw|ivfflat/.test(String(definition)))).toBe(false);
    await store.close();
  });

  test("several app servers initialising one new table at once all succeed", async () => {
    const name = table("racing");
    const stores = Array.from({ length: 4 }, () => pgvectorStore({ connectionString: url, table: name }));
    await Promise.all(stores.map((store) => store.init({ dimension: 8, modelId: "model-a" })));
    await Promise.all(stores.map((store) => store.close()));
  });

  test("a fixed dimension refuses an embedder of another with a ConfigError", async () => {
    const store = pgvectorStore({ connectionString: url, table: table("fixed"), dimension: 16 });
    const error = await store.init({ dimension: 8 }).catch((e: unknown) => e);
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain("16");
    await store.close();
  });

  test("an app's own pool is used and left open on close", async () => {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      const store = pgvectorStore({ pool, table: table("owned") });
      await store.init({ dimension: 2 });
      const now = new Date().toISOString();
      await store.write({
        upsert: [
          { id: "m", text: "t", hash: "h", vector: Float32Array.from([1, 0]), userId: "u", metadata: {}, createdAt: now, updatedAt: now },
        ],
      });
      await store.close();
      expect((await pool.query("SELECT 1 AS alive")).rows).toEqual([{ alive: 1 }]);
    } finally {
      await pool.end();
    }
  });

  test("unsafe table names and bad options are a ConfigError before anything is sent", () => {
    for (const options of [
      { connectionString: url, table: "memories; DROP TABLE users" },
      { connectionString: url, table: "Memories" },
      { connectionString: url, table: '"quoted"' },
      { connectionString: url, table: "a".repeat(49) },
      { connectionString: url, textSearchConfiguration: "english'); DROP" },
      { connectionString: url, dimension: 0 },
      { connectionString: "mysql://localhost/db" },
      { connectionString: url, pool: new pg.Pool() },
      {},
    ]) {
      expect(() => pgvectorStore(options as never), JSON.stringify(options.table ?? Object.keys(options))).toThrow(ConfigError);
    }
  });
});
