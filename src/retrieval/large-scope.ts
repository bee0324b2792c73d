import type { WrappedEmbedder } from "../embedders/wrap-embedder.js";
import { RecentMap } from "../internal/recent-map.js";
import type { ValidScope } from "../scope.js";
import { cosineSimilarity } from "../store-kit/filter.js";
import {
  isKeywordSearchable,
  isScopeCountable,
  isScopeVersioned,
  isTimeOrdered,
  type MemoryRecord,
  type ScoredRecord,
  type StoreFilter,
  type VectorStore,
} from "../stores/vector-store.js";
import { analyseQuery, analyseQueryText, POOL_SIZE, type RankQuery } from "./features.js";
import { stem } from "./keywords.js";
import type { Nlp } from "./nlp.js";
import type { QuantizedRows, QuantizedScan } from "./quantized-rows.js";
import { embedQuery, type RankedHit, type RankOptions, rankIndex, type SpeakerTerms, speakerTermsOf } from "./rank.js";
import { buildScopeIndex, type IndexedMemory, indexMemory, type ScopeIndex, stampKey } from "./scope-index.js";
import { lastScopeWords, type ScopeTerms, type ScopeWords, scopeWords } from "./scope-words.js";

/**
 * Past this many memories a scope is ranked from the store's candidates: its vector top hits and
 * its keyword top hits, `POOL_SIZE` of each. Below it, search keeps a copy of the whole scope
 * (ScopeIndexCache), which reads every memory's stamp on each search.
 */
export const LARGE_SCOPE = 20_000;

/** Scope counts kept per store while the scope's version stays the same (at most `COUNTED` scopes). */
const COUNTED = 256;
const counted = new WeakMap<VectorStore, Map<string, { version: string; count: number }>>();

/**
 * Whether search ranks a scope from the store's candidates: the store counts it past LARGE_SCOPE.
 * With a store that versions its scopes, the count is read again only when the version changed.
 */
export async function isLargeScope(store: VectorStore, scope: ValidScope): Promise<boolean> {
  if (!isScopeCountable(store)) return false;
  const version = isScopeVersioned(store) ? await store.scopeVersion({ scope }) : undefined;
  if (version === undefined) return (await store.countWithin({ scope })) > LARGE_SCOPE;
  const key = JSON.stringify([scope.userId ?? null, scope.agentId ?? null, scope.runId ?? null]);
  const scopes = counted.get(store) ?? new Map<string, { version: string; count: number }>();
  counted.set(store, scopes);
  let known = scopes.get(key);
  if (known?.version !== version) known = { version, count: await store.countWithin({ scope }) };
  scopes.delete(key);
  scopes.set(key, known);
  while (scopes.size > COUNTED) scopes.delete(scopes.keys().next().value as string);
  return known.count > LARGE_SCOPE;
}

/** At most this many more memories are read for the first stage's best (see `rankLargeScope`). */
const WIDEN = 4 * POOL_SIZE;

/** Annotated memories kept per store across searches (by id and version), so a repeated query is not annotated again. */
const ANNOTATED = 5_000;
const annotated = new WeakMap<VectorStore, RecentMap<string, IndexedMemory>>();

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
 * Memory.search in a scope past LARGE_SCOPE. With a store that versions its scopes and reads them in
 * time order (`sqliteStore`), the scope's word statistics are kept in process (`scopeWords`) and the
 * ranking is that of the whole scope on the memories that can reach the top: the store's vector top
 * hits, the scope's BM25 top hits (computed in process with the scope's statistics), the memories
 * whose BM25 could still lift them into the first stage's best, and the two memories either side of
 * each of those kept in its session; all read from the store inside the scope's filter. When the
 * statistics hold every memory's quantised vector and no metadata filter is given, the vector top
 * hits come from a scan of those in process and only the memories that can be kept are read
 * (`rankFromRows`). Other stores: the candidate index of the vector and keyword top hits
 * (`candidateIndex`).
 */
