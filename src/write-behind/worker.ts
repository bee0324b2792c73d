import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { asStoreError, type EngramError } from "../errors.js";
import type { Outbox, OutboxEntry } from "../history/outbox.js";
import { backoffDelay } from "../internal/async.js";
import { defaultRuntime, type Runtime } from "../runtime.js";
import { lockKeyOf } from "../scope.js";
import type { ErrorContext } from "../types.js";

export interface WriteBehindOptions {
  /** Process the outbox in this process. Turn off in processes that only read, or to run workers elsewhere. @default true */
  enabled: boolean;
  /** How often an idle worker looks for turns enqueued by other processes or due for a retry. @default 1000 */
  pollIntervalMs: number;
  /** Users (else agents, else runs) whose turns are processed at once; never two turns of one at once. @default 2 */
  concurrency: number;
  /**
   * Turns of one user (else agent, else run) waiting in the outbox that a worker takes together:
   * their verbatim adds are planned with ONE embedding call and written in ONE transaction, each
   * turn still done exactly once (see docs/write-behind.md). 1 processes each turn alone. @default 16
   */
  batchSize: number;
  /** Attempts before a turn is marked failed (it stays in the outbox, visible through `pending()`). @default 5 */
  maxAttempts: number;
  /** How long a claim lasts without renewal; a crashed worker's turns are taken over after it. @default 30000 */
  leaseMs: number;
  /** First retry delay, doubled each attempt. @default 500 */
  minDelayMs: number;
  /** @default 30000 */
  maxDelayMs: number;
  /**
   * How long the trace of a done turn (its id, for idempotency) is kept before the worker prunes
   * it, when the history store can prune. @default 604800000 (7 days)
   */
  keepDoneMs: number;
}

export const defaultWriteBehind: WriteBehindOptions = {
  enabled: true,
  pollIntervalMs: 1000,
  concurrency: 2,
  batchSize: 16,
  maxAttempts: 5,
  leaseMs: 30_000,
  minDelayMs: 500,
  maxDelayMs: 30_000,
  keepDoneMs: 7 * 24 * 60 * 60 * 1000,
};

/** How often a worker prunes done turns. */
const pruneEveryMs = 60 * 60 * 1000;

/** Returned by a processor when another worker owns the entry now: nothing to record. */
export const leaseLost = Symbol("lease lost");

/**
 * Processes claimed entries of one lock key, in order, and calls `failed` for each one that fails
 * (the worker records the failed attempt and its retry); an entry whose lease was lost is left alone.
 */
export type ProcessEntries = (
  entries: readonly OutboxEntry[],
  workerId: string,
  failed: (entry: OutboxEntry, error: unknown) => Promise<void>,
) => Promise<void>;

/**
 * Claims turns from the outbox and processes them, with leases renewed while working, retries with
 * backoff, and a poll for work from other processes. Timers are unref'd: a worker never keeps a
 * process alive; whatever is left stays durable in the outbox for the next start.
 */
export class WriteBehindWorker {
  readonly id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #listeners = new Set<() => void>();
  readonly #renewals = new Set<NodeJS.Timeout>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #prunedAt = 0;
  /** Ticks in a row that could not reach the outbox: the next poll waits longer each time. */
  #failedTicks = 0;

  constructor(
    private readonly outbox: () => Promise<Outbox>,
    private readonly processEntries: ProcessEntries,
    private readonly options: WriteBehindOptions,
    private readonly report: (error: EngramError, context: ErrorContext) => void,
    private readonly runtime: Runtime = defaultRuntime,
  ) {}

  /** Looks for work now. */
  kick(): void {
    this.#schedule(0);
  }

