import { expect } from "vitest";
import { textHash } from "../../../internal/hash.js";
import type { Scope } from "../../../scope.js";
import type { MemoryRecord, StoreFilter, VectorStore } from "../../../stores/vector-store.js";
import { seededRandom } from "../../seeded-random.js";

/** What each part of the suite gets from `testVectorStore`. */
export interface SuiteContext {
  /** A new store from `create`, inited for `DIMENSION` and `MODEL_ID`, closed after the test. */
  fresh(): Promise<VectorStore>;
  /** A new store from `create`, not inited yet, closed after the test. */
  unopened(): Promise<VectorStore>;
  failMidWrite: ((store: VectorStore, id: string) => Promise<void> | void) | undefined;
  atomicPreconditions: boolean;
}
/** The dimension every store of the suite is made for. */
export const DIMENSION = 8;
export const MODEL_ID = "conformance-model";

export function randomVector(next: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: DIMENSION }, () => (next() * 2 - 1) * scale);
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i++) {
    dot += (a[i] as number) * (b[i] as number);
    normA += (a[i] as number) ** 2;
    normB += (b[i] as number) ** 2;
  }
  return dot / Math.sqrt(normA * normB);
}

let sequence = 0;

export function makeRecord(
  fields: Partial<MemoryRecord> & { id: string } & Scope,
  next: () => number = seededRandom(fields.id.length * 7919 + sequence++),
): MemoryRecord {
  const text = fields.text ?? `memory ${fields.id}`;
  const createdAt = fields.createdAt ?? new Date(Date.UTC(2025, 0, 1, 0, 0, sequence++)).toISOString();
  const record: MemoryRecord = {
    text,
    hash: textHash(text),
    vector: randomVector(next),
    metadata: {},
    createdAt,
    updatedAt: createdAt,
    ...fields,
  };
  // Scope keys given as undefined are left out, like Engram writes them.
  const cleaned = { ...record } as Record<string, unknown>;
  for (const key of ["userId", "agentId", "runId"]) if (cleaned[key] === undefined) delete cleaned[key];
  return cleaned as unknown as MemoryRecord;
}

/** The numbers of a vector, failing the test when it is missing. */
export function values(vector: Float32Array | undefined): number[] {
  expect(vector).toBeInstanceOf(Float32Array);
  return [...(vector ?? [])];
}

export function ids(records: readonly { id: string }[]): string[] {
  return records.map((record) => record.id).sort();
}

export function hitIds(hits: readonly { record: { id: string } }[]): string[] {
  return ids(hits.map((hit) => hit.record));
}

export function inScope(record: MemoryRecord, scope: Scope): boolean {
  return (["userId", "agentId", "runId"] as const).every((key) => scope[key] === undefined || record[key] === scope[key]);
}

export async function listAll(store: VectorStore, filter: StoreFilter, limit = 1000): Promise<MemoryRecord[]> {
  const all: MemoryRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({ filter, limit, cursor });
    all.push(...page.records);
    cursor = page.cursor;
  } while (cursor);
  return all;
}

/** Every record of a grid of users × agents × runs (each optional, never all absent). */
export function scopeGrid(): MemoryRecord[] {
  const records: MemoryRecord[] = [];
  const next = seededRandom(42);
  for (const userId of ["u1", "u2", undefined]) {
    for (const agentId of ["a1", "a2", undefined]) {
      for (const runId of ["r1", "r2", undefined]) {
        if (!userId && !agentId && !runId) continue;
        const id = `grid-${userId ?? "_"}-${agentId ?? "_"}-${runId ?? "_"}`;
        records.push(makeRecord({ id, text: `shared word ${id}`, userId, agentId, runId }, next));
      }
    }
  }
  return records;
}

/** Every filter scope over the grid's ids plus ids no record has: 4 × 4 × 4 − 1 combinations. */
export function gridScopes(): Scope[] {
  const scopes: Scope[] = [];
  for (const userId of ["u1", "u2", "u3", undefined]) {
    for (const agentId of ["a1", "a2", "a3", undefined]) {
      for (const runId of ["r1", "r2", "r3", undefined]) {
        if (!userId && !agentId && !runId) continue;
        const scope: Scope = {};
        if (userId) scope.userId = userId;
        if (agentId) scope.agentId = agentId;
        if (runId) scope.runId = runId;
        scopes.push(scope);
      }
    }
  }
  return scopes;
}
