import { keywordTerms } from "../retrieval/keywords.js";
import { scopeOf } from "../scope.js";
import { encodeCursor, readCursor } from "../store-kit/cursor.js";
import { assertSameEmbedding } from "../store-kit/embedding.js";
import { cosineSimilarity, matchesFilter } from "../store-kit/filter.js";
import { rankByBm25 } from "../store-kit/ranking.js";
import { countScopes } from "../store-kit/scopes.js";
import { assertNoConflict, checkedUpserts, idsToCheck } from "../store-kit/writes.js";
import type {
  KeywordSearchable,
  MemoryRecord,
  ScopeEnumerable,
  StoreFilter,
  TimeOrdered,
  VectorStore,
  WriteBatch,
} from "./vector-store.js";

/** Stands in for an unknown id in filter checks: inside no scope. */
const nobody: MemoryRecord = { id: "", text: "", hash: "", metadata: {}, createdAt: "", updatedAt: "" };

function byAge(a: MemoryRecord, b: MemoryRecord): number {
  return a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * A `VectorStore` in process memory: exact cosine and BM25 by brute force. For tests and
 * short-lived scripts; nothing survives the process.
 */
export function inMemoryStore(): VectorStore & KeywordSearchable & ScopeEnumerable & TimeOrdered {
  const records = new Map<string, MemoryRecord>();
  const erased = new Set<string>();
  let dimension: number | undefined;
  let modelId: string | undefined;
  const inFilter = (filter: StoreFilter) => [...records.values()].filter((record) => matchesFilter(record, filter));

  return {
    async init(options) {
      // Only what it holds ties an in-memory store to an embedder.
      if (records.size > 0) assertSameEmbedding({ dimension, modelId }, options, { holder: "This inMemoryStore", elsewhere: "a new one" });
      dimension = options.dimension;
      modelId = options.modelId ?? modelId;
    },
    async write(batch: WriteBatch) {
      const upserts = checkedUpserts(batch, dimension);
      const ids = idsToCheck(batch);
      assertNoConflict(
        batch,
        new Map(ids.flatMap((id) => (records.has(id) ? [[id, records.get(id) as MemoryRecord]] : []))),
        new Set(ids.filter((id) => erased.has(id))),
      );
      for (const record of upserts) records.set(record.id, structuredClone(record));
      for (const id of batch.delete ?? []) {
        records.delete(id);
        if (batch.erase) erased.add(id);
      }
    },
    async search({ vector, filter, limit }) {
      return inFilter(filter)
        .map((record) => ({ record, score: cosineSimilarity(vector, record.vector as Float32Array) }))
        .sort((a, b) => b.score - a.score || (a.record.id < b.record.id ? -1 : 1))
        .slice(0, limit)
        .map(({ record, score }) => ({ record: withoutVector(record), score }));
    },
    async keywordSearch({ text, filter, limit }) {
      return rankByBm25(keywordTerms(text), inFilter(filter), { limit }).map(({ candidate, score }) => ({
        record: structuredClone(candidate),
        score,
      }));
    },
    async get(ids, filter) {
      // An unknown id is checked against the filter like a stored one: an id of another scope takes
      // the same path as a missing one.
      return [...new Set(ids)]
        .map((id) => records.get(id))
        .filter((record): record is MemoryRecord => matchesFilter(record ?? nobody, filter) && record !== undefined)
        .map((record) => structuredClone(record));
    },
    async list({ filter, limit, cursor }) {
      const after = readCursor(cursor, 2);
      const sorted = inFilter(filter)
        .sort(byAge)
        .filter((record) => !after || byAge(record, { createdAt: after[0], id: after[1] } as MemoryRecord) > 0);
      const page = sorted.slice(0, limit).map(withoutVector);
      const last = page.at(-1);
      return { records: page, cursor: sorted.length > limit && last ? encodeCursor([last.createdAt, last.id]) : undefined };
    },
    async stamps(filter) {
      return inFilter(filter)
        .sort(byAge)
        .map(({ id, hash, createdAt, updatedAt }) => ({ id, hash, createdAt, updatedAt }));
    },
    async latest({ filter, limit }) {
      return inFilter(filter)
        .sort((a, b) => byAge(b, a))
        .slice(0, limit)
        .map((record) => structuredClone(record));
    },
    async deleteMany(filter) {
      const doomed = inFilter(filter);
      for (const record of doomed) {
        records.delete(record.id);
        erased.add(record.id);
      }
      return doomed.length;
    },
    async scopes() {
      return countScopes([...records.values()].map(scopeOf));
    },
    async reset() {
      records.clear();
      erased.clear();
      dimension = undefined;
      modelId = undefined;
    },
    async close() {},
  };
}

function withoutVector({ vector: _vector, ...record }: MemoryRecord): MemoryRecord {
  return structuredClone(record);
}
