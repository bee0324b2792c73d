import { randomUUID } from "node:crypto";
import type { HistoryEntry } from "./history/history-store.js";
import { base64ToVector, vectorToBase64 } from "./internal/json.js";
import { type Scope, scopeOf } from "./scope.js";
import type { MemoryRecord } from "./stores/vector-store.js";
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
  history: HistoryEntry[];
  /** Restores the store as it was before `upsert` and `delete` (previous records with vectors). */
  revert: { upsert: MemoryRecord[]; delete: string[] };
  usage: Usage;
  warnings: string[];
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
    version: 1,
    ...plan,
    upsert: plan.upsert.map(toJson),
    revert: { upsert: plan.revert.upsert.map(toJson), delete: plan.revert.delete },
  });
}

export function deserialisePlan(text: string): Plan {
  const raw = JSON.parse(text);
  if (raw.version !== 1) throw new Error(`Unknown plan version ${raw.version}`);
  return {
    results: raw.results,
    upsert: raw.upsert.map(fromJson),
    delete: raw.delete,
    history: raw.history,
    revert: { upsert: raw.revert.upsert.map(fromJson), delete: raw.revert.delete },
    usage: raw.usage,
    warnings: raw.warnings,
  };
}
