import type { SQLInputValue } from "node:sqlite";
import { bytesToVector, vectorToBytes } from "../internal/json.js";
import { openSqlite, type SqliteHandle } from "../internal/sqlite.js";
import { type StorePart, sqliteParts, sqlitePath } from "../internal/sqlite-joint.js";
import { keywordTerms, stem } from "../retrieval/keywords.js";
import { encodeCursor, readCursor } from "../store-kit/cursor.js";
import { assertSameEmbedding } from "../store-kit/embedding.js";
import { metadataConditions, scopeConditions } from "../store-kit/filter.js";
import { rankByBm25 } from "../store-kit/ranking.js";
import { scopeColumns, scopeOfRow } from "../store-kit/scopes.js";
import { assertNoConflict, checkedUpserts, idsToCheck } from "../store-kit/writes.js";
import { withScopeVersions } from "./sqlite-scope-versions.js";
import { compactIndexDimension, ensureCompactIndex, migrate, schema, scopeTermPrefixes } from "./sqlite-store-schema.js";
import type {
  ChangeTracked,
  KeywordSearchable,
  MemoryRecord,
  RecordStamp,
  RecordVersion,
  ScopeCount,
  ScopeCountable,
  ScopeEnumerable,
  ScopeVersioned,
  ScoredRecord,
  StoreFilter,
  TimeOrdered,
  VectorStore,
  WriteBatch,
} from "./vector-store.js";

export interface SqliteStoreOptions {
  /** Path of the database file; `":memory:"` for a throwaway in-process database. */
  path: string;
}

const selectColumns = "id, text, hash, user_id, agent_id, run_id, metadata, created_at, updated_at";
const joinedColumns = selectColumns
  .split(", ")
  .map((column) => `m.${column}`)
  .join(", ");

type Row = Record<string, SQLInputValue>;

function toRecord(row: Row, withVector = false): MemoryRecord {
  return {
    id: row.id as string,
    text: row.text as string,
    hash: row.hash as string,
    ...scopeOfRow(row),
    metadata: JSON.parse(row.metadata as string),
    createdAt: row.created_at as string,
    updatedAt: row.updated_at as string,
    ...(withVector && row.embedding instanceof Uint8Array && { vector: bytesToVector(row.embedding) }),
  };
}

/** WHERE conditions and parameters for a filter, scope first (it is what the indexes serve). */
function where(filter: StoreFilter, alias = ""): { sql: string; params: SQLInputValue[] } {
  const parts: string[] = [];
  const params: SQLInputValue[] = [];
  for (const [key, value] of scopeConditions(filter)) {
    parts.push(`${alias}${scopeColumns[key]} = ?`);
    params.push(value);
  }
  if (filter.hash !== undefined) {
    parts.push(`${alias}hash = ?`);
    params.push(filter.hash);
  }
  for (const [key, value] of metadataConditions(filter)) {
    const path = `'$."${key}"'`;
    if (value === null) {
      parts.push(`json_type(${alias}metadata, ${path}) = 'null'`);
    } else if (typeof value === "boolean") {
      parts.push(`json_type(${alias}metadata, ${path}) = '${value ? "true" : "false"}'`);
    } else if (typeof value === "number") {
      parts.push(`json_type(${alias}metadata, ${path}) IN ('integer', 'real') AND json_extract(${alias}metadata, ${path}) = ?`);
      params.push(value);
    } else {
      parts.push(`json_type(${alias}metadata, ${path}) = 'text' AND json_extract(${alias}metadata, ${path}) = ?`);
      params.push(value);
    }
  }
  return { sql: parts.join(" AND "), params };
}

/**
 * Up to this many full-text matches inside the scope, keyword search scores every one of them:
 * exact BM25 over the scope. Scoring a match costs a few microseconds (its text is read and
 * tokenized), so past this the cost would follow the matches, not the results kept.
 */
const exactKeywordMatches = 2_000;
/** Past `exactKeywordMatches`, at most this many memories are read and scored. */
const keywordCandidates = 1_000;

interface KeywordPlan {
  /** The terms whose every match inside the scope is a candidate. */
  words: readonly string[];
  /** Terms too common for that: the newest memories holding all of them are candidates too, up to the budget left. */
  together?: readonly string[];
  /** Inside the scope, how many memories hold each term (by stem), when the candidates are not all of them. */
  frequencies?: Map<string, number>;
}

