import type { WrappedEmbedder } from "../embedders/wrap-embedder.js";
import type { ValidScope } from "../scope.js";
import { isKeywordSearchable, type MemoryRecord, type ScoredRecord, type StoreFilter, type VectorStore } from "../stores/vector-store.js";
import { analyseQuery, POOL_SIZE } from "./features.js";
import type { Nlp } from "./nlp.js";
import { type RankedHit, type RankOptions, rankIndex, topicVectorOf } from "./rank.js";
import { buildScopeIndex, type IndexedMemory, indexMemory, type ScopeIndex } from "./scope-index.js";

/**
 * Past this many memories a scope is ranked from the store's candidates: its vector top hits and
 * its keyword top hits, `POOL_SIZE` of each. Below it, search keeps a copy of the whole scope
 * (ScopeIndexCache), which reads every memory's stamp on each search.
 */
export const LARGE_SCOPE = 20_000;

/** Annotated memories kept per store across searches (by id and version), so a repeated query is not annotated again. */
const ANNOTATED = 5_000;
const annotated = new WeakMap<VectorStore, Map<string, IndexedMemory>>();

const versionKey = (record: MemoryRecord) => `${record.id}\u0000${record.hash}\u0000${record.updatedAt}`;

/**
 * The index of a large scope's candidates, oldest first. The scope-wide signals are computed on
 * what is there: word statistics over the candidates; sessions link candidates said less than
 * `SESSION_GAP_MS` apart (those are in one session of the scope too); the memories said just before
 * and after are not among them, so the neighbour and window signals are those of a memory without
 * neighbours.
 */
export function candidateIndex(memories: readonly IndexedMemory[]): ScopeIndex {
  return buildScopeIndex(memories, { neighbours: false });
}

/**
 * Memory.search in a scope past LARGE_SCOPE: the keyword candidates are read while the query is
 * embedded, the vector candidates after; both come from the store inside the scope's filter, so
 * nothing of another scope can be ranked.
 */
export async function rankLargeScope(
  { store, embedder }: { store: VectorStore; embedder: WrappedEmbedder },
  { text, scope, signal, nlp, ...options }: RankOptions & { text: string; scope: ValidScope; signal?: AbortSignal; nlp: Promise<Nlp> },
): Promise<RankedHit[]> {
  // A metadata filter goes to the store too: its candidates are then the filter's.
  const filter: StoreFilter = { scope, ...(options.metadata && { metadata: options.metadata }) };
  const keywordHits: Promise<ScoredRecord[]> = isKeywordSearchable(store)
    ? store.keywordSearch({ text, filter, limit: POOL_SIZE })
    : Promise.resolve([]);
  const [[vector], byKeyword, loaded] = (await Promise.all([embedder.embed([text], { signal }), keywordHits, nlp])) as [
    [Float32Array],
    ScoredRecord[],
    Nlp,
  ];
  signal?.throwIfAborted();
  const byVector = await store.search({ vector, filter, limit: POOL_SIZE });
  const records = new Map<string, MemoryRecord>();
  for (const { record } of byKeyword) if (record.vector) records.set(record.id, record);
  const missing = byVector.map((hit) => hit.record.id).filter((id) => !records.has(id));
  if (missing.length > 0) for (const record of await store.get(missing, filter)) records.set(record.id, record);
  const cache = annotated.get(store) ?? new Map<string, IndexedMemory>();
  annotated.set(store, cache);
  const memories: IndexedMemory[] = [];
  for (const record of records.values()) {
    if (!record.vector) continue;
    const key = versionKey(record);
    let memory = cache.get(key);
    if (memory) cache.delete(key);
    else memory = indexMemory(record, loaded);
    cache.set(key, memory);
    memories.push(memory);
  }
  while (cache.size > ANNOTATED) cache.delete(cache.keys().next().value as string);
  memories.sort((a, b) => a.record.createdAt.localeCompare(b.record.createdAt) || (a.record.id < b.record.id ? -1 : 1));
  const index = candidateIndex(memories);
  const topicVector = await topicVectorOf(embedder, text, index, undefined, signal);
  signal?.throwIfAborted();
  return rankIndex(index, scope, analyseQuery(text, vector, loaded, index.latestDay, topicVector), options);
}
