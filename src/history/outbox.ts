import type { Scope } from "../scope.js";

/** A chat message as Engram stores and extracts it. */
export interface Message {
  readonly role: "user" | "assistant" | "system";
  readonly content: string;
  /**
   * Who said it, when a conversation has several people in one role (like the `name` of OpenAI
   * chat messages): a verbatim memory stores `"<name>: <content>"`, and search matches questions
   * that name a speaker with what that speaker said.
   */
  readonly name?: string;
}

/** Status of a turn in the write-behind outbox. */
export type OutboxStatus = "pending" | "processing" | "done" | "failed";

/** A turn as `enqueue` receives it: its id, the messages, their scope, the add options. */
export interface NewOutboxEntry {
  /**
   * Unique across scopes: `Memory.enqueue` derives it from the scope and the idempotency key
   * (`outboxEntryId`), so a key is per scope and a store needs no scope in its uniqueness check.
   */
  id: string;
  messages: readonly Message[];
  scope: Scope;
  options: Record<string, unknown>;
}

/** A turn waiting to be (or being) written to memory by the write-behind worker. */
export interface OutboxEntry {
  /** Derived from the scope and the idempotency key: enqueuing an id that exists already does nothing. */
  readonly id: string;
  readonly messages: readonly Message[];
  readonly userId?: string;
  readonly agentId?: string;
  readonly runId?: string;
  /** Options of the `add` to run, as JSON (metadata, infer, timestamp). */
  readonly options: Readonly<Record<string, unknown>>;
  readonly status: OutboxStatus;
  /** Failed attempts so far. */
  readonly attempts: number;
  readonly lastError?: string;
  /**
   * The decided changes, saved before they are applied. A worker that finds a plan re-applies it
   * (every write is idempotent) instead of deciding again, which makes processing exactly-once.
   */
  readonly plan?: string;
  /** ISO 8601. */
  readonly createdAt: string;
  /** ISO 8601: not claimed before this time (backoff). */
  readonly nextAttemptAt: string;
}

/** What a worker asks of `Outbox.claim`. */
export interface OutboxClaim {
  workerId: string;
  limit: number;
  leaseMs: number;
  /** Entries of one lock key handed out together, at most. @default 1 */
  perKey?: number;
}

/**
 * The durable queue of turns waiting to be written to memory (`Memory.enqueue`), worked off by
 * write-behind workers in any process sharing the backend. The change log is another contract,
 * `HistoryLog`; one class may implement both (`sqliteHistory`, `postgresHistory`,
 * `inMemoryHistory` do), and then its `init`, `reset` and `close` serve both.
 *
 * Entries are claimed under a lease by a worker id; the calls that change a claimed entry
 * (`savePlan`, `discardPlan`, `complete`, `fail`, `renew`) take that worker id and do nothing
 * (returning false) when the lease was lost to another worker. Implementations must make `claim`
 * safe across processes sharing one backend (e.g. `FOR UPDATE SKIP LOCKED` in PostgreSQL). Every
 * implementation passes the conformance suite `testOutbox` of `engram/test/conformance`.
 *
 * @example
 * // The change log stays in the default SQLite file; turns queue in PostgreSQL:
 * new Memory({ outbox: postgresHistory({ connectionString: process.env.DATABASE_URL }) });
 */
export interface Outbox {
  /**
   * Creates tables (or whatever the backend needs) on first use. Called by Engram before any other
   * call, possibly more than once and concurrently: must be idempotent.
   */
  init(): Promise<void>;

  /**
   * Stores a turn durably, pending and due now. Returns false (and changes nothing) when an entry
   * with this id exists already, whatever its status: a repeated idempotency key is a no-op.
   */
  enqueue(entry: NewOutboxEntry): Promise<boolean>;

  /**
   * Claims up to `limit` entries that are pending and due, or processing with an expired lease,
   * oldest first, marking them processing under `workerId` until `leaseMs` from now. Taking over an
   * expired lease counts a failed attempt and sets `lastError`.
   *
   * Turns of one lock key (`lockKeyOf(scope)`: one user, else one agent, else one run) go to one
   * worker at a time: none is handed out while another of the key is processing under a live
   * lease, so two workers never decide against the same memories at once. `limit` counts lock
   * keys; of each key a claim hands out its oldest due entry, or with `perKey` above 1 up to that
   * many of its oldest due entries (one worker then processes them together, in that order). An
   * implementation may hand out fewer per key (at least the oldest one): the worker copes.
   *
   * @example
   * const entries = await outbox.claim({ workerId: "host:1234", limit: 2, leaseMs: 30_000, perKey: 16 });
   */
  claim(request: OutboxClaim): Promise<OutboxEntry[]>;

  /** Extends the lease of a claimed entry to `leaseMs` from now. False when the lease was lost. */
  renew(id: string, workerId: string, leaseMs: number): Promise<boolean>;

  /** Saves the decided plan of a claimed entry, once (a second plan is refused). False when the lease was lost. */
  savePlan(id: string, workerId: string, plan: string): Promise<boolean>;

  /**
   * Forgets the saved plan of a claimed entry, so that it is decided again (the memories it was
   * decided against changed meanwhile). False when the lease was lost.
   */
  discardPlan(id: string, workerId: string): Promise<boolean>;

  /** Marks a claimed entry done and erases its messages and plan; only its id and scope stay. False when the lease was lost. */
  complete(id: string, workerId: string): Promise<boolean>;

  /**
   * Records a failed attempt: the entry goes back to pending until `retryAt`, or to failed when
   * `retryAt` is undefined (given up; it stays visible and is never dropped). False when the lease
   * was lost.
   */
  fail(id: string, workerId: string, failure: { error: string; retryAt?: Date }): Promise<boolean>;

  /** Statuses of the given ids; ids that do not exist (e.g. purged) are missing from the map. */
  statuses(ids: readonly string[]): Promise<Map<string, OutboxStatus>>;

  /** Entries not done (pending, processing, failed) inside `scope`, or of every scope when omitted, oldest first. */
  pending(scope?: Scope): Promise<OutboxEntry[]>;

  /** Sets failed entries inside `scope` (or all) back to pending, due now. Returns how many. */
  retryFailed(scope?: Scope): Promise<number>;

  /**
   * Erases queued turns for good. With `scope` alone: every entry inside `scope`, including the
   * traces of turns already done. With `containing`: only entries not done inside `scope` whose
   * message contents (not roles or keys) contain that text; entries inside `scope` whose saved plan
   * holds it (a plan keeps the previous text of the memories it changes) lose their plan instead,
   * and are decided again. Returns how many entries were deleted. Erased from storage as
   * `HistoryLog.purge` describes.
   */
  purgePending(target: { scope: Scope; containing?: string }): Promise<number>;

  /**
   * Deletes the traces of turns done that were enqueued before `olderThan`. A done entry only
   * keeps its id (the idempotency key) and scope; past this window a retried enqueue with the same
   * key would run again. Returns how many. Optional: without it the outbox keeps every trace.
   * @default undefined (traces are kept)
   */
  pruneDone?(olderThan: Date): Promise<number>;

  /** Deletes every entry of every scope. Used by `Memory.reset()`. */
  reset(): Promise<void>;

  /** Releases connections and files. No call may follow. */
  close(): Promise<void>;
}