export async function rankLargeScope(
  { store, embedder }: { store: VectorStore; embedder: WrappedEmbedder },
  { text, scope, signal, nlp, ...options }: RankOptions & { text: string; scope: ValidScope; signal?: AbortSignal; nlp: Promise<Nlp> },
): Promise<RankedHit[]> {
  if (!isScopeVersioned(store) || !isTimeOrdered(store))
    return rankCandidates({ store, embedder }, { text, scope, signal, nlp, ...options });
  // The query without the scope's speakers' names is embedded with the query when the scope's
  // speakers are known from an earlier search (as for a scope read whole), else once they are read.
  const last = lastScopeWords(store, scope);
  const embedding = embedQuery(embedder, text, last && wordsSpeakerTerms(last), signal);
  const [words, loaded] = await Promise.all([scopeWords(store, scope), nlp]);
  if (!words) return rankCandidates({ store, embedder }, { text, scope, signal, nlp, ...options }, embedding);
  const topic = embedding.withoutNames(wordsSpeakerTerms(words));
  const analysed = analyseQueryText(text, loaded, words.latestDay);
  const vector = await embedding.vector;
  const topicVector = await topic;
  signal?.throwIfAborted();
  // A metadata filter goes to the store: the vector candidates are then the filter's, and so are the keyword ones.
  const filter: StoreFilter = { scope, ...(options.metadata && { metadata: options.metadata }) };
  const query: RankQuery = { ...analysed, vector, ...(topicVector ? { topicVector } : {}) };
  const keywordWeight = options.keywordWeight ?? 0.3;
  const stems = [...new Set(query.terms.map(stem))];
  // BM25, windows and the first stage count the keyword terms; nouns are looked up among all the query's stems.
  const keyword = words.terms(stems);
  const relevant = words.terms(queryStems(query));
  if (!options.metadata && words.rows?.dimension === vector.length) {
    // The keyword passes (the BM25 top hits, the best window) run while the scan's helper thread scores rows.
    const scan = words.rows.scan(vector, () => {
      keyword.best(POOL_SIZE);
      keyword.bestWindow();
    });
    return rankFromRows({ store, scope, words, scan, keyword, relevant, nlp: loaded }, query, options);
  }
  const byKeyword = options.metadata
    ? isKeywordSearchable(store)
      ? store.keywordSearch({ text, filter, limit: POOL_SIZE })
      : Promise.resolve([])
    : Promise.resolve(keyword.best(POOL_SIZE).map((position) => words.ids[position] as string));
  const [byVector, keywordHits] = await Promise.all([store.search({ vector, filter, limit: POOL_SIZE }), byKeyword]);
  const records = new Map<string, MemoryRecord>();
  const wanted = new Set<string>();
  for (const hit of keywordHits) {
    if (typeof hit === "string") wanted.add(hit);
    else if (hit.record.vector) records.set(hit.record.id, hit.record);
    else wanted.add(hit.record.id);
  }
  for (const hit of byVector) wanted.add(hit.record.id);
  await readInto(records, wanted, store, scope);
  // The first stage (base = (1 − w) · max(0, cos) + w · bm / best bm) over the candidates. A memory
  // outside the vector hits has cos ≤ the last hit's, so it can reach the first stage's best
  // POOL_SIZE only if its BM25 alone makes up the rest: those memories are read too (at most WIDEN).
  const [first] = keyword.best(1);
  const bestBm = first === undefined ? 0 : keyword.bm25(first);
  const bases = new Map<string, number>();
  const baseOf = (record: MemoryRecord) => {
    let base = bases.get(record.id);
    if (base === undefined) {
      const at = words.position.get(record.id);
      const bm = at === undefined ? 0 : keyword.bm25(at);
      base =
        (1 - keywordWeight) * Math.max(0, cosineSimilarity(vector, record.vector as Float32Array)) +
        keywordWeight * (bestBm > 0 ? bm / bestBm : 0);
      bases.set(record.id, base);
    }
    return base;
  };
  const stage = () => {
    const candidates = [...records.values()].filter((record) => record.vector);
    const base = candidates.map(baseOf);
    const order = [...base.keys()].sort((a, b) => (base[b] as number) - (base[a] as number) || a - b).slice(0, POOL_SIZE);
    return { kept: order.map((k) => candidates[k] as MemoryRecord), least: base[order.at(-1) as number] ?? 0 };
  };
  let { kept, least } = stage();
  const lastCos = byVector.at(-1)?.score ?? 0;
  if (!options.metadata && byVector.length === POOL_SIZE && kept.length === POOL_SIZE && keywordWeight > 0 && bestBm > 0) {
    const needed = ((least - (1 - keywordWeight) * Math.max(0, lastCos)) / keywordWeight) * bestBm;
    await readInto(
      records,
      keyword.best(WIDEN, needed).map((position) => words.ids[position] as string),
      store,
      scope,
    );
    ({ kept, least } = stage());
  }
  // The memories said just before and after those kept (two each side, in its session) are read
  // too, for the neighbour, window and session signals, and the memory whose window is the best.
  const best = keyword.bestWindow();
  const around = new Set<string>(best === undefined ? [] : [words.ids[best] as string]);
  for (const record of kept) {
    const at = words.position.get(record.id);
    if (at === undefined) continue;
    for (const step of [-2, -1, 1, 2]) {
      const j = at + step;
      if (j >= 0 && j < words.count && words.session[j] === words.session[at]) around.add(words.ids[j] as string);
    }
  }
  await readInto(records, around, store, scope);
  // Read through the live store: an expired memory is never among them. Words of the version the
  // statistics hold are counted there already; other versions are read here.
  const memories = [...records.values()].flatMap((record) => indexedRecord(store, record, words, relevant, loaded));
  memories.sort(oldestFirst);
  return rankIndex(scopeWideIndex(memories, words, query, relevant), scope, query, options);
}

