import type { Scope } from "../scope.js";

/** MERGE: the memory was one of a cluster of near-duplicates that `consolidate` merged into one. */
export type HistoryEvent = "ADD" | "UPDATE" | "DELETE" | "MERGE";

/** One change of one memory. Every change keeps its previous value so it can be undone. */
export interface HistoryEntry {
  /** Unique id of this entry; appending an entry whose id is stored already does nothing. */
  readonly id: string;
  readonly memoryId: string;
  readonly event: HistoryEvent;
  /** Text before the change; null for ADD, and after a purge. */
  readonly previousValue: string | null;
  /** Text after the change; null for DELETE, and after a purge. */
  readonly newValue: string | null;
  /** Scope ids of the memory, so its history stays readable by its own scope after a delete. */
  readonly userId?: string;
  readonly agentId?: string;
  readonly runId?: string;
  /** ISO 8601. */
  readonly createdAt: string;
}

/**
 * The change log of every memory: one entry per ADD, UPDATE and DELETE, each with the text before
 * and after, read back by `Memory.history` within the memory's scope. Small on purpose: the
 * durable queue of turns waiting to be written is another contract, `Outbox`; one class may
 * implement both (`sqliteHistory`, `postgresHistory`, `inMemoryHistory` do), and then its `init`,
 * `reset` and `close` serve both.
 *
 * Implementations must be safe to call concurrently, from one process and from every process
 * sharing the backend. Every implementation passes the conformance suite `testHistoryLog` of
 * `engram/test/conformance`.
 *
 * @example
 * // A change log of your own; turns queue in a SQLite file:
 * new Memory({ historyStore: myHistoryLog, outbox: sqliteHistory({ path: "./outbox.db" }) });
 */
export interface HistoryLog {
  /**
   * Creates tables (or whatever the backend needs) on first use. Called by Engram before any other
   * call, possibly more than once and concurrently: must be idempotent.
   */
  init(): Promise<void>;

  /**
   * Appends entries; entries whose id exists already are ignored (replays are harmless). Entries of
   * memories erased by `purge({ memoryIds })` are stored with `previousValue` and `newValue` null.
   *
   * @example
   * await log.append([{ id, memoryId, event: "ADD", previousValue: null, newValue: "likes tea", userId: "alice", createdAt }]);
   */
  append(entries: readonly HistoryEntry[]): Promise<void>;

  /**
   * Entries of `memoryId` whose scope lies inside `scope` (AND of the given ids), oldest first (by
   * `createdAt`, then in append order). An entry outside the scope is not returned: to the caller
   * it does not exist.
   */
  list(memoryId: string, scope: Scope): Promise<HistoryEntry[]>;

  /**
   * Erases text for good: sets `previousValue` and `newValue` to null on the entries of the given
   * memories, or of every memory inside `scope`. The entries themselves stay, as a trace. When it
   * resolves the change is committed and the text is gone from storage, except bytes a reader of
   * an older snapshot still uses: those are erased once it finishes, as `WriteBatch.erase`
   * describes (the store waits for it for a bounded time, never blocking the event loop).
   *
   * Given memory ids are also remembered as erased, atomically with the erasure: entries appended
   * for them afterwards (by a write that raced the purge, possibly in another process) are stored
   * without their text. A purge by scope erases what is there; later entries keep their text.
   */
  purge(target: { memoryIds: readonly string[] } | { scope: Scope }): Promise<void>;

  /** Deletes every entry of every scope, and forgets which memories were erased. Used by `Memory.reset()`. */
  reset(): Promise<void>;

  /** Releases connections and files. No call may follow. */
  close(): Promise<void>;
}

/**
 * Optional capability of a `HistoryLog`: the scopes that hold entries of memories whose id starts
 * with a prefix, e.g. every scope with a profile (`profile:`). For operator tools that span scopes
 * (a full export); the SQLite, PostgreSQL and in-memory history logs have it.
 */
export interface HistoryScopeEnumerable {
  /**
   * Each distinct exact scope of the entries whose `memoryId` starts with `prefix` and whose scope
   * lies inside `scope` (AND of the given ids; `{}` for every scope), in no set order.
   */
  entryScopes(prefix: string, scope: Scope): Promise<Scope[]>;
}

export function isHistoryScopeEnumerable(log: HistoryLog): log is HistoryLog & HistoryScopeEnumerable {
  return typeof (log as Partial<HistoryScopeEnumerable>).entryScopes === "function";
}

/** One change as `HistoryScannable.events` returns it: what happened to which memory, when, in which scope; never its text. */
export type HistoryEventEntry = Pick<HistoryEntry, "memoryId" | "event" | "createdAt" | "userId" | "agentId" | "runId">;

/**
 * Optional capability of a `HistoryLog`: the changes of a whole scope (or of every scope) at once,
 * for operator tools such as the inspector's plots. Texts are not returned. The SQLite and
 * in-memory logs have it.
 */
export interface HistoryScannable {
  /**
   * The latest `limit` entries whose scope lies inside `scope` (every scope without one), oldest
   * first (by `createdAt`, then in append order).
   */
  events(options: { scope?: Scope; limit: number }): Promise<HistoryEventEntry[]>;
}

export function isHistoryScannable(log: HistoryLog): log is HistoryLog & HistoryScannable {
  return typeof (log as Partial<HistoryScannable>).events === "function";
}
