import { mergePlans } from "../add-many.js";
import { appendHistory, applyPlan, type PlanWriter, storeHolds, wasApplied } from "../apply-plan.js";
import type { EngramError } from "../errors.js";
import { WriteConflictError } from "../errors.js";
import type { Message, Outbox, OutboxEntry } from "../history/outbox.js";
import { outboxEntryId } from "../history/outbox-entry-id.js";
import { deserialisePlan, type Plan, serialisePlan } from "../plan.js";
import type { Runtime } from "../runtime.js";
import { type Scope, scopeOf, type ValidScope, validateScope } from "../scope.js";
import type { ErrorContext, PendingTurn } from "../types.js";
import { leaseLost, type WriteBehindOptions, WriteBehindWorker } from "./worker.js";

/** What processing a turn needs from its `Memory`. */
export interface TurnProcessor {
  /** Decides what a queued turn changes (its add options as stored in the outbox). */
  decide(scope: ValidScope, messages: Message[], options: Readonly<Record<string, unknown>>, entryId: string): Promise<Plan>;
  /**
   * True when a queued turn (its add options as stored) is one verbatim add, which `decideMany`
   * can plan together with others.
   */
  isVerbatim(options: Readonly<Record<string, unknown>>): boolean;
  /**
   * Decides verbatim turns as if they ran one after another, with one embedding call: one plan per
   * turn, each of which can be applied on its own (after the plans before it).
   */
  decideMany(
    turns: readonly { scope: ValidScope; messages: Message[]; options: Readonly<Record<string, unknown>>; entryId: string }[],
  ): Promise<Plan[]>;
  /** Where plans are written. */
  writer(): Promise<PlanWriter>;
  /** Runs `fn` while no other change of the scope's user (else agent, else run) runs in this process. */
  lock<T>(scope: Scope, fn: () => Promise<T>): Promise<T>;
}

export interface FlushResult {
  /** Turns enqueued here that are now in memory. */
  processed: number;
  /** Turns enqueued here that failed every attempt (still in the outbox: see `pending()`). */
  failed: number;
  /** Turns still waiting when `timeoutMs` ran out. */
  waiting: number;
}

/**
 * The durable write-behind of one `Memory`: turns are written to the outbox first, then a worker
 * (started with the Memory's first call, when `enabled`) decides and applies them, exactly once,
 * with retries. See docs/write-behind.md.
 */
export class WriteBehind {
  /** Turns enqueued (or requeued) through this instance that `flush` waits for. */
  readonly #enqueued = new Set<string>();
  readonly #worker: WriteBehindWorker | undefined;
  #started = false;