/**
 * More vector candidates than the pool: the scan ranks by the quantised cosine, and a memory just
 * below the pool's last by it can be above by its full vector.
 */
const VECTOR_MARGIN = 50;

/**
 * `rankLargeScope` when the scope's quantised vectors are in process (`ScopeWords.rows`, no
 * metadata filter). The first stage is scored from the scan's approximate cosines and the scope's
 * BM25 on the vector and keyword top hits (and, as above, the memories whose BM25 could make up for
 * their cosine); only those that can reach its best `POOL_SIZE` within the scan's error bound are
 * read from the store and scored on their full vectors. The other memories ranking looks at (the top
 * hits left out, and the two memories either side of each kept one in its session) take part from
 * what is in process: their words exactly, their cosine from the quantised vector. A result is
 * always a memory read from the store: should one of the others come out among the results, it is
 * read and the ranking done again.
 */
async function rankFromRows(
  {
    store,
    scope,
    words,
    scan,
    keyword,
    relevant,
    nlp,
  }: {
    store: VectorStore;
    scope: ValidScope;
    words: ScopeWords;
    scan: QuantizedScan;
    keyword: ScopeTerms;
    relevant: ScopeTerms;
    nlp: Nlp;
  },
  query: RankQuery,
  options: RankOptions,
): Promise<RankedHit[]> {
  const keywordWeight = options.keywordWeight ?? 0.3;
  const [first] = keyword.best(1);
  const bestBm = first === undefined ? 0 : keyword.bm25(first);
  const bmShare = (position: number) => (bestBm > 0 ? keyword.bm25(position) / bestBm : 0);
  const bound = (position: number, side: 1 | -1) =>
    (1 - keywordWeight) * Math.max(0, scan.cosine(position) + side * scan.error(position)) + keywordWeight * bmShare(position);
  const byVector = scan.best(POOL_SIZE + VECTOR_MARGIN);
  const candidates = new Set([...byVector, ...keyword.best(POOL_SIZE)]);
  const leastOf = (positions: Iterable<number>) => {
    const lower = Array.from(positions, (position) => bound(position, -1)).sort((a, b) => b - a);
    return lower.length < POOL_SIZE ? Number.NEGATIVE_INFINITY : (lower[POOL_SIZE - 1] as number);
  };
  // A memory outside the vector candidates has an approximate cosine ≤ the last one's: it reaches
  // the first stage's best only if its BM25 makes up the rest.
  const last = byVector.at(-1);
  let least = leastOf(candidates);
  if (last !== undefined && byVector.length === POOL_SIZE + VECTOR_MARGIN && keywordWeight > 0 && bestBm > 0) {
    const ceiling = Math.max(0, scan.cosine(last) + scan.error(last));
    const needed = ((least - (1 - keywordWeight) * ceiling) / keywordWeight) * bestBm;
    for (const position of keyword.best(WIDEN, needed)) if (bound(position, 1) >= least) candidates.add(position);
    least = leastOf(candidates);
  }
  // Read: the candidates whose first-stage score can reach the best POOL_SIZE.
  const records = new Map<string, MemoryRecord>();
  const reachable = [...candidates].filter((position) => bound(position, 1) >= least);
  const read = (positions: readonly number[]) => readKnown(records, positions, words, store, scope);
  await read(reachable);
  const base = (position: number, record: MemoryRecord | undefined) =>
    record?.vector
      ? (1 - keywordWeight) * Math.max(0, cosineSimilarity(query.vector, record.vector)) + keywordWeight * bmShare(position)
      : Number.NEGATIVE_INFINITY;
  const kept = reachable
    .map((position) => ({ position, base: base(position, records.get(words.ids[position] as string)) }))
    .sort((a, b) => b.base - a.base || a.position - b.position)
    .slice(0, POOL_SIZE);
  // The memories said just before and after those kept (two each side, in its session), for the
  // neighbour, window and session signals, and the memory whose window is the best.
  const looked = new Set(candidates);
  const best = keyword.bestWindow();
  if (best !== undefined) looked.add(best);
  for (const { position } of kept) {
    for (const step of [-2, -1, 1, 2]) {
      const j = position + step;
      if (j >= 0 && j < words.count && words.session[j] === words.session[position]) looked.add(j);
    }
  }
  const rows = words.rows as QuantizedRows;
  const rankWith = () => {
    const light = new Set<string>();
    const memories: IndexedMemory[] = [];
    const positions: number[] = [];
    // Positions are in the scope's time order: the memories come out oldest first unless one was
    // changed since the statistics were read.
    for (const position of Int32Array.from(looked).sort()) {
      const id = words.ids[position] as string;
      const record = records.get(id);
      if (record) {
        for (const memory of indexedRecord(store, record, words, relevant, nlp)) {
          memories.push(memory);
          positions.push(position);
        }
      } else {
        light.add(id);
        const cosineTo = (vector: Float32Array) => (vector === query.vector ? scan.cosine(position) : rows.cosine(position, vector));
        memories.push(inProcessMemory(words, position, relevant, cosineTo));
        positions.push(position);
      }
    }
    const inOrder = memories.every((memory, k) => k === 0 || oldestFirst(memories[k - 1] as IndexedMemory, memory) < 0);
    if (!inOrder) memories.sort(oldestFirst);
    const index = scopeWideIndex(memories, words, query, relevant, inOrder ? positions : undefined);
    const hits = rankIndex(index, scope, query, options);
    return { hits, light };
  };
  let ranked = rankWith();
  for (let round = 0; round < 3; round++) {
    const unread = ranked.hits.filter((hit) => ranked.light.has(hit.record.id)).map((hit) => hit.record.id);
    if (unread.length === 0) break;
    await read(unread.map((id) => words.position.get(id) as number));
    ranked = rankWith();
  }
  // One still not read was deleted since the statistics were read: not a result.
  return ranked.hits.filter((hit) => !ranked.light.has(hit.record.id));
}

