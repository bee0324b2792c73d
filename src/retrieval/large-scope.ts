import type { WrappedEmbedder } from "../embedders/wrap-embedder.js";
import type { ValidScope } from "../scope.js";
import {
  isKeywordSearchable,
  isScopeVersioned,
  isTimeOrdered,
  type MemoryRecord,
  type ScoredRecord,
  type StoreFilter,
  type VectorStore,
} from "../stores/vector-store.js";
import { analyseQuery, POOL_SIZE, type RankQuery } from "./features.js";
import { stem } from "./keywords.js";
import type { Nlp } from "./nlp.js";
import { type RankedHit, type RankOptions, rankIndex } from "./rank.js";
import { buildScopeIndex, type IndexedMemory, indexMemory, type ScopeIndex } from "./scope-index.js";
import { type ScopeWords, scopeWords } from "./scope-words.js";

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
  const built = buildScopeIndex(memories);
  const none = new Int32Array(memories.length).fill(-1);
  return {
    ...built,
    previous: none,
    next: none,
    windowTf: memories.map((memory) => memory.tf),
    windowLength: Float64Array.from(memories, (memory) => memory.length),
    windowFrequency: built.documentFrequency,
    averageWindowLength: built.averageLength,
  };
}

/**
 * Memory.search in a scope past LARGE_SCOPE. With a store that versions its scopes and reads them in
 * time order (`sqliteStore`), the scope's word statistics are kept in process (`scopeWords`) and the
 * ranking is that of the whole scope on the memories that can reach the top: the store's vector top
 * hits, the scope's BM25 top hits (computed in process with the scope's statistics), and the two
 * memories either side of each in its session, read from the store inside the scope's filter.
 * Other stores: the candidate index of the vector and keyword top hits (`candidateIndex`).
 */
export async function rankLargeScope(
  { store, embedder }: { store: VectorStore; embedder: WrappedEmbedder },
  { text, scope, signal, nlp, ...options }: RankOptions & { text: string; scope: ValidScope; signal?: AbortSignal; nlp: Promise<Nlp> },
): Promise<RankedHit[]> {
  if (!isScopeVersioned(store) || !isTimeOrdered(store))
    return rankCandidates({ store, embedder }, { text, scope, signal, nlp, ...options });
  const [[vector], words, loaded] = (await Promise.all([embedder.embed([text], { signal }), scopeWords(store, scope), nlp])) as [
    [Float32Array],
    ScopeWords | undefined,
    Nlp,
  ];
  if (!words) return rankCandidates({ store, embedder }, { text, scope, signal, nlp, ...options });
  signal?.throwIfAborted();
  // A metadata filter goes to the store: the vector candidates are then the filter's, and so are the keyword ones.
  const filter: StoreFilter = { scope, ...(options.metadata && { metadata: options.metadata }) };
  const query = analyseQuery(text, vector, loaded, words.latestDay);
  const stems = [...new Set(query.terms.map(stem))];
  const byKeyword = options.metadata
    ? isKeywordSearchable(store)
      ? store.keywordSearch({ text, filter, limit: POOL_SIZE })
      : Promise.resolve([])
    : Promise.resolve(words.bestByBm25(stems, POOL_SIZE).map((position) => words.ids[position] as string));
  const [byVector, keywordHits] = await Promise.all([store.search({ vector, filter, limit: POOL_SIZE }), byKeyword]);
  const records = new Map<string, MemoryRecord>();
  const wanted = new Set<string>();
  for (const hit of keywordHits) {
    if (typeof hit === "string") wanted.add(hit);
    else if (hit.record.vector) records.set(hit.record.id, hit.record);
  }
  for (const hit of byVector) wanted.add(hit.record.id);
  // The memories said just before and after each candidate, two each side, in its session.
  for (const id of [...wanted, ...records.keys()]) {
    const at = words.position.get(id);
    if (at === undefined) continue;
    for (const step of [-2, -1, 1, 2]) {
      const j = at + step;
      if (j >= 0 && j < words.count && words.session[j] === words.session[at]) wanted.add(words.ids[j] as string);
    }
  }
  const missing = [...wanted].filter((id) => !records.has(id));
  for (const record of await store.get(missing, { scope })) records.set(record.id, record);
  // Read through the live store: an expired memory is never among them.
  const memories = annotate(store, [...records.values()], loaded);
  memories.sort((a, b) => a.record.createdAt.localeCompare(b.record.createdAt) || (a.record.id < b.record.id ? -1 : 1));
  return rankIndex(scopeWideIndex(memories, words, query), scope, query, options);
}