/**
 * Which memories keyword search scores. Every match, when the query's terms hold at most
 * `exactKeywordMatches` memories of the scope. Otherwise the rarest terms, together holding
 * at most `keywordCandidates` memories, find candidates (BM25 weighs a rare term far above a common
 * one), and so do the newest memories holding all of the other terms, up to the same budget. Every
 * term scores them, with the inverse document frequencies of the whole scope.
 */
function keywordPlan(terms: readonly string[], countOf: (term: string) => number): KeywordPlan {
  const byStem = new Map<string, { term: string; count: number }>();
  for (const term of terms) {
    const stemmed = stem(term);
    if (!byStem.has(stemmed)) byStem.set(stemmed, { term, count: countOf(term) });
  }
  const frequencies = new Map([...byStem].map(([stemmed, { count }]) => [stemmed, count]));
  if ([...frequencies.values()].reduce((sum, count) => sum + count, 0) <= exactKeywordMatches) return { words: terms };
  const rarestFirst = [...byStem.values()].filter(({ count }) => count > 0).sort((a, b) => a.count - b.count);
  const words: string[] = [];
  let kept = 0;
  for (const { term, count } of rarestFirst) {
    if (kept + count > keywordCandidates) break;
    words.push(term);
    kept += count;
  }
  const together = rarestFirst.slice(words.length).map(({ term }) => term);
  return { words, frequencies, ...(together.length > 0 && { together }) };
}

/**
 * Candidates the compact prefilter keeps for the exact ranking (at least; twice `limit` when more). A
 * scope holding at most this many memories (its inner scopes included) is ranked exactly, all of it;
 * past that the exact ranking sees the nearest this many by the int8 vectors. At 100,000 memories
 * in one scope, recall@10 against an exact scan was 1.000 already with 30.
 */
export const prefilterCandidates = 50;
/** sqlite-vec's largest k; a larger limit scans the scope. */
const maxPrefilterCandidates = 4_096;

class SqliteStore implements VectorStore, KeywordSearchable, ScopeEnumerable, TimeOrdered, ScopeCountable {
  #handle: Promise<SqliteHandle> | undefined;
  #dimension: number | undefined;

  constructor(private readonly path: string) {}

