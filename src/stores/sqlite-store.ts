import type { SQLInputValue } from "node:sqlite";
import { bytesToVector, vectorToBytes } from "../internal/json.js";
import { openSqlite, type SqliteHandle } from "../internal/sqlite.js";
import { type StorePart, sqliteParts, sqlitePath } from "../internal/sqlite-joint.js";
import { BM25_K1, type Bm25Document, bm25Document, bm25Idf, scoreBm25Documents } from "../retrieval/bm25.js";
import { keywordTerms, stem } from "../retrieval/keywords.js";
import { encodeCursor, readCursor } from "../store-kit/cursor.js";
import { assertSameEmbedding } from "../store-kit/embedding.js";
import { metadataConditions, scopeConditions } from "../store-kit/filter.js";
import { rankBm25Documents } from "../store-kit/ranking.js";
import { scopeColumns, scopeOfRow } from "../store-kit/scopes.js";
import { assertNoConflict, checkedUpserts, idsToCheck } from "../store-kit/writes.js";
import { withScopeVersions } from "./sqlite-scope-versions.js";
import { compactIndexDimension, ensureCompactIndex, migrate, schema, scopeTermPrefixes } from "./sqlite-store-schema.js";
import type {
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
const keywordCandidates = 2_000;
/**
 * A term's matches inside the scope are counted up to this many; the share of the scope's newest
 * this many memories holding a more common term, times the scope's size, estimates its document
 * frequency (counting all its matches would cost what they number). At 100,000 memories in one
 * scope, recall@10 against exact BM25 was 0.987 with 8,000 and 0.988 with 16,000 (100 queries).
 */
const frequencySample = 8_000;

/** The distinct stems of a query's terms, each with the first term that has it. */
function termsByStem(terms: readonly string[]): Map<string, string> {
  const byStem = new Map<string, string>();
  for (const term of terms) {
    const stemmed = stem(term);
    if (!byStem.has(stemmed)) byStem.set(stemmed, term);
  }
  return byStem;
}

/** A query term inside a scope. */
interface KeywordTerm {
  stem: string;
  term: string;
  /** Inside the scope, how many memories hold it: counted, or estimated past `frequencySample`. */
  frequency: number;
}

/** The most a memory holding only `terms` can score: each adds at most idf × (k1 + 1). */
function scoreBound(terms: readonly KeywordTerm[], documentCount: number): number {
  return terms.reduce((sum, { frequency }) => sum + bm25Idf(documentCount, frequency) * (BM25_K1 + 1), 0);
}

/**
 * Up to this many distinct terms, keyword search reads the conjunctions of all of them, of all but
 * one, and each term alone; past it, all of them and each alone. Every full-text query with the
 * scope's token costs about a millisecond at 100,000 memories in one scope, so not every subset is read.
 */
const maxConjunctionTerms = 6;

/**
 * Sets of terms by the most a memory holding them can score, highest first. Keyword search reads
 * the memories holding all of each set in turn (the newest first when the budget is short) and
 * stops once the `limit`-th best score found beats the next set's bound (MaxScore over
 * conjunctions). Every term alone is among the sets, so a memory not read holds only terms whose
 * sets were not reached: when it holds one term, its score is at most that set's bound, and the
 * ranking is BM25's over the scope (up to the estimated frequencies); a memory holding several of
 * them can be missed when their subset is not among the sets.
 */
function conjunctionsByBound(terms: readonly KeywordTerm[], documentCount: number): { terms: KeywordTerm[]; bound: number }[] {
  const sets: KeywordTerm[][] = [];
  const full = (1 << terms.length) - 1;
  if (terms.length <= maxConjunctionTerms) {
    for (let mask = 1; mask <= full; mask++) {
      const size = terms.filter((_, i) => mask & (1 << i)).length;
      if (size === 1 || size >= terms.length - 1) sets.push(terms.filter((_, i) => mask & (1 << i)));
    }
  } else {
    sets.push([...terms], ...terms.map((term) => [term]));
  }
  return sets
    .map((set) => ({ terms: set, bound: scoreBound(set, documentCount) }))
    .sort((a, b) => b.bound - a.bound || a.terms.length - b.terms.length);
}

/** The `limit`-th best BM25 score among `candidates` (at least `limit` of them). */
function limitScore(
  stemmedTerms: readonly string[],
  candidates: readonly { document: Bm25Document }[],
  ranking: { documentCount: number; documentFrequencies?: Map<string, number> },
  limit: number,
): number {
  const scores = Float64Array.from(
    scoreBm25Documents(
      stemmedTerms,
      candidates.map(({ document }) => document).filter((document) => document.counts.size > 0),
      ranking,
    ),
  ).sort();
  return scores.length >= limit ? (scores[scores.length - limit] as number) : 0;
}

/**
 * Candidates the compact prefilter keeps for the exact ranking (at least; `limit` when more). A scope
 * holding at most this many memories (its inner scopes included) is ranked exactly, all of it; past
 * that the exact ranking sees the nearest this many by the int8 vectors. sqlite-vec's k-nearest
 * search selects each chunk's best by repeated scans, so its cost grows with k: at 100,000
 * memories in one scope, recall@10 against an exact scan was 0.994 with 20 and 1.000 with 30, 40
 * and 60 (200 queries), and 30 instead of 60 saves about a seventh of the search.
 */
export const prefilterCandidates = 30;
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
      const candidates = Math.max(limit, prefilterCandidates);
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
    const anyOf = (words: readonly string[]) => `text : (${words.map((word) => `"${word}"`).join(" OR ")})`;
    const matchOf = (words: readonly string[]) => `${inScope} AND ${anyOf(words)}`;
    const joined = where(filter, "m.");
    const own = where(filter);
    const scopeOnly = filter.hash === undefined && metadataConditions(filter).length === 0;
    return handle.guard("keyword search", () => {
      // Counted inside the full-text index: no row is read.
      const count = (match: string) =>
        Number(
          (handle.statement("SELECT count(*) AS count FROM memories_fts WHERE memories_fts MATCH ?").get(match) as { count: number }).count,
        );
      const countUpTo = (match: string, most: number) =>
        Number(
          (
            handle
              .statement("SELECT count(*) AS count FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)")
              .get(match, most) as { count: number }
          ).count,
        );
      // The full-text index drives (CROSS JOIN): probing it once per scope row re-runs the whole match each time.
      const matching = (match: string, newest?: number) =>
        handle
          .statement(
            `SELECT m.rowid AS position, m.id, m.text FROM memories_fts CROSS JOIN memories m ON m.rowid = memories_fts.rowid
             WHERE memories_fts MATCH ? AND ${joined.sql} ${newest === undefined ? "" : "ORDER BY memories_fts.rowid DESC LIMIT ?"}`,
          )
          .all(match, ...joined.params, ...(newest === undefined ? [] : [newest])) as Row[];
      const byStem = termsByStem(terms);
      const stemmedTerms = [...byStem.keys()];
      const wanted = new Set(stemmedTerms);
      type Candidate = { id: string; position: number };
      const candidates = new Map<number, { candidate: Candidate; document: Bm25Document }>();
      const add = (rows: Row[]) => {
        for (const row of rows) {
          const position = Number(row.position);
          if (!candidates.has(position)) {
            candidates.set(position, { candidate: { id: row.id as string, position }, document: bm25Document(wanted, row.text as string) });
          }
        }
      };
      let ranking: { documentCount: number; documentFrequencies?: Map<string, number> };
      const counted = scopeOnly
        ? [...byStem].map(([stemmed, term]) => ({ stem: stemmed, term, frequency: countUpTo(matchOf([term]), frequencySample + 1) }))
        : [];
      if (!scopeOnly || counted.reduce((sum, { frequency }) => sum + frequency, 0) <= exactKeywordMatches) {
        // Every match is scored: BM25 within the scope (as inMemoryStore), its own memories the corpus.
        add(matching(matchOf(terms)));
        // The full-text index counts a scope faster than the scope's b-tree index does.
        const documentCount = scopeOnly
          ? count(inScope)
          : Number(
              (handle.statement(`SELECT count(*) AS count FROM memories WHERE ${own.sql}`).get(...own.params) as { count: number }).count,
            );
        ranking = { documentCount };
      } else {
        const documentCount = count(inScope);
        const common = counted.filter(({ frequency }) => frequency > frequencySample);
        if (common.length > 0) {
          // The share of the scope's newest memories holding the term, times the scope's size.
          const sample = handle
            .statement(
              "SELECT min(rowid) AS since, count(*) AS count FROM (SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? ORDER BY rowid DESC LIMIT ?)",
            )
            .get(inScope, frequencySample) as { since: number; count: number };
          const inSample = handle.statement("SELECT count(*) AS count FROM memories_fts WHERE memories_fts MATCH ? AND rowid >= ?");
          for (const term of common) {
            const held = Number((inSample.get(matchOf([term.term]), sample.since) as { count: number }).count);
            term.frequency = Math.max(frequencySample + 1, Math.round((documentCount * held) / Math.max(1, Number(sample.count))));
          }
        }
        const rarestFirst = counted.filter(({ frequency }) => frequency > 0).sort((a, b) => a.frequency - b.frequency);
        const documentFrequencies = new Map(rarestFirst.map(({ stem: stemmed, frequency }) => [stemmed, frequency]));
        ranking = { documentCount, documentFrequencies };
        // Conjunctions of the terms, the highest bound first: memories holding many (or rare) terms
        // first. Once the `limit`-th best score found beats the next conjunction's bound, no memory
        // left unread can enter the results.
        let budget = keywordCandidates;
        let bar = 0;
        const newest = handle.statement(
          "SELECT rowid AS position FROM memories_fts WHERE memories_fts MATCH ? ORDER BY rowid DESC LIMIT ?",
        );
        const texts = handle.statement(
          `SELECT m.rowid AS position, m.id, m.text FROM json_each(?) AS p CROSS JOIN memories m ON m.rowid = p.value WHERE ${joined.sql}`,
        );
        for (const conjunction of conjunctionsByBound(rarestFirst, documentCount)) {
          if (bar > conjunction.bound || budget <= 0) break;
          const match = `${inScope} AND text : (${conjunction.terms.map(({ term }) => `"${term}"`).join(" AND ")})`;
          // Positions first: a memory already read for a larger conjunction is not read again.
          const unread = (newest.all(match, budget) as Row[])
            .map((row) => Number(row.position))
            .filter((position) => !candidates.has(position));
          if (unread.length === 0) continue;
          budget -= unread.length;
          add(texts.all(JSON.stringify(unread), ...joined.params) as Row[]);
          if (candidates.size >= limit) bar = limitScore(stemmedTerms, [...candidates.values()], ranking, limit);
        }
      }
      if (candidates.size === 0) return [];
      const best = rankBm25Documents(stemmedTerms, [...candidates.values()], { ...ranking, limit });
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
}: SqliteStoreOptions): VectorStore & KeywordSearchable & ScopeEnumerable & TimeOrdered & ScopeCountable & ScopeVersioned {
  return withScopeVersions(new SqliteStore(path));
}
