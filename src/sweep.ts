import { z } from "zod";
import { applyPlan, onConflict } from "./apply-plan.js";
import type { Components } from "./components.js";
import { asStoreError, ConfigError, EngramError } from "./errors.js";
import { isExpired } from "./lifecycle.js";
import { historyEntry, PlanBuilder } from "./plan.js";
import { isoNow, type Runtime } from "./runtime.js";
import { lockKeyOf, type Scope, sameScope } from "./scope.js";
import { isScopeEnumerable, type MemoryRecord, type VectorStore } from "./stores/vector-store.js";
import type { ErrorContext } from "./types.js";

/** Memories read, and deleted, per page. */
const PAGE = 500;

export const sweepOptionsSchema = z.strictObject({ purge: z.boolean({ error: "purge must be true or false" }).optional() });

/** What a sweep did. */
export interface SweepResult {
  /** Expired memories deleted. */
  deleted: number;
  /** True when their text was erased from history too. */
  purged: boolean;
}

export interface SweepSettings {
  runtime: Runtime;
  /** Runs `fn` holding the lock of the scope key (`lockKeyOf`), as every write of that scope does. */
  lock<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/** The scopes a sweep of every scope reads: each exact combination of ids the store holds. */
export async function everyScope(store: VectorStore, call: string): Promise<Scope[]> {
  if (!isScopeEnumerable(store)) {
    throw new ConfigError({
      message: `${call} of every scope needs a vector store that can list its scopes (ScopeEnumerable: SQLite, in-memory). Pass a scope instead.`,
    });
  }
  return (await store.scopes()).map(({ count: _count, ...scope }) => scope);
}

/**
 * Deletes the memories of `scopes` that have expired by now: each as `delete` would (its history
 * keeps its text, with a DELETE entry), or erased for good with `purge`. With `exact`, only the
 * memories stored with exactly a scope's ids (a pass over every scope reads each once). A memory
 * changed meanwhile (its expiry moved) is read again; one still expired then goes.
 */
export async function sweepScopes(
  components: Components,
  { runtime, lock }: SweepSettings,
  scopes: readonly Scope[],
  { purge, exact }: { purge: boolean; exact: boolean },
): Promise<SweepResult> {
  let deleted = 0;
  for (const scope of scopes) {
    const expired: MemoryRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await components.store.list({ filter: { scope }, limit: PAGE, ...(cursor ? { cursor } : {}) });
      const now = runtime.now();
      for (const record of page.records) if (isExpired(record, now) && (!exact || sameScope(record, scope))) expired.push(record);
      cursor = page.cursor;
    } while (cursor);
    const byLock = new Map<string, MemoryRecord[]>();
    for (const record of expired) {
      const key = lockKeyOf(record);
      byLock.set(key, [...(byLock.get(key) ?? []), record]);
    }
    for (const [key, records] of byLock) {
      for (let start = 0; start < records.length; start += PAGE) {
        const ids = records.slice(start, start + PAGE).map((record) => record.id);
        deleted += await lock(key, () => deleteExpired(components, runtime, ids, scope, purge));
      }
    }
  }
  return { deleted, purged: purge };
}

async function deleteExpired(components: Components, runtime: Runtime, ids: string[], scope: Scope, purge: boolean): Promise<number> {
  const { store, history } = components;
  return onConflict(async () => {
    const now = runtime.now();
    const records = (await store.get(ids, { scope })).filter((record) => isExpired(record, now));
    if (records.length === 0) return 0;
    if (purge) {
      const gone = records.map((record) => record.id);
      await store.write({ delete: gone, erase: true });
      await history.purge({ memoryIds: gone });
      const at = isoNow(runtime);
      await history.append(records.map((record) => historyEntry(record, "DELETE", null, null, at, runtime.id())));
      return gone.length;
    }
    const builder = new PlanBuilder(runtime);
    for (const record of records) builder.remove(record);
    await applyPlan(components, builder.plan);
    return records.length;
  });
}

/**
 * The background sweep of every scope, every `intervalMs`: a timer that never keeps the process
 * alive, one sweep at a time, failures reported (and tried again at the next tick). A store that
 * cannot list its scopes stops it, reported once.
 */
export class Sweeper {
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<unknown> | undefined;

  constructor(
    private readonly sweep: () => Promise<SweepResult>,
    private readonly intervalMs: number,
    private readonly report: (error: EngramError, context: ErrorContext) => void,
  ) {}

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#tick(), this.intervalMs);
    this.#timer.unref?.();
  }

  #tick(): void {
    if (this.#running) return;
    this.#running = this.sweep()
      .catch((error: unknown) => {
        const stop = ConfigError.isInstance(error);
        if (stop) this.#stopTimer();
        const reported = EngramError.isInstance(error) ? error : asStoreError(error, "The background sweep failed");
        this.report(reported, { operation: "sweep", willRetry: !stop });
      })
      .finally(() => {
        this.#running = undefined;
      });
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops the timer and waits for a sweep in progress. */
  async stop(): Promise<void> {
    this.#stopTimer();
    await this.#running;
  }
}