  #open(): Promise<SqliteHandle> {
    if (this.#handle) return this.#handle;
    const opening = openSqlite(this.path).then((handle) => {
      try {
        handle.guard("schema creation", () => {
          migrate(handle);
          handle.db.exec(schema);
          // Set once, so that opening an existing file writes nothing (a damaged file takes no
          // writes, but stays readable for an export).
          const secure = handle.db.prepare("SELECT v FROM memories_fts_config WHERE k = 'secure-delete'").get() as
            | { v: number }
            | undefined;
          if (Number(secure?.v) !== 1) handle.db.exec("INSERT INTO memories_fts (memories_fts, rank) VALUES ('secure-delete', 1)");
        });
      } catch (error) {
        handle.release();
        throw error;
      }
      return handle;
    });
    this.#handle = opening;
    // A failed open is tried again by the next call.
    opening.catch(() => {
      if (this.#handle === opening) this.#handle = undefined;
    });
    return opening;
  }

  async init({ dimension, modelId }: { dimension: number; modelId?: string }): Promise<void> {
    const handle = await this.#open();
    /** Checks what the file was made for; with `write`, records what it does not say yet. True when something was missing. */
    const settle = (write: boolean) => {
      const read = (key: string) =>
        (handle.statement("SELECT value FROM engram_meta WHERE key = ?").get(key) as { value: string } | undefined)?.value;
      const storedDimension = read("dimension");
      const storedModel = read("embedding_model");
      assertSameEmbedding(
        { dimension: storedDimension, modelId: storedModel },
        { dimension, modelId },
        { holder: `The database ${handle.path}`, elsewhere: "another dataDir" },
      );
      const missing = storedDimension === undefined || (storedModel === undefined && modelId !== undefined);
      if (write && missing) {
        const set = handle.statement("INSERT OR REPLACE INTO engram_meta (key, value) VALUES (?, ?)");
        if (storedDimension === undefined) set.run("dimension", String(dimension));
        if (storedModel === undefined && modelId !== undefined) set.run("embedding_model", modelId);
      }
      return missing;
    };
    // Read first, and write only when something is missing: a damaged file refuses writes but
    // must still open for reading.
    if (handle.guard("init", () => settle(false))) handle.guard("init", () => handle.transaction(() => settle(true)));
    handle.guard("init", () => ensureCompactIndex(handle, dimension));
    this.#dimension = dimension;
  }

  async write(batch: WriteBatch): Promise<void> {
    const handle = await this.#open();
    handle.guard("write", () => handle.transaction(() => this.#writeIn(handle, batch)));
    await this.#afterWrite(handle, batch);
  }

  get [sqliteParts](): StorePart {
    return {
      path: sqlitePath(this.path),
      open: () => this.#open(),
      writeIn: (handle, batch) => this.#writeIn(handle, batch),
      afterWrite: (handle, batch) => this.#afterWrite(handle, batch),
    };
  }

  /** Checks a batch's preconditions and applies it, inside the caller's transaction. */
  #writeIn(handle: SqliteHandle, batch: WriteBatch): void {
    const upserts = checkedUpserts(batch, this.#dimension);
    const ids = idsToCheck(batch);
    if (ids.length > 0) {
      const version = handle.statement("SELECT hash, updated_at FROM memories WHERE id = ?");
      const tombstone = handle.statement("SELECT 1 AS erased FROM memory_tombstones WHERE id = ?");
      const current = new Map<string, RecordVersion>();
      const erased = new Set<string>();
      for (const id of ids) {
        const row = version.get(id) as Row | undefined;
        if (row) current.set(id, { hash: row.hash as string, updatedAt: row.updated_at as string });
        if (tombstone.get(id)) erased.add(id);
      }
      assertNoConflict(batch, current, erased);
    }
    const upsert = handle.statement(`
      INSERT INTO memories (id, text, hash, user_id, agent_id, run_id, metadata, created_at, updated_at, embedding)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET text = excluded.text, hash = excluded.hash, user_id = excluded.user_id,
        agent_id = excluded.agent_id, run_id = excluded.run_id, metadata = excluded.metadata,
        created_at = excluded.created_at, updated_at = excluded.updated_at, embedding = excluded.embedding`);
    for (const record of upserts) {
      upsert.run(
        record.id,
        record.text,
        record.hash,
        record.userId ?? null,
        record.agentId ?? null,
        record.runId ?? null,
        JSON.stringify(record.metadata),
        record.createdAt,
        record.updatedAt,
        vectorToBytes(record.vector),
      );
    }
    const remove = handle.statement("DELETE FROM memories WHERE id = ?");
    const bury = handle.statement("INSERT OR IGNORE INTO memory_tombstones (id, erased_at) VALUES (?, ?)");
    const now = new Date().toISOString();
    for (const id of batch.delete ?? []) {
      remove.run(id);
      if (batch.erase) bury.run(id, now);
    }
  }

  async #afterWrite(handle: SqliteHandle, batch: WriteBatch): Promise<void> {
    if (batch.erase) await handle.checkpoint();
  }

  async search({ vector, filter, limit }: { vector: Float32Array; filter: StoreFilter; limit: number }): Promise<ScoredRecord[]> {
    const handle = await this.#open();
    const condition = where(filter, "m.");
    const bytes = vectorToBytes(vector);
    const scopeOnly = filter.hash === undefined && metadataConditions(filter).length === 0;
    return handle.guard("search", () => {
      const candidates = Math.max(limit * 2, prefilterCandidates);
      const prefiltered = scopeOnly && candidates <= maxPrefilterCandidates && compactIndexDimension(handle) === vector.length;
      // Candidates from the compact vectors inside the scope's partitions, ranked exactly on the full
      // vectors; the scope condition is applied again on the joined rows.
      const source = prefiltered
        ? `(SELECT rowid FROM memory_vectors WHERE vector MATCH vec_quantize_int8(vec_normalize(?), 'unit') AND k = ?
            ${scopeConditions(filter)
              .map(([key]) => `AND ${scopeColumns[key]} = ?`)
              .join(" ")}) AS c CROSS JOIN memories m ON m.rowid = c.rowid`
        : "memories m";
      const rows = handle
        .statement(
          `SELECT ${joinedColumns}, vec_distance_cosine(m.embedding, ?) AS distance FROM ${source}
           WHERE ${condition.sql} ORDER BY distance, m.id LIMIT ?`,
        )
        .all(
          bytes,
          ...(prefiltered ? [bytes, candidates, ...scopeConditions(filter).map(([, value]) => value)] : []),
          ...condition.params,
          limit,
        ) as Row[];
      return rows.map((row) => ({ record: toRecord(row), score: 1 - (row.distance as number) }));
    });
  }

  async keywordSearch({ text, filter, limit }: { text: string; filter: StoreFilter; limit: number }): Promise<ScoredRecord[]> {
    const handle = await this.#open();
    const scope = scopeConditions(filter);
    const terms = keywordTerms(text);
    if (terms.length === 0) return [];
    const scopeTerms = scope.map(([key, value]) => `"${scopeTermPrefixes[key]}${Buffer.from(value, "utf8").toString("hex")}"`);
    const inScope = `scope_terms : (${scopeTerms.join(" AND ")})`;
    const matchOf = (words: readonly string[]) => `${inScope} AND text : (${words.map((word) => `"${word}"`).join(" OR ")})`;
    const joined = where(filter, "m.");
    const own = where(filter);
    const scopeOnly = filter.hash === undefined && metadataConditions(filter).length === 0;
    return handle.guard("keyword search", () => {
      // Counted inside the full-text index: no row is read.
      const count = (match: string) =>
        Number(
          (handle.statement("SELECT count(*) AS count FROM memories_fts WHERE memories_fts MATCH ?").get(match) as { count: number }).count,
        );
      const plan = scopeOnly ? keywordPlan(terms, (term) => count(matchOf([term]))) : { words: terms };
      // The full-text index drives (CROSS JOIN): probing it once per scope row re-runs the whole match each time.
      const matching = (match: string, newest?: number) =>
        handle
          .statement(
            `SELECT m.rowid AS position, m.id, m.text FROM memories_fts CROSS JOIN memories m ON m.rowid = memories_fts.rowid
             WHERE memories_fts MATCH ? AND ${joined.sql} ${newest === undefined ? "" : "ORDER BY memories_fts.rowid DESC LIMIT ?"}`,
          )
          .all(match, ...joined.params, ...(newest === undefined ? [] : [newest])) as Row[];
      const matches = plan.words.length > 0 ? matching(matchOf(plan.words)) : [];
      if (plan.together) {
        const seen = new Set(matches.map((row) => Number(row.position)));
        const all = `${inScope} AND text : (${plan.together.map((word) => `"${word}"`).join(" AND ")})`;
        for (const row of matching(all, keywordCandidates)) if (!seen.has(Number(row.position))) matches.push(row);
      }
      if (matches.length === 0) return [];
      // BM25 within the scope (as inMemoryStore): its own memories are the corpus.
      // The full-text index counts a scope faster than the scope's b-tree index does.
      const documentCount = scopeOnly
        ? count(inScope)
        : Number(
            (handle.statement(`SELECT count(*) AS count FROM memories WHERE ${own.sql}`).get(...own.params) as { count: number }).count,
          );
      const best = rankByBm25(
        terms,
        matches.map((row) => ({ id: row.id as string, text: row.text as string, position: Number(row.position) })),
        { documentCount, limit, ...(plan.frequencies && { documentFrequencies: plan.frequencies }) },
      );
      const full = new Map<number, Row>();
      const positions = best.map((hit) => hit.candidate.position);
      const rows = handle
        .statement(`SELECT rowid AS position, ${selectColumns}, embedding FROM memories WHERE rowid IN (SELECT value FROM json_each(?))`)
        .all(JSON.stringify(positions)) as Row[];
      for (const row of rows) full.set(Number(row.position), row);
      return best.flatMap((hit) => {
        const row = full.get(hit.candidate.position);
        return row ? [{ record: toRecord(row, true), score: hit.score }] : [];
      });
    });
  }

  async get(ids: readonly string[], filter: StoreFilter): Promise<MemoryRecord[]> {
    const handle = await this.#open();
    if (ids.length === 0) return [];
    const condition = where(filter);
    return handle.guard("get", () => {
      const found: MemoryRecord[] = [];
      const statement = handle.statement(`SELECT ${selectColumns}, embedding FROM memories WHERE id = ? AND ${condition.sql}`);
      for (const id of new Set(ids)) {
        const row = statement.get(id, ...condition.params) as Row | undefined;
        if (row) found.push(toRecord(row, true));
      }
      return found;
    });
  }

  async list({ filter, limit, cursor }: { filter: StoreFilter; limit: number; cursor?: string }) {
    const handle = await this.#open();
    const condition = where(filter);
    const after = readCursor(cursor, 2);
    return handle.guard("list", () => {
      const rows = handle
        .statement(
          // A text's hash names a few rows at most: read them by hash, not by walking the scope in
          // time order (which the planner would otherwise pick to avoid a sort).
          `SELECT ${selectColumns} FROM memories${filter.hash === undefined ? "" : " INDEXED BY memories_by_hash"} WHERE ${condition.sql}
           ${after ? "AND (created_at, id) > (?, ?)" : ""} ORDER BY created_at, id LIMIT ?`,
        )
        .all(...condition.params, ...(after ?? []), limit + 1) as Row[];
      const records = rows.slice(0, limit).map((row) => toRecord(row));
      const last = records.at(-1);
      return {
        records,
        cursor: rows.length > limit && last ? encodeCursor([last.createdAt, last.id]) : undefined,
      };
    });
  }

  async stamps(filter: StoreFilter): Promise<RecordStamp[]> {
    const handle = await this.#open();
    const condition = where(filter);
    return handle.guard("stamps", () =>
      (
        handle
          .statement(`SELECT id, hash, created_at, updated_at FROM memories WHERE ${condition.sql} ORDER BY created_at, id`)
          .all(...condition.params) as Row[]
      ).map((row) => ({
        id: row.id as string,
        hash: row.hash as string,
        createdAt: row.created_at as string,
        updatedAt: row.updated_at as string,
      })),
    );
  }

  async latest({ filter, limit }: { filter: StoreFilter; limit: number }): Promise<MemoryRecord[]> {
    const handle = await this.#open();
    const condition = where(filter);
    return handle.guard("latest", () =>
      (
        handle
          .statement(`SELECT ${selectColumns}, embedding FROM memories WHERE ${condition.sql} ORDER BY created_at DESC, id DESC LIMIT ?`)
          .all(...condition.params, limit) as Row[]
      ).map((row) => toRecord(row, true)),
    );
  }

  /**
   * SQLite counts the commits of other connections to the file (`PRAGMA data_version`, other
   * processes included) and the rows this process's connection changed (`total_changes()`, every
   * store and log of the process on this file share it): together they change on any write.
   */
  async changeToken(): Promise<string> {
    const handle = await this.#open();
    return handle.guard("changeToken", () => {
      const { data_version: version } = handle.statement("PRAGMA data_version").get() as { data_version: number };
      const { changes } = handle.statement("SELECT total_changes() AS changes").get() as { changes: number };
      return `${version}:${changes}`;
    });
  }

  async countWithin(filter: StoreFilter): Promise<number> {
    const handle = await this.#open();
    const condition = where(filter);
    return handle.guard("count", () =>
      Number(
        (handle.statement(`SELECT count(*) AS count FROM memories WHERE ${condition.sql}`).get(...condition.params) as { count: number })
          .count,
      ),
    );
  }

  async deleteMany(filter: StoreFilter): Promise<number> {
    const handle = await this.#open();
    const condition = where(filter);
    const deleted = handle.guard("delete", () =>
      handle.transaction(() => {
        handle
          .statement(`INSERT OR IGNORE INTO memory_tombstones (id, erased_at) SELECT id, ? FROM memories WHERE ${condition.sql}`)
          .run(new Date().toISOString(), ...condition.params);
        return Number(handle.statement(`DELETE FROM memories WHERE ${condition.sql}`).run(...condition.params).changes);
      }),
    );
    // Deleted text must not linger in the write-ahead log.
    await handle.checkpoint();
    return deleted;
  }

  async scopes(): Promise<ScopeCount[]> {
    const handle = await this.#open();
    return handle.guard("scopes", () => {
      const rows = handle
        .statement(
          `SELECT user_id, agent_id, run_id, COUNT(*) AS count FROM memories
           GROUP BY user_id, agent_id, run_id ORDER BY user_id, agent_id, run_id`,
        )
        .all() as Row[];
      return rows.map((row) => ({ ...scopeOfRow(row), count: Number(row.count) }));
    });
  }

  async reset(): Promise<void> {
    const handle = await this.#open();
    handle.guard("reset", () =>
      handle.transaction(() => {
        handle.statement("DELETE FROM memories").run();
        handle.statement("DELETE FROM memory_tombstones").run();
        handle.statement("DELETE FROM engram_meta").run();
      }),
    );
    this.#dimension = undefined;
    await handle.checkpoint();
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle) (await handle.catch(() => undefined))?.release();
  }
}

/**
 * The embedded default store: one SQLite file (built-in `node:sqlite` with `sqlite-vec`), exact
 * cosine search inside the scope filter through b-tree indexes on the scope columns, and an FTS5
 * keyword index. Safe for several processes on one machine (WAL, busy timeout).
 *
 * @example
 * const memory = new Memory({ vectorStore: sqliteStore({ path: "./data/memories.db" }) });
 */
export function sqliteStore({
  path,
}: SqliteStoreOptions): VectorStore & KeywordSearchable & ScopeEnumerable & TimeOrdered & ScopeCountable & ChangeTracked & ScopeVersioned {
  return withScopeVersions(new SqliteStore(path));
}
