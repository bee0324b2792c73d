import type { Scope } from "../scope.js";

export type HistoryEvent = "ADD" | "UPDATE" | "DELETE";

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

/** A chat message as Engram stores and extracts it. */
export interface Message {
  readonly role: "user" | "assistant" | "system";
  readonly content: string;
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

/**
 * The change log of every memory, and the durable outbox of turns waiting to be written.
 *
 * Outbox entries are claimed under a lease by a worker id; the calls that change a claimed entry
 * (`savePlan`, `complete`, `fail`, `renew`) take that worker id and do nothing (returning false)
 * when the lease was lost to another worker. Implementations must make `claim` safe across
 * processes sharing one backend (e.g. `FOR UPDATE SKIP LOCKED` in PostgreSQL).
 */
export interface HistoryStore {
  /** Creates tables on first use. Idempotent. */
  init(): Promise<void>;

  /**
   * Appends entries; entries whose id exists already are ignored (replays are harmless). Entries of
   * memories erased by `purge({ memoryIds })` are stored with `previousValue` and `newValue` null.
   */
  append(entries: readonly HistoryEntry[]): Promise<void>;

  /** Entries of `memoryId` whose scope lies inside `scope` (AND of given ids), oldest first. */
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
   * without their text.
   */
  purge(target: { memoryIds: readonly string[] } | { scope: Scope }): Promise<void>;

  /** Stores a turn durably. Returns false when an entry with this id exists already. */
  enqueue(entry: NewOutboxEntry): Promise<boolean>;

  /**
   * Claims up to `limit` entries that are pending and due, or processing with an expired lease,
   * oldest first, marking them processing under `workerId` until `leaseMs` from now.
   *
   * Turns of one lock key (`lockKeyOf(scope)`: one user, else one agent, else one run) are handed
   * out one at a time: never two in one claim, and none while another of the key is processing
   * under a live lease, so two workers never decide against the same memories at once.
   */
  claim(request: { workerId: string; limit: number; leaseMs: number }): Promise<OutboxEntry[]>;

  /** Extends the lease of a claimed entry. False when the lease was lost. */
  renew(id: string, workerId: string, leaseMs: number): Promise<boolean>;

  /** Saves the decided plan of a claimed entry, once. False when the lease was lost. */
  savePlan(id: string, workerId: string, plan: string): Promise<boolean>;

  /**
   * Forgets the saved plan of a claimed entry, so that it is decided again (the memories it was
   * decided against changed meanwhile). False when the lease was lost.
   */
  discardPlan(id: string, workerId: string): Promise<boolean>;

  /** Marks a claimed entry done and erases its messages and plan. */
  complete(id: string, workerId: string): Promise<boolean>;

  /**
   * Records a failed attempt: the entry goes back to pending until `retryAt`, or to failed when
   * `retryAt` is undefined (given up; it stays visible and is never dropped).
   */
  fail(id: string, workerId: string, failure: { error: string; retryAt?: Date }): Promise<boolean>;

  /** Statuses of the given ids; ids that do not exist (e.g. purged) are missing from the map. */
  statuses(ids: readonly string[]): Promise<Map<string, OutboxStatus>>;

  /** Entries not done (pending, processing, failed) inside `scope`, or of every scope when omitted. */
  pending(scope?: Scope): Promise<OutboxEntry[]>;

  /** Sets failed entries inside `scope` (or all) back to pending, due now. Returns how many. */
  retryFailed(scope?: Scope): Promise<number>;

  /**
   * Erases queued turns for good. With `scope` alone: every entry inside `scope`, including the
   * traces of turns already done. With `containing`: only entries not done inside `scope` whose
   * messages contain that text; entries inside `scope` whose saved plan holds it (a plan keeps the
   * previous text of the memories it changes) lose their plan instead, and are decided again.
   * Returns how many entries were deleted. Erased from storage as `purge` describes.
   */
  purgePending(target: { scope: Scope; containing?: string }): Promise<number>;

  /**
   * Deletes the traces of turns done that were enqueued before `olderThan`. A done entry only
   * keeps its id (the idempotency key) and scope; past this window a retried enqueue with the same
   * key would run again. Optional: without it the outbox keeps every trace. Returns how many.
   */
  pruneDone?(olderThan: Date): Promise<number>;

  /** Deletes all history and outbox entries. Used by `Memory.reset()`. */
  reset(): Promise<void>;

  close(): Promise<void>;
}