/** A record read from the store, as ranking reads it: with the words the statistics counted when it is the version they hold. */
function indexedRecord(store: VectorStore, record: MemoryRecord, words: ScopeWords, relevant: ScopeTerms, nlp: Nlp): IndexedMemory[] {
  if (!record.vector) return [];
  const at = words.position.get(record.id);
  if (at !== undefined && words.holds(at, record)) return [indexMemory(record, nlp, relevant.counts(at, true))];
  return annotate(store, [record], nlp);
}

const NO_VECTOR = new Float32Array(0);
const NO_METADATA: Record<string, never> = Object.freeze({});

/** A large scope's speakers and words, as `embedQuery` reads them. */
const wordsSpeakerTerms = (words: ScopeWords): SpeakerTerms => ({
  speakers: words.speakers,
  isTerm: (term) => words.documentFrequency(term) > 0,
});

/**
 * A memory not read from the store, from what the scope's statistics hold of it: its words, speaker,
 * expiry and stamp; its cosines from its quantised vector (`cosineTo`: the scan's for the query).
 * Its text is not known (so it is not a question, names no day and greets no one).
 */
function inProcessMemory(
  words: ScopeWords,
  position: number,
  relevant: ScopeTerms,
  cosineTo: (vector: Float32Array) => number,
): IndexedMemory {
  const { stamp, speaker, expires } = words.at(position);
  const { tf, length } = relevant.counts(position, true);
  const day = words.days[position] as number;
  return {
    record: { id: stamp.id, hash: stamp.hash, createdAt: stamp.createdAt, updatedAt: stamp.updatedAt, text: "", metadata: NO_METADATA },
    vector: NO_VECTOR,
    cosineTo,
    ...(speaker === undefined ? {} : { speaker }),
    tf,
    squaredNorm: 1,
    expires: expires ?? Number.POSITIVE_INFINITY,
    length,
    day,
    days: [day],
    isQuestion: false,
    vocatives: [],
  };
}

