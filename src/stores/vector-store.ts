import type { Scope } from "../scope.js";

/** Primitive values metadata filters compare by equality. */
export type MetadataValue = string | number | boolean | null;

/**
 * What a store query is restricted to. `scope` always has at least one id (Engram validates it
 * before calling a store); its ids are AND-ed exact matches on the record's scope columns.
 * Stores must apply the filter inside their query, never by filtering results afterwards.
 */
export interface StoreFilter {
  readonly scope: Scope;
  /** Equality on top-level metadata keys, AND-ed. Keys match `/^[A-Za-z0-9_.-]{1,64}$/`. */
  readonly metadata?: Readonly<Record<string, MetadataValue>>;
  /** Only records whose `hash` is this value. */
  readonly hash?: string;
}

/** One stored memory, as a store holds it. */
export interface MemoryRecord {
  /** Unique across the store, chosen by Engram (a UUID). */
  readonly id: string;
  readonly text: string;
  /** SHA-256 (hex) of the normalised text, used to spot exact duplicates. */
  readonly hash: string;
  /**
   * The embedding of `text`. Always present on records passed to `write` and returned by `get`
   * and `keywordSearch`; `list` and `search` may leave it out.
   */
  readonly vector?: Float32Array;
  readonly userId?: string;
  readonly agentId?: string;
  readonly runId?: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  /** ISO 8601. */
  readonly createdAt: string;
  /** ISO 8601. */
  readonly updatedAt: string;
}

export interface ScoredRecord {
  readonly record: MemoryRecord;
  /**
   * For `search`: cosine similarity in [-1, 1]. For `keywordSearch`: a relevance score ≥ 0 where
   * higher is better (e.g. BM25), comparable only within one result list.
   */
  readonly score: number;
}

/** The version of a stored record a write was decided against: its `hash` and `updatedAt`. */
export interface RecordVersion {
  readonly hash: string;
  readonly updatedAt: string;
}

/**
 * A precondition of a write: the state record `id` must be in when the write applies. `version`
 * null means the id must not exist (a new record).
 */
export interface WriteExpectation {
  readonly id: string;
  readonly version: RecordVersion | null;
}

/** A set of changes a store applies all together, or not at all where its backend allows. */
export interface WriteBatch {
  /** Records to insert, or to replace whole when their id exists. Each carries its `vector`. */
  readonly upsert?: readonly MemoryRecord[];
  /** Ids to delete; unknown ids are ignored. */
  readonly delete?: readonly string[];
  /**
   * The deleted ids are erased for good: their text must not survive anywhere in the store's
   * storage (write-ahead logs, free pages, old index segments), and the store keeps a tombstone of
   * each id (the id only) so that no later write can bring it back. Deleting an id that is not
   * stored still leaves its tombstone. When the call resolves the change is committed and no read
   * sees the text. It is gone from storage by then too, with one exception a store must document:
   * bytes a reader of an older snapshot still uses (another connection of an embedded database
   * inside a read transaction) can only be overwritten once that reader finishes. The store then
   * waits for it for a bounded time without blocking the event loop, and past that bound resolves
   * and finishes erasing in the background. (`sqliteStore`: up to 10 s, then retried every 250 ms
   * while the file is open and once more at close; text still left then is erased by the next
   * checkpoint of the file.)
   */
  readonly erase?: boolean;
  /**
   * Checked in the same transaction as the write, before anything is written: when a record is
   * not in the expected state, the whole batch is refused with a `WriteConflictError` naming it.
   * Independently of `expect`, an upsert of an erased (tombstoned) id is always refused the same
   * way: a purge is final. Stores without transactions check just before writing (documented per
   * store).
   */
  readonly expect?: readonly WriteExpectation[];
}

/**
 * Where memories and their vectors live. Small on purpose: everything else (scope validation,
 * hybrid scoring, history) is Engram's job. Every implementation passes the shared
 * conformance suite `testVectorStore` of `engram/test/conformance`.
 *
 * Implementations must be safe to call concurrently from one process.
 */
export interface VectorStore {
  /**
   * Prepares the store for vectors of `dimension` (creates tables, collections, indexes).
   * Called by Engram before any other call, possibly more than once: must be idempotent.
   * Rejects with a `ConfigError` when the store already holds vectors of another dimension or model.
   */
  init(options: { dimension: number; modelId?: string }): Promise<void>;

  /**
   * Applies upserts and deletes. Atomic where the backend supports transactions (SQLite, PostgreSQL).
   * Rejects a batch with a record whose vector is missing or not of the `init` dimension.
   */
  write(batch: WriteBatch): Promise<void>;

  /** The `limit` records inside `filter` most similar to `vector` by cosine similarity, best first. */
  search(request: { vector: Float32Array; filter: StoreFilter; limit: number }): Promise<ScoredRecord[]>;

  /**
   * The records among `ids` that lie inside `filter`, with their vectors. A record outside the
   * filter is not returned: to the caller it does not exist.
   */
  get(ids: readonly string[], filter: StoreFilter): Promise<MemoryRecord[]>;

