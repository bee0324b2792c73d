import { randomUUID } from "node:crypto";
import type { HistoryEntry } from "./history/history-log.js";
import { base64ToVector, vectorToBase64 } from "./internal/json.js";
import { type Scope, scopeOf } from "./scope.js";
import type { MemoryRecord, RecordVersion, WriteExpectation } from "./stores/vector-store.js";
import type { AddResultItem, Usage } from "./types.js";

/**
 * The decided outcome of one `add`: what to write, what to log, and how to undo the writes.
 * It is computed first and applied second, so that applying is idempotent (ids are fixed in the
 * plan) and a write-behind worker can save it and re-apply it after a crash.
 */
export interface Plan {
  results: AddResultItem[];
  upsert: MemoryRecord[];
  delete: string[];
  /**
   * The state each changed memory was decided against (null: a new one). The store refuses the
   * write when any differs, so a change can never land on a memory that was updated, deleted or
   * purged in the meantime.
   */
  expect: WriteExpectation[];
  history: HistoryEntry[];
  /** Restores the store as it was before `upsert` and `delete` (previous records with vectors), if it is still as written. */
  revert: { upsert: MemoryRecord[]; delete: string[]; expect: WriteExpectation[] };
  usage: Usage;
  warnings: string[];
}

/** The version of a record that writes check: its hash and its `updatedAt`. */
export const versionOf = (record: MemoryRecord): RecordVersion => ({ hash: record.hash, updatedAt: record.updatedAt });

/** A plan that changes nothing yet. */
export const emptyPlan = (usage: Usage = emptyUsage()): Plan => ({
  results: [],
  upsert: [],
  delete: [],
  expect: [],
  history: [],
  revert: { upsert: [], delete: [], expect: [] },
  usage,
  warnings: [],
});

/** Adds a new memory to a plan: stored if its id was never used, removed again by the revert. */
export function planAdd(plan: Plan, record: MemoryRecord, now: string): void {
  plan.upsert.push(record);
  plan.expect.push({ id: record.id, version: null });
  plan.revert.delete.push(record.id);
  plan.revert.expect.push({ id: record.id, version: versionOf(record) });
  plan.history.push(historyEntry(record, "ADD", null, record.text, now));
  plan.results.push({ id: record.id, memory: record.text, event: "ADD" });
}

/** Adds a change of `previous` to `updated` to a plan, only if `previous` is still as read when it applies. */
export function planUpdate(plan: Plan, previous: MemoryRecord, updated: MemoryRecord, now: string): void {
  plan.upsert.push(updated);
  plan.expect.push({ id: previous.id, version: versionOf(previous) });
  plan.revert.upsert.push(previous);
  plan.revert.expect.push({ id: previous.id, version: versionOf(updated) });
  plan.history.push(historyEntry(previous, "UPDATE", previous.text, updated.text, now));
  plan.results.push({ id: previous.id, memory: updated.text, event: "UPDATE", previousMemory: previous.text });
}

/** Adds the deletion of `previous` (history keeps its text) to a plan, only if it is still as read when it applies. */
export function planDelete(plan: Plan, previous: MemoryRecord, now: string): void {
  plan.delete.push(previous.id);
  plan.expect.push({ id: previous.id, version: versionOf(previous) });
  plan.revert.upsert.push(previous);
  plan.revert.expect.push({ id: previous.id, version: null });
  plan.history.push(historyEntry(previous, "DELETE", previous.text, null, now));
  plan.results.push({ id: previous.id, memory: previous.text, event: "DELETE", previousMemory: previous.text });
}

/** One history entry of a change to `record`, with the record's scope ids. */
export function historyEntry(
  record: Scope & { id: string },
  event: HistoryEntry["event"],
  previousValue: string | null,
  newValue: string | null,
  createdAt: string,
): HistoryEntry {
  return { id: randomUUID(), memoryId: record.id, event, previousValue, newValue, ...scopeOf(record), createdAt };
}

export const emptyUsage = (): Usage => ({ llmCalls: 0, inputTokens: 0, outputTokens: 0, embeddingCalls: 0 });

type SerialisedRecord = Omit<MemoryRecord, "vector"> & { vector?: string };

const toJson = (record: MemoryRecord): SerialisedRecord => ({
  ...record,
  vector: record.vector ? vectorToBase64(record.vector) : undefined,
});

const fromJson = ({ vector, ...record }: SerialisedRecord): MemoryRecord =>
  vector ? { ...record, vector: base64ToVector(vector) } : record;

export function serialisePlan(plan: Plan): string {
  return JSON.stringify({
    version: 2,
    ...plan,
    upsert: plan.upsert.map(toJson),
    revert: { ...plan.revert, upsert: plan.revert.upsert.map(toJson) },
  });
}

/** Reads a saved plan; plans saved by earlier versions (1, without expectations) are read too. */
export function deserialisePlan(text: string): Plan {
  const raw = JSON.parse(text);
  if (raw.version !== 1 && raw.version !== 2) throw new Error(`Unknown plan version ${raw.version}`);
  return {
    results: raw.results,
    upsert: raw.upsert.map(fromJson),
    delete: raw.delete,
    expect: raw.expect ?? [],
    history: raw.history,
    revert: { upsert: raw.revert.upsert.map(fromJson), delete: raw.revert.delete, expect: raw.revert.expect ?? [] },
    usage: raw.usage,
    warnings: raw.warnings,
  };
}
