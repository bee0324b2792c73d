import { asStoreError, type EngramError, WriteConflictError } from "./errors.js";
import { indexPlan } from "./graph/graph-index.js";
import type { GraphStore } from "./graph/graph-store.js";
import type { HistoryEntry, HistoryLog } from "./history/history-log.js";
import { type RetryOptions, retry } from "./internal/async.js";
import type { Plan } from "./plan.js";
import type { Scope } from "./scope.js";
import type { VectorStore, WriteBatch } from "./stores/vector-store.js";
import type { ErrorContext } from "./types.js";

/** Where plans are written, and how failures of the history half are retried and reported. */
export interface PlanWriter {
  store: VectorStore;
  history: HistoryLog;
  /** Writes a batch and its history in one transaction, when the backend allows it (one SQLite file). */
  jointWrite: ((batch: WriteBatch, entries: readonly HistoryEntry[]) => Promise<void>) | undefined;
  retry: RetryOptions;
  report(error: EngramError, context: ErrorContext): void;
  /** Graph memory, when it is on: derived from each applied plan. */
  graph?: GraphStore | undefined;
}

/**
 * Applies a plan: the store write (refused with a `WriteConflictError` when a memory it changes is
 * no longer as it was read), then its history; the write is undone when history cannot be written.
 * Where the store and history share one transaction, a crash keeps both or neither.
 */
export async function applyPlan(writer: PlanWriter, plan: Plan): Promise<void> {
  if (plan.upsert.length === 0 && plan.delete.length === 0 && plan.history.length === 0) return;
  const batch = { upsert: plan.upsert, delete: plan.delete, expect: plan.expect };
  if (writer.jointWrite) {
    await writer.jointWrite(batch, plan.history);
    return indexGraph(writer, plan);
  }
  await writer.store.write(batch);
  await appendHistory(writer, plan);
}

/** The history half of `applyPlan`, with retries; undoes the store write when it fails for good. */
export async function appendHistory(writer: PlanWriter, plan: Plan): Promise<void> {
  try {
    await retry(() => writer.history.append(plan.history), {
      ...writer.retry,
      onRetry: (error, attempt) => writer.report(error as EngramError, { operation: "history", attempt, willRetry: true }),
    });
  } catch (error) {
    try {
      await writer.store.write(plan.revert);
    } catch (revertError) {
      writer.report(revertError as EngramError, { operation: "revert", willRetry: false });
    }
    throw error;
  }
  await indexGraph(writer, plan);
}

/**
 * The graph half: derived from what was written, with retries. The memories are stored by now,
 * so a graph that cannot be written is reported (operation "graph"), never a failed add.
 */
async function indexGraph(writer: PlanWriter, plan: Plan): Promise<void> {
  const graph = writer.graph;
  const at = plan.history[0]?.createdAt;
  if (!graph || at === undefined) return;
  try {
    await retry(() => indexPlan(graph, plan, at), {
      ...writer.retry,
      onRetry: (error, attempt) =>
        writer.report(asStoreError(error, "The graph write failed"), { operation: "graph", attempt, willRetry: true }),
    });
  } catch (error) {
    writer.report(asStoreError(error, "The graph write failed"), { operation: "graph", willRetry: false });
  }
}

/** True when the history of a saved plan is written: the plan was applied whole (history is written last). */
export async function wasApplied(writer: PlanWriter, plan: Plan, scope: Scope): Promise<boolean> {
  const first = plan.history[0];
  if (!first) return true;
  const entries = await writer.history.list(first.memoryId, scope);
  return entries.some((entry) => entry.id === first.id);
}

/** True when the store holds what a plan writes: its upserts as planned, its deletes gone. */
export async function storeHolds(writer: PlanWriter, plan: Plan, scope: Scope): Promise<boolean> {
  const ids = [...plan.upsert.map((record) => record.id), ...plan.delete];
  const stored = new Map((await writer.store.get(ids, { scope })).map((record) => [record.id, record]));
  return (
    plan.upsert.every((record) => {
      const current = stored.get(record.id);
      return current !== undefined && current.hash === record.hash && current.updatedAt === record.updatedAt;
    }) && plan.delete.every((id) => !stored.has(id))
  );
}

/** Runs `fn` again, three times in all at most, while its write is refused because what it read changed meanwhile. */
export async function onConflict<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!WriteConflictError.isInstance(error) || attempt >= 3) throw error;
    }
  }
}
