import { z } from "zod";
import {
  connectionOptions,
  exactlyOneConnection,
  exactlyOneConnectionMessage,
  LazyPool,
  type PostgresClient,
  type PostgresPool,
  tableNameMessage,
  tableNamePattern,
} from "../internal/postgres.js";
import { keywordTerms } from "../retrieval/keywords.js";
import { encodeCursor, readCursor } from "../store-kit/cursor.js";
import { assertSameEmbedding } from "../store-kit/embedding.js";
import { metadataConditions, scopeConditions } from "../store-kit/filter.js";
import { rankByBm25 } from "../store-kit/ranking.js";
import { scopeColumns, scopeOfRow } from "../store-kit/scopes.js";
import { assertNoConflict, checkedUpserts, idsToCheck } from "../store-kit/writes.js";
import { parseConfig } from "../validation.js";
import type {
  KeywordSearchable,
  MemoryRecord,
  RecordStamp,
  ScopeCount,
  ScopeEnumerable,
  ScoredRecord,
  StoreFilter,
  TimeOrdered,
  VectorStore,
  WriteBatch,
} from "./vector-store.js";

export type { PostgresPool } from "../internal/postgres.js";

export interface PgvectorStoreOptions {
  /** A postgres:// URL; the store opens (and closes) its own pool. Give this or `pool`. */
  connectionString?: string;
  /** A pool your app owns (`new pg.Pool(…)`); the store never ends it. Give this or `connectionString`. */
  pool?: PostgresPool;
  /** Table of memories; a `<table>_meta` table sits next to it. @default "engram_memories" */
  table?: string;
  /**
   * Size of the `vector` column. When given, `init` refuses an embedder of another dimension.
   * @default the embedder's dimension
   */
  dimension?: number;
  /** PostgreSQL text search configuration used for keyword search. @default "english" */
  textSearchConfiguration?: string;
}

const optionsSchema = z
  .strictObject({
    ...connectionOptions,
    table: z.string().regex(tableNamePattern, tableNameMessage).optional(),
    dimension: z.number().int().min(1).max(16_000).optional(),
    textSearchConfiguration: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, "textSearchConfiguration must be the name of a text search configuration, e.g. english or simple")
      .optional(),
  })
  .refine(exactlyOneConnection, exactlyOneConnectionMessage);

const selectColumns = "id, text, hash, user_id, agent_id, run_id, metadata, created_at, updated_at";

interface Row {
  id: string;
  text: string;
  hash: string;
  user_id: string | null;
  agent_id: string | null;
  run_id: string | null;
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
  embedding?: string;
  distance?: number;
}

function vectorLiteral(vector: Float32Array): string {
  return `[${Array.from(vector).join(",")}]`;
}

function parseVector(text: string): Float32Array {
  return Float32Array.from(text.slice(1, -1).split(","), Number);
}

function toRecord(row: Row): MemoryRecord {
  return {
    id: row.id,
    text: row.text,
    hash: row.hash,
    ...scopeOfRow(row),
    metadata: row.metadata,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    ...(row.embedding != null && { vector: parseVector(row.embedding) }),
  };
}

/** WHERE conditions of a filter, appending their values to `params`. Scope first: the indexes serve it. */
function where(filter: StoreFilter, params: unknown[]): string {
  const parts: string[] = [];
  for (const [key, value] of scopeConditions(filter)) {
    params.push(value);
    parts.push(`${scopeColumns[key]} = $${params.length}`);
  }
  if (filter.hash !== undefined) {
    params.push(filter.hash);
    parts.push(`hash = $${params.length}`);
  }
  for (const [key, value] of metadataConditions(filter)) {
    // jsonb equality: same JSON type and value (1 = 1.0; "1" ≠ 1); a missing key never matches.
    params.push(key, JSON.stringify(value));
    parts.push(`metadata -> $${params.length - 1}::text = $${params.length}::jsonb`);
  }
  return parts.join(" AND ");
}

class PgvectorStore implements VectorStore, KeywordSearchable, ScopeEnumerable, TimeOrdered {
  readonly #pool: LazyPool;
  readonly #table: string;
  readonly #meta: string;
  readonly #tombstones: string;
  readonly #language: string;
  readonly #fixedDimension: number | undefined;
  #dimension: number | undefined;

  constructor(options: z.infer<typeof optionsSchema>) {
    this.#pool = new LazyPool(options);
    this.#table = options.table ?? "engram_memories";
    this.#meta = `${this.#table}_meta`;
    this.#tombstones = `${this.#table}_tombstones`;
    this.#language = options.textSearchConfiguration ?? "english";
    this.#fixedDimension = options.dimension;
  }

