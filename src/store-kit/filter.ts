import { InvalidInputError, MissingScopeError } from "../errors.js";
import { type Scope, scopeKeys } from "../scope.js";
import type { MemoryRecord, MetadataValue, StoreFilter } from "../stores/vector-store.js";

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

/**
 * Metadata equality conditions of a filter. Keys are checked against `metadataKeyPattern` (stores
 * place them in JSON paths and payload keys): another key is an `InvalidInputError`.
 */
export function metadataConditions(filter: StoreFilter): [string, MetadataValue][] {
  const entries = Object.entries(filter.metadata ?? {});
  for (const [key] of entries) {
    if (!metadataKeyPattern.test(key)) {
      throw new InvalidInputError({
        message: `Invalid metadata filter key "${key}": filter keys are metadata keys of 1-64 letters, digits, _ . -`,
        field: "filters",
      });
    }
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

/** Cosine similarity in [-1, 1]; 0 when either vector is all zeros. */
/** Σ a[d]·b[d] over a's length, summed in that order (`dotProduct(v, v)`: v's squared norm). */
export function dotProduct(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let d = 0; d < a.length; d++) dot += (a[d] as number) * (b[d] as number);
  return dot;
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
