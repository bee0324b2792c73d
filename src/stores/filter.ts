import { MissingScopeError, StoreError, WriteConflictError } from "../errors.js";
import { type Scope, scopeKeys } from "../scope.js";
import type { MemoryRecord, MetadataValue, RecordVersion, StoreFilter, WriteBatch } from "./vector-store.js";

/** Metadata keys usable in filters: safe to place in a JSON path or a payload key. */
export const metadataKeyPattern = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * The scope ids of a filter as [key, value] pairs. Stores call it first: a filter without any scope
 * id is refused here too, so a store can never be asked for everyone's memories.
 */
export function scopeConditions(filter: StoreFilter, call = "store query"): [keyof Scope, string][] {
  const pairs: [keyof Scope, string][] = [];
  for (const key of scopeKeys) {
    const value = filter.scope[key];
    if (typeof value === "string" && value !== "") pairs.push([key, value]);
  }
  if (pairs.length === 0) throw new MissingScopeError({ call });
  return pairs;
}

/** Metadata equality conditions of a filter, keys checked against `metadataKeyPattern`. */
export function metadataConditions(filter: StoreFilter): [string, MetadataValue][] {
  const entries = Object.entries(filter.metadata ?? {});
  for (const [key] of entries) {
    if (!metadataKeyPattern.test(key)) throw new Error(`Invalid metadata filter key "${key}"`);
  }
  return entries;
}

/** True when `record` lies inside `filter`; used by stores that evaluate filters in process. */
export function matchesFilter(record: MemoryRecord, filter: StoreFilter): boolean {
  for (const [key, value] of scopeConditions(filter)) if (record[key] !== value) return false;
  if (filter.hash !== undefined && record.hash !== filter.hash) return false;
  for (const [key, value] of metadataConditions(filter)) {
    if (!Object.hasOwn(record.metadata, key) || record.metadata[key] !== value) return false;
  }
  return true;
}

export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    normA += x * x;
    normB += y * y;
  }
  if (normA === 0 || normB === 0) return 0;
  return dot / Math.sqrt(normA * normB);
}

/**
 * The upserts of a batch, one per id (the last one wins, as if they ran one after another), each
 * checked to carry a vector of the store's dimension. Stores call it before writing anything.
 */
export function checkedUpserts(batch: WriteBatch, dimension: number | undefined): (MemoryRecord & { vector: Float32Array })[] {
  const upserts = [...new Map((batch.upsert ?? []).map((record) => [record.id, record])).values()];
  for (const record of upserts) {
    if (!record.vector) throw new StoreError({ message: `Record ${record.id} has no vector` });
    if (dimension !== undefined && record.vector.length !== dimension) {
      throw new StoreError({
        message: `Record ${record.id} has a ${record.vector.length}-dimensional vector; the store holds ${dimension}`,
      });
    }
  }
  return upserts as (MemoryRecord & { vector: Float32Array })[];
}

/** The ids whose stored state a write must look at before applying: those it expects a state of, and those it upserts. */
export function idsToCheck(batch: WriteBatch): string[] {
  return [...new Set([...(batch.expect ?? []).map((expectation) => expectation.id), ...(batch.upsert ?? []).map((record) => record.id)])];
}

/**
 * Throws a `WriteConflictError` when the batch may not apply: a record is not in the state its
 * expectation names, or an upsert targets an erased id. `current` holds the stored version of each
 * id of `idsToCheck(batch)` that exists, `erased` those of them that are tombstoned.
 */
export function assertNoConflict(batch: WriteBatch, current: ReadonlyMap<string, RecordVersion>, erased: ReadonlySet<string>): void {
  const conflicts = new Set<string>();
  for (const { id, version } of batch.expect ?? []) {
    const stored = current.get(id);
    if (
      version === null ? stored !== undefined || erased.has(id) : stored?.hash !== version.hash || stored.updatedAt !== version.updatedAt
    ) {
      conflicts.add(id);
    }
  }
  for (const record of batch.upsert ?? []) if (erased.has(record.id)) conflicts.add(record.id);
  if (conflicts.size > 0) throw new WriteConflictError({ memoryIds: [...conflicts] });
}