/**
 * The index of some of a large scope's memories (oldest first) with the scope's own statistics:
 * word frequencies of the whole scope, windows and sessions as the scope has them; a memory links to
 * the one just before or after it when both are here.
 */
export function scopeWideIndex(memories: readonly IndexedMemory[], words: ScopeWords, query: RankQuery): ScopeIndex {
  const n = memories.length;
  const positions = memories.map((memory) => words.position.get(memory.record.id));
  const previous = new Int32Array(n).fill(-1);
  const next = new Int32Array(n).fill(-1);
  const session = new Int32Array(n);
  let unknown = -1;
  for (let i = 0; i < n; i++) {
    const at = positions[i];
    // A memory written since the statistics were read is ranked as one without neighbours.
    session[i] = at === undefined ? unknown-- : (words.session[at] as number);
    const before = positions[i - 1];
    if (i > 0 && at !== undefined && before === at - 1 && words.session[before] === words.session[at]) {
      previous[i] = i - 1;
      next[i - 1] = i;
    }
  }
  const stems = [...new Set([...query.terms.map(stem), ...query.words, ...query.nouns, ...query.properNouns])];
  const documentFrequency = new Map<string, number>();
  const windowFrequency = new Map<string, number>();
  for (const term of stems) {
    const frequency = words.documentFrequency(term);
    if (frequency > 0) documentFrequency.set(term, frequency);
    const windows = words.windowFrequency(term);
    if (windows > 0) windowFrequency.set(term, windows);
  }
  const windowTf: ReadonlyMap<string, number>[] = [];
  const windowLength = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const at = positions[i];
    const memory = memories[i] as IndexedMemory;
    const window = at === undefined ? { tf: memory.tf, length: memory.length } : words.window(at, stems);
    windowTf.push(window.tf);
    windowLength[i] = window.length;
  }
  return {
    memories,
    previous,
    next,
    session,
    documentFrequency,
    windowFrequency,
    windowTf,
    windowLength,
    averageLength: words.averageLength,
    averageWindowLength: words.averageWindowLength,
    documentCount: Math.max(words.count, n),
    speakers: words.speakers,
    latestDay: words.latestDay,
  };
}

/** Records as ranking reads them, annotated once per version and kept per store across searches. */
function annotate(store: VectorStore, records: readonly MemoryRecord[], nlp: Nlp): IndexedMemory[] {
  const cache = annotated.get(store) ?? new Map<string, IndexedMemory>();
  annotated.set(store, cache);
  const memories: IndexedMemory[] = [];
  for (const record of records) {
    if (!record.vector) continue;
    const key = versionKey(record);
    let memory = cache.get(key);
    if (memory) cache.delete(key);
    else memory = indexMemory(record, nlp);
    cache.set(key, memory);
    memories.push(memory);
  }
  while (cache.size > ANNOTATED) cache.delete(cache.keys().next().value as string);
  return memories;
}

/**
 * A large scope ranked from the store's candidates alone: the keyword candidates are read while the
 * query is embedded, the vector candidates after; both come from the store inside the scope's
 * filter, so nothing of another scope can be ranked.
 */
async function rankCandidates(
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
  const memories = annotate(store, [...records.values()], loaded);
  memories.sort((a, b) => a.record.createdAt.localeCompare(b.record.createdAt) || (a.record.id < b.record.id ? -1 : 1));
  const index = candidateIndex(memories);
  return rankIndex(index, scope, analyseQuery(text, vector, loaded, index.latestDay), options);
}