  /**
   * Records inside `filter`, oldest first (by `createdAt`, then `id`), `limit` at a time.
   * Pass the returned `cursor` back to get the next page; it is undefined on the last page.
   */
  list(request: { filter: StoreFilter; limit: number; cursor?: string }): Promise<{ records: MemoryRecord[]; cursor?: string }>;

  /**
   * Deletes every record inside `filter` and returns how many there were. Like a `write` with
   * `erase`: the deleted text does not survive in storage (with the same exception for readers of
   * older snapshots), and each deleted id is tombstoned.
   */
  deleteMany(filter: StoreFilter): Promise<number>;

  /** Deletes every record of every scope, and every tombstone. Used by `Memory.reset()`. */
  reset(): Promise<void>;

  /** Releases connections and files. No call may follow. */
  close(): Promise<void>;
}

/** Optional capability: full-text keyword search, used by hybrid search. */
export interface KeywordSearchable {
  /**
   * The `limit` records inside `filter` that best match `text` as keywords, best first.
   * Returned records must carry their `vector`, so Engram can score them semantically too. The
   * built-in stores rank their full-text matches with `rankByBm25` (`engram/store-kit`), over the
   * scope's own records, so a query ranks and scores the same in each (`sqliteStore` scores a
   * bounded set of candidates once the query's words hold thousands of a scope's memories).
   */
  keywordSearch(request: { text: string; filter: StoreFilter; limit: number }): Promise<ScoredRecord[]>;
}

export function isKeywordSearchable(store: VectorStore): store is VectorStore & KeywordSearchable {
  return typeof (store as Partial<KeywordSearchable>).keywordSearch === "function";
}

/** What tells whether a copy of a stored record is current: its id, its version (`hash`, `updatedAt`) and its place in time. */
export interface RecordStamp {
  readonly id: string;
  readonly hash: string;
  /** ISO 8601. */
  readonly createdAt: string;
  /** ISO 8601. */
  readonly updatedAt: string;
}

/**
 * Optional capability: the records of a filter in time order, read cheaply. Search ranks a scope's
 * memories in process (each with the memories said just before and after it) from copies it keeps
 * per scope: before each search it reads the scope's stamps, so it learns which memories exist now
 * and which changed, whoever changed them; a verbatim `add` reads the scope's latest memory to
 * continue a speaker's run of messages. Stores without it are read through `list` instead (slower:
 * whole records, page by page).
 */
export interface TimeOrdered {
  /** The stamp of every record inside `filter`, oldest first (by `createdAt`, then `id`, as `list`). */
  stamps(filter: StoreFilter): Promise<RecordStamp[]>;
  /**
   * The `limit` newest records inside `filter`, newest first (by `createdAt`, then `id`, both
   * descending: the reverse of `list`), with their vectors.
   */
  latest(request: { filter: StoreFilter; limit: number }): Promise<MemoryRecord[]>;
}

export function isTimeOrdered(store: VectorStore): store is VectorStore & TimeOrdered {
  const candidate = store as Partial<TimeOrdered>;
  return typeof candidate.stamps === "function" && typeof candidate.latest === "function";
}

/**
 * Optional capability: how many records lie inside a filter, counted without reading them. Search
 * ranks a scope past `LARGE_SCOPE` memories from the store's own candidates (its vector and keyword
 * top hits) instead of a copy of the whole scope; stores without it always use the copy.
 */
export interface ScopeCountable {
  countWithin(filter: StoreFilter): Promise<number>;
}

export function isScopeCountable(store: VectorStore): store is VectorStore & ScopeCountable {
  return typeof (store as Partial<ScopeCountable>).countWithin === "function";
}

/** A scope that holds records, with how many: one exact combination of ids (absent ids are absent). */
export type ScopeCount = {
  readonly userId?: string;
  readonly agentId?: string;
  readonly runId?: string;
  /** Records stored with exactly these ids. */
  readonly count: number;
};

/**
 * Optional capability: lists the scopes that hold records, for operator tools that must span every
 * scope (a full export to move between stores, statistics). Every other query stays scoped: this
 * returns ids and counts only, never memories. Reached through `Memory.scopes({ allScopes: true })`.
 */
export interface ScopeEnumerable {
  /**
   * Every distinct combination of (userId, agentId, runId) held by at least one record, with its
   * record count, ordered by userId, agentId, runId (absent ids first).
   */
  scopes(): Promise<ScopeCount[]>;
}

export function isScopeEnumerable(store: VectorStore): store is VectorStore & ScopeEnumerable {
  return typeof (store as Partial<ScopeEnumerable>).scopes === "function";
}

/**
 * Optional capability: a token that changes whenever a record inside a scope is written or
 * deleted, by this process or another. Search keeps per-scope word statistics of scopes past
 * `LARGE_SCOPE` memories in process and reads them again only when the token changes.
 */
export interface ScopeVersioned {
  /**
   * The scope's current token, or undefined when the store cannot tell (then nothing is kept).
   * Tokens of one scope are compared for equality only; a write to a wider or overlapping scope may
   * change it too.
   */
  scopeVersion(filter: StoreFilter): Promise<string | undefined>;
}

export function isScopeVersioned(store: VectorStore): store is VectorStore & ScopeVersioned {
  return typeof (store as Partial<ScopeVersioned>).scopeVersion === "function";
}