  /** Resolves at the next settled entry, or after `ms`. */
  settled(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#listeners.add(done);
    });
  }

  /** Stops claiming and waits for the turns in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    await Promise.allSettled(this.#inFlight);
  }

  /**
   * Stops renewing the leases of the turns still in progress (after `stop` gave up waiting for
   * them): their leases run out, and another worker takes the turns over.
   */
  abandon(): void {
    for (const renewal of this.#renewals) clearInterval(renewal);
    this.#renewals.clear();
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    if (this.#running) {
      if (ms === 0) this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#running = this.#tick().finally(() => {
        this.#running = undefined;
        const again = this.#again;
        this.#again = false;
        // An outbox that cannot be reached (down, damaged) is polled less and less often.
        const failing = this.#failedTicks === 0 ? 0 : backoffDelay(this.#failedTicks - 1, this.options);
        this.#schedule(again && failing === 0 ? 0 : Math.max(this.options.pollIntervalMs, failing));
      });
    }, ms);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    try {
      const history = await this.outbox();
      const pruneDone = history.pruneDone?.bind(history);
      if (pruneDone && this.runtime.now() - this.#prunedAt >= pruneEveryMs) {
        this.#prunedAt = this.runtime.now();
        await pruneDone(new Date(this.runtime.now() - this.options.keepDoneMs));
      }
      while (!this.#stopped) {
        const free = this.options.concurrency - this.#inFlight.size;
        if (free <= 0) {
          await Promise.race(this.#inFlight);
          continue;
        }
        const entries = await history.claim({
          workerId: this.id,
          limit: free,
          leaseMs: this.options.leaseMs,
          perKey: this.options.batchSize,
        });
        this.#failedTicks = 0;
        if (entries.length === 0) return;
        const groups = new Map<string, OutboxEntry[]>();
        for (const entry of entries) {
          const key = lockKeyOf(entry);
          const group = groups.get(key);
          if (group) group.push(entry);
          else groups.set(key, [entry]);
        }
        for (const group of groups.values()) {
          const task = this.#process(history, group).finally(() => {
            this.#inFlight.delete(task);
            for (const listener of [...this.#listeners]) listener();
            this.kick();
          });
          this.#inFlight.add(task);
        }
      }
    } catch (error) {
      this.#failedTicks++;
      this.report(asStoreError(error, "The write-behind worker could not claim turns from the outbox"), {
        operation: "write-behind",
        willRetry: true,
      });
    }
  }

  async #process(history: Outbox, entries: OutboxEntry[]): Promise<void> {
    const renewal = setInterval(
      () => {
        for (const entry of entries) history.renew(entry.id, this.id, this.options.leaseMs).catch(() => {});
      },
      Math.max(50, this.options.leaseMs / 3),
    );
    renewal.unref();
    this.#renewals.add(renewal);
    const failed = new Set<string>();
    const fail = (entry: OutboxEntry, error: unknown) => {
      if (failed.has(entry.id)) return Promise.resolve();
      failed.add(entry.id);
      return this.#fail(history, entry, error);
    };
    try {
      await this.processEntries(entries, this.id, fail);
    } catch (error) {
      // Outside any one entry (the store could not be opened): each entry not done counts an attempt.
      const statuses = await history.statuses(entries.map((entry) => entry.id)).catch(() => undefined);
      for (const entry of entries) if (!statuses || statuses.get(entry.id) === "processing") await fail(entry, error);
    } finally {
      clearInterval(renewal);
      this.#renewals.delete(renewal);
    }
  }

  /** Records a failed attempt: back to pending until the retry, or failed after the last one. */
  async #fail(history: Outbox, entry: OutboxEntry, error: unknown): Promise<void> {
    const attempt = entry.attempts;
    const willRetry = attempt + 1 < this.options.maxAttempts;
    const delay = backoffDelay(attempt, this.options);
    const failure = asStoreError(error, "Writing a turn to memory failed");
    try {
      await history.fail(entry.id, this.id, {
        error: `${failure.name}: ${failure.message}`,
        retryAt: willRetry ? new Date(this.runtime.now() + delay) : undefined,
      });
    } catch (recordError) {
      // The lease will expire and the turn will be claimed again: still not lost.
      this.report(asStoreError(recordError, "Recording a failed turn in the outbox failed"), {
        operation: "write-behind",
        entryId: entry.id,
        willRetry: true,
      });
    }
    this.report(failure, { operation: "write-behind", entryId: entry.id, attempt, willRetry });
    if (willRetry) this.#wakeAt(delay);
  }

  #wakeAt(ms: number): void {
    const timer = setTimeout(() => this.kick(), ms + 5);
    timer.unref();
  }
}