/**
 * Records read by `rankFromRows` (by id and version), kept per store across searches (the 4,096 used
 * last, up to a quarter more between trims): a later search that needs one again does not read it.
 */
const KNOWN_RECORDS = 4_096;
const knownRecords = new WeakMap<VectorStore, RecentMap<string, MemoryRecord>>();

/**
 * `readInto` for memories of the scope's statistics, by position: a memory whose version the
 * statistics hold and that an earlier search read is taken from `knownRecords` (unless it has
 * expired since), the others read from the store inside the scope and kept there.
 */
async function readKnown(
  records: Map<string, MemoryRecord>,
  positions: readonly number[],
  words: ScopeWords,
  store: VectorStore,
  scope: ValidScope,
): Promise<void> {
  let known = knownRecords.get(store);
  if (!known) {
    known = new RecentMap<string, MemoryRecord>(KNOWN_RECORDS);
    knownRecords.set(store, known);
  }
  const now = Date.now();
  const missing: string[] = [];
  for (const position of positions) {
    const id = words.ids[position] as string;
    if (records.has(id)) continue;
    const { stamp, expires } = words.at(position);
    const record = known.get(stampKey(stamp));
    if (record && (expires === undefined || expires > now)) records.set(id, record);
    else missing.push(id);
  }
  await readInto(records, missing, store, scope);
  for (const id of missing) {
    const record = records.get(id);
    if (record) known.set(stampKey(record), record);
  }
}

/** Reads the records of `ids` not in `records` yet, inside the scope (neighbours need not match a metadata filter). */
async function readInto(records: Map<string, MemoryRecord>, ids: Iterable<string>, store: VectorStore, scope: ValidScope): Promise<void> {
  const missing = [...ids].filter((id) => !records.has(id));
  if (missing.length > 0) for (const record of await store.get(missing, { scope })) records.set(record.id, record);
}

/**
 * The index of some of a large scope's memories (oldest first) with the scope's own statistics:
 * word frequencies of the whole scope, windows and sessions as the scope has them; a memory links to
 * the one just before or after it when both are here.
 */
