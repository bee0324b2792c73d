import { StoreError, WriteConflictError } from "../errors.js";
import type { MemoryRecord, RecordVersion, WriteBatch } from "../stores/vector-store.js";

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