  async init({ dimension, modelId }: { dimension: number; modelId?: string }): Promise<void> {
    const t = this.#table;
    const made = (holder: string, space: { dimension?: number | string; modelId?: string }) =>
      assertSameEmbedding(space, { dimension, modelId }, { holder, elsewhere: "another table" });
    made(`pgvectorStore({ dimension: ${this.#fixedDimension} })`, { dimension: this.#fixedDimension });
    await this.#pool.transaction("schema creation", async (client) => {
      // Several app servers may start at once: one of them creates the schema, the others wait and check it.
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`engram schema ${t}`]);
      await client.query("CREATE EXTENSION IF NOT EXISTS vector");
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.#meta} (key text PRIMARY KEY, value text NOT NULL)`);
      const stored = new Map<string, string>(
        (await client.query(`SELECT key, value FROM ${this.#meta}`)).rows.map((row: { key: string; value: string }) => [
          row.key,
          row.value,
        ]),
      );
      made(`The table ${t}`, { dimension: stored.get("dimension"), modelId: stored.get("embedding_model") });
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${t} (
          id text COLLATE "C" PRIMARY KEY,
          text text NOT NULL,
          hash text NOT NULL,
          user_id text,
          agent_id text,
          run_id text,
          metadata jsonb NOT NULL,
          created_at text COLLATE "C" NOT NULL,
          updated_at text NOT NULL,
          embedding vector(${dimension}) NOT NULL,
          text_search tsvector GENERATED ALWAYS AS (to_tsvector('${this.#language}'::regconfig, text)) STORED
        )`);
      // After a reset the table is empty but may still be typed for another dimension.
      const [column] = (
        await client.query(`SELECT atttypmod AS dimension FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'embedding'`, [t])
      ).rows as { dimension: number }[];
      if (column && column.dimension !== dimension) {
        const { rows } = await client.query(`SELECT 1 FROM ${t} LIMIT 1`);
        if (rows.length > 0) made(`The table ${t}`, { dimension: column.dimension });
        await client.query(`ALTER TABLE ${t} ALTER COLUMN embedding TYPE vector(${dimension})`);
      }
      // B-tree indexes on the scope columns: search is exact cosine over the rows of one scope.
      await client.query(`CREATE INDEX IF NOT EXISTS ${t}_by_user ON ${t} (user_id, agent_id, run_id, created_at)`);
      await client.query(`CREATE INDEX IF NOT EXISTS ${t}_by_agent ON ${t} (agent_id, run_id, created_at)`);
      await client.query(`CREATE INDEX IF NOT EXISTS ${t}_by_run ON ${t} (run_id, created_at)`);
      await client.query(`CREATE INDEX IF NOT EXISTS ${t}_by_hash ON ${t} (hash)`);
      await client.query(`CREATE INDEX IF NOT EXISTS ${t}_text_search ON ${t} USING gin (text_search)`);
      // Ids of erased memories (no text): a write can never bring a purged memory back.
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.#tombstones} (id text COLLATE "C" PRIMARY KEY, erased_at timestamptz NOT NULL)`,
      );
      const set = `INSERT INTO ${this.#meta} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`;
      await client.query(set, ["dimension", String(dimension)]);
      if (modelId !== undefined) await client.query(set, ["embedding_model", modelId]);
    });
    this.#dimension = dimension;
  }

  async write(batch: WriteBatch): Promise<void> {
    const upserts = checkedUpserts(batch, this.#dimension);
    const deletes = [...new Set(batch.delete ?? [])];
    if (upserts.length === 0 && deletes.length === 0) return;
    await this.#pool.transaction("write", async (client) => {
      const ids = idsToCheck(batch);
      if (ids.length > 0) {
        // Row locks: a concurrent purge of these ids waits for this transaction, or this one sees its result.
        const { rows: stored } = await client.query(
          `SELECT id, hash, updated_at FROM ${this.#table} WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
          [ids],
        );
        const { rows: erased } = await client.query(`SELECT id FROM ${this.#tombstones} WHERE id = ANY($1::text[])`, [ids]);
        assertNoConflict(
          batch,
          new Map(stored.map((row: Row) => [row.id, { hash: row.hash, updatedAt: row.updated_at }])),
          new Set(erased.map((row: { id: string }) => row.id)),
        );
      }
      if (upserts.length > 0) {
        await client.query(
          `INSERT INTO ${this.#table} (id, text, hash, user_id, agent_id, run_id, metadata, created_at, updated_at, embedding)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::text[], $9::text[], $10::vector[])
           ON CONFLICT (id) DO UPDATE SET text = excluded.text, hash = excluded.hash, user_id = excluded.user_id,
             agent_id = excluded.agent_id, run_id = excluded.run_id, metadata = excluded.metadata,
             created_at = excluded.created_at, updated_at = excluded.updated_at, embedding = excluded.embedding`,
          [
            upserts.map((r) => r.id),
            upserts.map((r) => r.text),
            upserts.map((r) => r.hash),
            upserts.map((r) => r.userId ?? null),
            upserts.map((r) => r.agentId ?? null),
            upserts.map((r) => r.runId ?? null),
            upserts.map((r) => JSON.stringify(r.metadata)),
            upserts.map((r) => r.createdAt),
            upserts.map((r) => r.updatedAt),
            upserts.map((r) => vectorLiteral(r.vector as Float32Array)),
          ],
        );
      }
      if (deletes.length > 0) await client.query(`DELETE FROM ${this.#table} WHERE id = ANY($1::text[])`, [deletes]);
      if (batch.erase && deletes.length > 0) {
        await client.query(`INSERT INTO ${this.#tombstones} (id, erased_at) SELECT unnest($1::text[]), now() ON CONFLICT (id) DO NOTHING`, [
          deletes,
        ]);
      }
    });
    if (batch.erase && deletes.length > 0) await this.#vacuum();
  }

  async search({ vector, filter, limit }: { vector: Float32Array; filter: StoreFilter; limit: number }): Promise<ScoredRecord[]> {
    const params: unknown[] = [vectorLiteral(vector)];
    const condition = where(filter, params);
    params.push(limit);
    // No ANN index on purpose: the planner takes the scope's rows through a b-tree index and
    // ranks them all, so results are exact whatever the scope's size.
    const { rows } = await this.#pool.query<Row>(
      "search",
      `SELECT ${selectColumns}, embedding <=> $1::vector AS distance FROM ${this.#table}
       WHERE ${condition} ORDER BY distance, id LIMIT $${params.length}`,
      params,
    );
    return rows.map((row) => ({ record: toRecord(row), score: 1 - (row.distance as number) }));
  }

  async keywordSearch({ text, filter, limit }: { text: string; filter: StoreFilter; limit: number }): Promise<ScoredRecord[]> {
    const terms = keywordTerms(text);
    const params: unknown[] = [];
    const condition = where(filter, params);
    if (terms.length === 0) return [];
    // The full-text index finds the scope's rows holding any term; they are ranked here by BM25, as
    // in every store, with document frequencies against the whole scope. Terms are letters and
    // digits only, so joining them with | is a valid tsquery.
    const [{ rows: matches }, { rows: counted }] = await Promise.all([
      this.#pool.query<{ id: string; text: string }>(
        "keyword search",
        `SELECT id, text FROM ${this.#table}, to_tsquery('${this.#language}'::regconfig, $${params.length + 1}) query
         WHERE text_search @@ query AND ${condition}`,
        [...params, terms.join(" | ")],
      ),
      this.#pool.query<{ count: string }>("keyword search", `SELECT count(*) AS count FROM ${this.#table} WHERE ${condition}`, params),
    ]);
    const best = rankByBm25(terms, matches, { documentCount: Number(counted[0]?.count ?? 0), limit });
    if (best.length === 0) return [];
    const full = new Map(
      (
        await this.get(
          best.map((hit) => hit.candidate.id),
          filter,
        )
      ).map((record) => [record.id, record]),
    );
    return best.flatMap(({ candidate, score }) => {
      const record = full.get(candidate.id);
      return record ? [{ record, score }] : [];
    });
  }

  async get(ids: readonly string[], filter: StoreFilter): Promise<MemoryRecord[]> {
    const params: unknown[] = [];
    const condition = where(filter, params);
    if (ids.length === 0) return [];
    params.push([...new Set(ids)]);
    const { rows } = await this.#pool.query<Row>(
      "get",
      `SELECT ${selectColumns}, embedding::text AS embedding FROM ${this.#table} WHERE ${condition} AND id = ANY($${params.length}::text[])`,
      params,
    );
    return rows.map(toRecord);
  }

  async list({ filter, limit, cursor }: { filter: StoreFilter; limit: number; cursor?: string }) {
    const params: unknown[] = [];
    const condition = where(filter, params);
    const after = readCursor(cursor, 2);
    let range = "";
    if (after) {
      params.push(after[0], after[1]);
      range = `AND (created_at, id) > ($${params.length - 1}, $${params.length})`;
    }
    params.push(limit + 1);
    const { rows } = await this.#pool.query<Row>(
      "list",
      `SELECT ${selectColumns} FROM ${this.#table} WHERE ${condition} ${range} ORDER BY created_at, id LIMIT $${params.length}`,
      params,
    );
    const records = rows.slice(0, limit).map(toRecord);
    const last = records.at(-1);
    return { records, cursor: rows.length > limit && last ? encodeCursor([last.createdAt, last.id]) : undefined };
  }

  async stamps(filter: StoreFilter): Promise<RecordStamp[]> {
    const params: unknown[] = [];
    const condition = where(filter, params);
    const { rows } = await this.#pool.query<Pick<Row, "id" | "hash" | "created_at" | "updated_at">>(
      "stamps",
      `SELECT id, hash, created_at, updated_at FROM ${this.#table} WHERE ${condition} ORDER BY created_at, id`,
      params,
    );
    return rows.map((row) => ({ id: row.id, hash: row.hash, createdAt: row.created_at, updatedAt: row.updated_at }));
  }

  async latest({ filter, limit }: { filter: StoreFilter; limit: number }): Promise<MemoryRecord[]> {
    const params: unknown[] = [];
    const condition = where(filter, params);
    params.push(limit);
    const { rows } = await this.#pool.query<Row>(
      "latest",
      `SELECT ${selectColumns}, embedding::text AS embedding FROM ${this.#table} WHERE ${condition}
       ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(toRecord);
  }

  async deleteMany(filter: StoreFilter): Promise<number> {
    const params: unknown[] = [];
    const condition = where(filter, params);
    const { rows } = await this.#pool.query<{ count: string }>(
      "delete",
      `WITH deleted AS (DELETE FROM ${this.#table} WHERE ${condition} RETURNING id),
         buried AS (INSERT INTO ${this.#tombstones} (id, erased_at) SELECT id, now() FROM deleted ON CONFLICT (id) DO NOTHING)
       SELECT count(*) AS count FROM deleted`,
      params,
    );
    const deleted = Number(rows[0]?.count ?? 0);
    if (deleted > 0) await this.#vacuum();
    return deleted;
  }

  async scopes(): Promise<ScopeCount[]> {
    // COLLATE "C" and NULLS FIRST: the same order as the SQLite store (byte order, absent ids first).
    const { rows } = await this.#pool.query<{ user_id: string | null; agent_id: string | null; run_id: string | null; count: string }>(
      "scopes",
      `SELECT user_id, agent_id, run_id, COUNT(*) AS count FROM ${this.#table} GROUP BY user_id, agent_id, run_id
       ORDER BY user_id COLLATE "C" NULLS FIRST, agent_id COLLATE "C" NULLS FIRST, run_id COLLATE "C" NULLS FIRST`,
      [],
    );
    return rows.map((row) => ({ ...scopeOfRow(row), count: Number(row.count) }));
  }

  async reset(): Promise<void> {
    await this.#pool.transaction("reset", async (client: PostgresClient) => {
      const { rows } = await client.query("SELECT to_regclass($1) AS memories, to_regclass($2) AS meta, to_regclass($3) AS tombstones", [
        this.#table,
        this.#meta,
        this.#tombstones,
      ]);
      // TRUNCATE leaves no dead row versions behind, unlike DELETE.
      if (rows[0]?.memories) await client.query(`TRUNCATE ${this.#table}`);
      if (rows[0]?.tombstones) await client.query(`TRUNCATE ${this.#tombstones}`);
      if (rows[0]?.meta) await client.query(`DELETE FROM ${this.#meta}`);
    });
    this.#dimension = undefined;
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  /** Deleted rows stay in the table's pages until VACUUM reclaims them: erased text must not. */
  async #vacuum(): Promise<void> {
    await this.#pool.query("vacuum", `VACUUM ${this.#table}`);
  }
}

/**
 * Memories in PostgreSQL with pgvector, shared by every app server connected to the database.
 *
 * Scope columns have b-tree indexes and search is exact cosine over the scope's rows (no ANN index
 * that would ignore the scope filter and lose recall); keyword search finds candidates with
 * PostgreSQL full-text search (a generated `tsvector` column with a GIN index) and ranks them by
 * BM25, as every store does. The schema is created on first use
 * (`CREATE EXTENSION IF NOT EXISTS vector` needs the right to create extensions, or an existing one).
 * Writes are transactions. `pg` is loaded on first use.
 *
 * @example
 * const memory = new Memory({
 *   vectorStore: pgvectorStore({ connectionString: process.env.DATABASE_URL }),
 *   historyStore: postgresHistory({ connectionString: process.env.DATABASE_URL }),
 * });
 */
export function pgvectorStore(options: PgvectorStoreOptions): VectorStore & KeywordSearchable & ScopeEnumerable & TimeOrdered {
  return new PgvectorStore(parseConfig(optionsSchema, options, "pgvectorStore"));
}