export function scopeWideIndex(
  memories: readonly IndexedMemory[],
  words: ScopeWords,
  query: RankQuery,
  terms: ScopeTerms = words.terms(queryStems(query)),
  /** Each memory's position in `words`, when the caller knows them. */
  known?: readonly (number | undefined)[],
): ScopeIndex {
  const n = memories.length;
  const positions = known ?? memories.map((memory) => words.position.get(memory.record.id));
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
  const stems = queryStems(query);
  const documentFrequency = new Map<string, number>();
  for (const term of stems) {
    const frequency = words.documentFrequency(term);
    if (frequency > 0) documentFrequency.set(term, frequency);
  }
  const windowTf: ReadonlyMap<string, number>[] = [];
  const windowLength = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const at = positions[i];
    const memory = memories[i] as IndexedMemory;
    const window = at === undefined ? { tf: memory.tf, length: memory.length } : terms.counts(at);
    windowTf.push(window.tf);
    windowLength[i] = window.length;
  }
  return {
    memories,
    previous,
    next,
    session,
    documentFrequency,
    // Keyword scoring reads a scope-wide index's memories' own counts (`scopeWide`), not postings.
    postings: new Map(),
    windowLength,
    averageLength: words.averageLength,
    averageWindowLength: words.averageWindowLength,
    scopeWide: { count: Math.max(words.count, n), windowFrequency: words.windowFrequency, windowCounts: windowTf },
    speakers: words.speakers,
    latestDay: words.latestDay,
  };
}

/** By `createdAt`, then `id`, compared as the stores order them (code units, not the locale). */
const oldestFirst = (a: IndexedMemory, b: IndexedMemory) =>
  a.record.createdAt < b.record.createdAt ? -1 : a.record.createdAt > b.record.createdAt ? 1 : a.record.id < b.record.id ? -1 : 1;

/** The stems ranking looks up for a query: its keyword terms, words and nouns. */
const queryStems = (query: RankQuery) => [...new Set([...query.terms.map(stem), ...query.words, ...query.nouns, ...query.properNouns])];

/** Records as ranking reads them, annotated once per version and kept per store across searches. */
function annotate(store: VectorStore, records: readonly MemoryRecord[], nlp: Nlp): IndexedMemory[] {
  let cache = annotated.get(store);
  if (!cache) {
    cache = new RecentMap<string, IndexedMemory>(ANNOTATED);
    annotated.set(store, cache);
  }
  const memories: IndexedMemory[] = [];
  for (const record of records) {
    if (!record.vector) continue;
    const key = stampKey(record);
    let memory = cache.get(key);
    if (!memory) {
      memory = indexMemory(record, nlp);
      cache.set(key, memory);
    }
    memories.push(memory);
  }
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
  /** The query's embedding when the caller has started it already. */
  embedding = embedQuery(embedder, text, undefined, signal),
): Promise<RankedHit[]> {
  // A metadata filter goes to the store too: its candidates are then the filter's.
  const filter: StoreFilter = { scope, ...(options.metadata && { metadata: options.metadata }) };
  const keywordHits: Promise<ScoredRecord[]> = isKeywordSearchable(store)
    ? store.keywordSearch({ text, filter, limit: POOL_SIZE })
    : Promise.resolve([]);
  const [vector, byKeyword, loaded] = await Promise.all([embedding.vector, keywordHits, nlp]);
  signal?.throwIfAborted();
  const byVector = await store.search({ vector, filter, limit: POOL_SIZE });
  const records = new Map<string, MemoryRecord>();
  for (const { record } of byKeyword) if (record.vector) records.set(record.id, record);
  const missing = byVector.map((hit) => hit.record.id).filter((id) => !records.has(id));
  if (missing.length > 0) for (const record of await store.get(missing, filter)) records.set(record.id, record);
  const memories = annotate(store, [...records.values()], loaded);
  memories.sort(oldestFirst);
  const index = candidateIndex(memories);
  const topicVector = await embedding.withoutNames(speakerTermsOf(index));
  signal?.throwIfAborted();
  return rankIndex(index, scope, analyseQuery(text, vector, loaded, index.latestDay, topicVector), options);
}