  constructor(
    private readonly outbox: () => Promise<Outbox>,
    private readonly processor: TurnProcessor,
    options: WriteBehindOptions,
    report: (error: EngramError, context: ErrorContext) => void,
    private readonly runtime: Runtime,
  ) {
    if (options.enabled) {
      this.#worker = new WriteBehindWorker(
        outbox,
        (entries, workerId, failed) => this.#processEntries(entries, workerId, failed),
        options,
        report,
        runtime,
      );
    }
  }

  /** Starts the worker, once: turns left pending by a previous process are picked up now. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#worker?.kick();
  }

  /** Writes a turn to the outbox; `queued` is false when its key was used in this scope already. */
  async enqueue(scope: ValidScope, messages: Message[], options: Record<string, unknown>, idempotencyKey?: string) {
    const outbox = await this.outbox();
    const id = outboxEntryId(scope, idempotencyKey ?? this.runtime.id());
    const queued = await outbox.enqueue({ id, messages, scope, options });
    this.#enqueued.add(id);
    this.#worker?.kick();
    return { id, queued };
  }

  /** Resolves when every turn enqueued (or requeued) here is done or failed, or `timeoutMs` has passed. */
  async flush(timeoutMs: number): Promise<FlushResult> {
    const outbox = await this.outbox();
    const deadline = this.runtime.now() + timeoutMs;
    let processed = 0;
    let failed = 0;
    let open = [...this.#enqueued];
    for (;;) {
      const statuses = await outbox.statuses(open);
      const still: string[] = [];
      for (const id of open) {
        const status = statuses.get(id);
        if (status === "pending" || status === "processing") still.push(id);
        else {
          if (status === "failed") failed++;
          else processed++;
          this.#enqueued.delete(id);
        }
      }
      open = still;
      const left = deadline - this.runtime.now();
      if (open.length === 0 || left <= 0) return { processed, failed, waiting: open.length };
      this.#worker?.kick();
      await (this.#worker ? this.#worker.settled(Math.min(50, left)) : new Promise((resolve) => setTimeout(resolve, Math.min(50, left))));
    }
  }

  /** Turns not done inside `scope` (or every scope). */
  async pending(scope: Scope | undefined): Promise<PendingTurn[]> {
    const entries = await (await this.outbox()).pending(scope);
    return entries.map((entry) => {
      const turn: PendingTurn = {
        id: entry.id,
        status: entry.status as PendingTurn["status"],
        messages: [...entry.messages],
        attempts: entry.attempts,
        createdAt: entry.createdAt,
        nextAttemptAt: entry.nextAttemptAt,
        ...scopeOf(entry),
      };
      if (entry.lastError !== undefined) turn.lastError = entry.lastError;
      return turn;
    });
  }

  /** Puts failed turns back in the queue; `flush` then waits for them too. */
  async retryFailed(scope: Scope | undefined): Promise<{ requeued: number }> {
    const outbox = await this.outbox();
    const failed = await outbox.pending(scope);
    const requeued = await outbox.retryFailed(scope);
    for (const entry of failed) if (entry.status === "failed") this.#enqueued.add(entry.id);
    this.#worker?.kick();
    return { requeued };
  }

  /** Forgets the turns `flush` waits for (after a reset). */
  forget(): void {
    this.#enqueued.clear();
  }

  /** Stops claiming and waits for the turns in progress. */
  async stop(): Promise<void> {
    await this.#worker?.stop();
  }

  /** Stops renewing the leases of turns still in progress, so another worker takes them over. */
  abandon(): void {
    this.#worker?.abandon();
  }

  /**
   * Processes claimed turns of one lock key, in order, under its lock. Consecutive verbatim turns
   * without a saved plan are decided together (one embedding call), each plan saved on its own
   * entry, then written in one transaction. When that fails, or a plan cannot be saved, each turn
   * of the batch goes on alone (from its saved plan, if it has one), so a bad turn fails alone.
   */
  async #processEntries(
    entries: readonly OutboxEntry[],
    workerId: string,
    failed: (entry: OutboxEntry, error: unknown) => Promise<void>,
  ): Promise<void> {
    const outbox = await this.outbox();
    const writer = await this.processor.writer();
    const lockScope = validateScope("enqueue", scopeOf(entries[0] as OutboxEntry));
    const one = (entry: OutboxEntry, saved?: Plan) =>
      this.#process(outbox, writer, entry, workerId, saved).catch((error: unknown) => failed(entry, error));
    await this.processor.lock(lockScope, async () => {
      let batch: OutboxEntry[] = [];
      const writeBatch = async () => {
        const entriesOfBatch = batch;
        batch = [];
        if (entriesOfBatch.length === 1) await one(entriesOfBatch[0] as OutboxEntry);
        else if (entriesOfBatch.length > 1) {
          const saved = await this.#processBatch(outbox, writer, entriesOfBatch, workerId);
          if (saved) for (const entry of entriesOfBatch) await one(entry, saved.get(entry.id));
        }
      };
      for (const entry of entries) {
        if (entry.plan === undefined && this.processor.isVerbatim(entry.options)) {
          batch.push(entry);
          continue;
        }
        await writeBatch();
        await one(entry);
      }
      await writeBatch();
    });
  }

  /**
   * Decides verbatim turns together, saves each one's plan on its entry, and writes them all in
   * one transaction (where store and history share one). Returns undefined when they are done (or
   * another worker took them over), or the plans saved so far when the turns must go on one by one.
   */
  async #processBatch(
    outbox: Outbox,
    writer: PlanWriter,
    entries: readonly OutboxEntry[],
    workerId: string,
  ): Promise<Map<string, Plan> | undefined> {
    const saved = new Map<string, Plan>();
    try {
      const plans = await this.processor.decideMany(
        entries.map((entry) => ({
          scope: validateScope("enqueue", scopeOf(entry)),
          messages: [...entry.messages],
          options: entry.options,
          entryId: entry.id,
        })),
      );
      for (const [i, entry] of entries.entries()) {
        const plan = plans[i] as Plan;
        if (!(await outbox.savePlan(entry.id, workerId, serialisePlan(plan)))) return saved;
        saved.set(entry.id, plan);
      }
      if (writer.jointWrite) await applyPlan(writer, mergePlans(plans));
      // Store and history apart: each plan written with its history before the next, so a worker
      // that stops half-way leaves every plan written whole or not at all (see `#process`).
      else for (const plan of plans) await applyPlan(writer, plan);
    } catch {
      // Each turn on its own reports its own failure, if it fails again.
      return saved;
    }
    for (const entry of entries) {
      // False: the lease was lost meanwhile; the next worker finds the plan applied.
      await outbox.complete(entry.id, workerId).catch(() => false);
    }
    return undefined;
  }

  /**
   * Processes one claimed turn exactly once: a saved plan is re-applied (or found applied), else
   * the turn is decided and its plan saved before it is applied. A plan refused because a memory it
   * changes changed meanwhile is forgotten and the turn decided again.
   */
  async #process(
    outbox: Outbox,
    writer: PlanWriter,
    entry: OutboxEntry,
    workerId: string,
    savedHere?: Plan,
  ): Promise<undefined | typeof leaseLost> {
    const scope = validateScope("enqueue", scopeOf(entry));
    const decide = async () => {
      const plan = await this.processor.decide(scope, [...entry.messages], entry.options, entry.id);
      return (await outbox.savePlan(entry.id, workerId, serialisePlan(plan))) ? plan : undefined;
    };
    const saved = savedHere ?? (entry.plan === undefined ? undefined : deserialisePlan(entry.plan));
    let plan = saved ?? (await decide());
    if (!plan) return leaseLost;
    try {
      // A saved plan applies again when the store is still as it was decided against: never
      // written, or written and then undone (a history write that landed but was seen to fail).
      await applyPlan(writer, plan);
    } catch (error) {
      if (!WriteConflictError.isInstance(error)) throw error;
      if (saved && (await storeHolds(writer, saved, scope))) {
        // Written by a worker that stopped before it was told: history may be missing.
        await appendHistory(writer, saved);
      } else if (!saved || !(await wasApplied(writer, saved, scope))) {
        // Decided against memories that changed since (another call updated, deleted or purged
        // one): decide again against what is stored now. A second conflict fails the attempt.
        if (!(await outbox.discardPlan(entry.id, workerId))) return leaseLost;
        plan = await decide();
        if (!plan) return leaseLost;
        await applyPlan(writer, plan);
      }
      // Otherwise it was applied whole, and its memories changed since: done.
    }
    if (!(await outbox.complete(entry.id, workerId))) return leaseLost;
  }
}
