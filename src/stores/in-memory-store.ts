import { ConfigError } from "../errors.js";
import { decodeCursor, encodeCursor } from "../internal/json.js";
import { bm25Scores } from "../retrieval/bm25.js";
import { keywordTerms } from "../retrieval/keywords.js";
import { assertNoConflict, checkedUpserts, cosineSimilarity, idsToCheck, matchesFilter } from "./filter.js";
import type {
  KeywordSearchable,
  MemoryRecord,
  ScopeCount,
  ScopeEnumerable,
  ScoredRecord,
  StoreFilter,
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
export function inMemoryStore(): VectorStore & KeywordSearchable & ScopeEnumerable {
  const records = new Map<string, MemoryRecord>();
  const erased = new Set<string>();
  let dimension: number | undefined;
  let modelId: string | undefined;
  const inFilter = (filter: StoreFilter) => [...records.values()].filter((record) => matchesFilter(record, filter));

  return {
    async init(options) {
      if (dimension !== undefined && records.size > 0 && options.dimension !== dimension) {
        throw new ConfigError({ message: `This store holds ${dimension}-dimensional vectors; the embedder gives ${options.dimension}.` });
      }
      if (modelId !== undefined && records.size > 0 && options.modelId !== undefined && options.modelId !== modelId) {
        throw new ConfigError({
          message: `This store holds vectors of the embedding model "${modelId}"; the embedder is "${options.modelId}".`,
        });
      }
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
      const candidates = inFilter(filter);
      const scores = bm25Scores(
        keywordTerms(text),
        candidates.map((record) => record.text),
      );
      return candidates
        .map((record, i) => ({ record: structuredClone(record), score: scores[i] as number }))
        .filter((hit) => hit.score > 0)
        .sort((a, b) => b.score - a.score || (a.record.id < b.record.id ? -1 : 1))
        .slice(0, limit) satisfies ScoredRecord[];
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
      const after = cursor === undefined ? undefined : decodeCursor(cursor, 2);
      if (cursor !== undefined && !after) throw new Error("Invalid list cursor");
      const sorted = inFilter(filter)
        .sort(byAge)
        .filter((record) => !after || byAge(record, { createdAt: after[0], id: after[1] } as MemoryRecord) > 0);
      const page = sorted.slice(0, limit).map(withoutVector);
      const last = page.at(-1);
      return { records: page, cursor: sorted.length > limit && last ? encodeCursor([last.createdAt, last.id]) : undefined };
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
      const counts = new Map<string, { scope: Omit<ScopeCount, "count">; count: number }>();
      for (const { userId, agentId, runId } of records.values()) {
        const key = JSON.stringify([userId ?? null, agentId ?? null, runId ?? null]);
        const entry = counts.get(key);
        if (entry) entry.count++;
        else
          counts.set(key, {
            scope: {
              ...(userId !== undefined && { userId }),
              ...(agentId !== undefined && { agentId }),
              ...(runId !== undefined && { runId }),
            },
            count: 1,
          });
      }
      return [...counts.values()]
        .map(({ scope, count }) => ({ ...scope, count }))
        .sort((a, b) => compareIds(a.userId, b.userId) || compareIds(a.agentId, b.agentId) || compareIds(a.runId, b.runId));
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

/** Absent ids first (as SQLite orders NULLs), then by text. */
function compareIds(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  return a < b ? -1 : 1;
}

function withoutVector({ vector: _vector, ...record }: MemoryRecord): MemoryRecord {
  return structuredClone(record);
}
