import { StoreError } from "./errors.js";
import type { Relation } from "./graph/graph-store.js";
import type { HistoryEntry } from "./history/history-log.js";
import { base64ToVector, vectorToBase64 } from "./internal/json.js";
import { isoNow, type Runtime } from "./runtime.js";
import { type Scope, scopeOf } from "./scope.js";
import type { MemoryRecord, RecordVersion, WriteExpectation } from "./stores/vector-store.js";
import type { AddResultItem, ProfileChange, Usage } from "./types.js";

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
  /** Set when the plan changes the scope's profile (its entry is in `history`). */
  profile?: ProfileChange;
  /** Relations the extraction model gave for the memories it writes, by memory id (graph memory). */
  graph?: Record<string, Relation[]>;
}

/** The version of a record that writes check: its hash and its `updatedAt`. */
export const versionOf = (record: MemoryRecord): RecordVersion => ({ hash: record.hash, updatedAt: record.updatedAt });

/**
 * Builds a plan change by change. Every way Engram changes memories (verbatim adds, extraction,
 * `update`, `delete`, `deleteAll`) goes through it, so each change gets its record, its
 * precondition, its undo, its history entry and its result the same way.
 */
export class PlanBuilder {
  readonly plan: Plan;
  readonly #runtime: Runtime;
  /** When the changes are recorded (history `createdAt`). */
  readonly now: string;

  constructor(runtime: Runtime, usage: Usage = emptyUsage()) {
    this.#runtime = runtime;
    this.now = isoNow(runtime);
    this.plan = {
      results: [],
      upsert: [],
      delete: [],
      expect: [],
      history: [],
      revert: { upsert: [], delete: [], expect: [] },
      usage,
      warnings: [],
    };
  }

  /** A new memory: stored if its id was never used, removed again by the undo. */
  add(record: MemoryRecord): this {
    const { plan } = this;
    plan.upsert.push(record);
    plan.expect.push({ id: record.id, version: null });
    plan.revert.delete.push(record.id);
    plan.revert.expect.push({ id: record.id, version: versionOf(record) });
    plan.history.push(this.#entry(record, "ADD", null, record.text));
    plan.results.push({ id: record.id, memory: record.text, event: "ADD" });
    return this;
  }

  /** `previous` becomes `updated`, only if `previous` is still as read when the plan applies. */
  update(previous: MemoryRecord, updated: MemoryRecord): this {
    const { plan } = this;
    plan.upsert.push(updated);
    plan.expect.push({ id: previous.id, version: versionOf(previous) });
    plan.revert.upsert.push(previous);
    plan.revert.expect.push({ id: previous.id, version: versionOf(updated) });
    plan.history.push(this.#entry(previous, "UPDATE", previous.text, updated.text));
    plan.results.push({ id: previous.id, memory: updated.text, event: "UPDATE", previousMemory: previous.text });
    return this;
  }

  /** `previous` is deleted (its history keeps its text), only if it is still as read when the plan applies. */
  remove(previous: MemoryRecord): this {
    const { plan } = this;
    plan.delete.push(previous.id);
    plan.expect.push({ id: previous.id, version: versionOf(previous) });
    plan.revert.upsert.push(previous);
    plan.revert.expect.push({ id: previous.id, version: null });
    plan.history.push(this.#entry(previous, "DELETE", previous.text, null));
    plan.results.push({ id: previous.id, memory: previous.text, event: "DELETE", previousMemory: previous.text });
    return this;
  }

  /**
   * The members of a cluster of near-duplicates become one memory: `survivor` becomes `merged`
   * and every other member is deleted. Each original text stays in history as a MERGE entry whose
   * new value is the merged text: on the member it was, and on the survivor (which so lists every
   * text merged into it).
   */
  merge(survivor: MemoryRecord, merged: MemoryRecord, absorbed: readonly MemoryRecord[]): this {
    const { plan } = this;
    plan.upsert.push(merged);
    plan.expect.push({ id: survivor.id, version: versionOf(survivor) });
    plan.revert.upsert.push(survivor);
    plan.revert.expect.push({ id: survivor.id, version: versionOf(merged) });
    plan.history.push(this.#entry(survivor, "MERGE", survivor.text, merged.text));
    for (const member of absorbed) {
      plan.delete.push(member.id);
      plan.expect.push({ id: member.id, version: versionOf(member) });
      plan.revert.upsert.push(member);
      plan.revert.expect.push({ id: member.id, version: null });
      plan.history.push(this.#entry(survivor, "MERGE", member.text, merged.text));
      plan.history.push(this.#entry(member, "MERGE", member.text, merged.text));
    }
    return this;
  }

  /** A memory the turn only repeats: a result, no change. */
  none(record: Pick<MemoryRecord, "id" | "text">): this {
    this.plan.results.push({ id: record.id, memory: record.text, event: "NONE" });
    return this;
  }

  warn(warning: string): this {
    this.plan.warnings.push(warning);
    return this;
  }

  #entry(record: MemoryRecord, event: HistoryEntry["event"], previousValue: string | null, newValue: string | null): HistoryEntry {
    return historyEntry(record, event, previousValue, newValue, this.now, this.#runtime.id());
  }
}

/** One history entry of a change to `record`, with the record's scope ids. */
export function historyEntry(
  record: Scope & { id: string },
  event: HistoryEntry["event"],
  previousValue: string | null,
  newValue: string | null,
  createdAt: string,
  id: string,
): HistoryEntry {
  return { id, memoryId: record.id, event, previousValue, newValue, ...scopeOf(record), createdAt };
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
  if (raw.version !== 1 && raw.version !== 2) {
    throw new StoreError({
      message: `A saved plan has version ${raw.version}, which this version of Engram cannot read: process the outbox with the version that wrote it.`,
    });
  }
  return {
    results: raw.results,
    upsert: raw.upsert.map(fromJson),
    delete: raw.delete,
    expect: raw.expect ?? [],
    history: raw.history,
    revert: { upsert: raw.revert.upsert.map(fromJson), delete: raw.revert.delete, expect: raw.revert.expect ?? [] },
    usage: raw.usage,
    warnings: raw.warnings,
    ...(raw.profile ? { profile: raw.profile } : {}),
    ...(raw.graph ? { graph: raw.graph } : {}),
  };
}
