import { cosineSimilarity } from "../store-kit/filter.js";
import { bm25Idf, bm25TermScore } from "./bm25.js";
import { keywordTerms, stem, tokenize } from "./keywords.js";
import type { Nlp } from "./nlp.js";
import type { IndexedMemory, ScopeIndex, ScopeWideWords } from "./scope-index.js";
import { speakersNamedIn } from "./speaker-names.js";

const DAY_MS = 86_400_000;

/** How many memories, best by the first-stage score, the learned ranker scores. */
export const POOL_SIZE = 150;

/** The signals of a (query, memory) pair the ranker weighs, in the order of a feature row. */
export const FEATURES = [
  "cos", // cosine similarity of the embeddings
  "cosRel", // cos − the best cos of the scope
  "bm", // BM25 / the best BM25 of the scope
  "bmW", // BM25 of the memory's window (previous + itself + next in its session) / the best
  "nb", // best first-stage score among the two memories either side in its session / the best
  "sess", // best first-stage score in its session / the best
  "noun", // idf-weighted share of the query's nouns (speakers' names aside) the memory holds
  "spk", // the query names the memory's speaker
  "spkOther", // the query names another speaker of the scope
  "date", // a day the query names against the day the memory was said or names (1 same day, 0 two days off)
  "len", // ln(1 + words)
  "isQ", // the memory is a question
  "bmRaw", // BM25 / 10
  "rrCos", // 1 / (1 + rank by cos)
  "rrBm", // 1 / (1 + rank by BM25), 0 without a keyword match
  "nbCos", // best cos of the previous and next memory
  "nbBm", // best bm of the previous and next memory
  "qTerms", // keyword terms of the query
  "qMaxCos", // the best cos of the scope
  "cosTopic", // cosine similarity of the query without the scope's speakers' names (cos when it names none)
] as const;
export type Feature = (typeof FEATURES)[number];

/** A query as ranking reads it. */
export interface RankQuery {
  /** The query as written: which speakers it names is read from it (`speakersNamedIn`); without it, from `words`. */
  readonly text?: string;
  readonly vector: Float32Array;
  /** Keyword terms (see `keywordTerms`). */
  readonly terms: readonly string[];
  /** Stems of every word. */
  readonly words: ReadonlySet<string>;
  /** Stems of its nouns / proper nouns. */
  readonly nouns: readonly string[];
  readonly properNouns: readonly string[];
  /** Days it names with day and month. */
  readonly days: readonly number[];
  /**
   * The embedding of the query without the scope's speakers' names (`withoutSpeakerNames`), or
   * undefined when it names none: then `vector` stands for it.
   */
  readonly topicVector?: Float32Array;
}

export function analyseQuery(text: string, vector: Float32Array, nlp: Nlp, referenceDay: number, topicVector?: Float32Array): RankQuery {
  return { ...analyseQueryText(text, nlp, referenceDay), vector, ...(topicVector ? { topicVector } : {}) };
}

/** What ranking reads of a query's words (`analyseQuery` without its embeddings): search computes it while the query is embedded. */
export function analyseQueryText(text: string, nlp: Nlp, referenceDay: number): Omit<RankQuery, "vector" | "topicVector"> {
  const { nouns, properNouns } = nlp.entities(text);
  return {
    text,
    terms: keywordTerms(text),
    words: new Set(tokenize(text).map(stem)),
    nouns,
    properNouns,
    days: nlp.days(text, new Date(referenceDay * DAY_MS), { certainOnly: true }),
  };
}

/** The feature rows of the pool: the `POOL_SIZE` memories best by the first-stage score. */
export interface Scored {
  /** Memory indices (into the scope index), best first-stage score first. */
  readonly pool: readonly number[];
  /** One row per pool entry, `FEATURES` order. */
  readonly rows: readonly Float64Array[];
  /** Query-level signals the cut-off reads. */
  readonly query: {
    maxCos: number;
    maxBmRaw: number;
    unknownTermShare: number;
    unknownProperShare: number;
    namesSpeaker: number;
    anyUnknownProper: number;
    /** How many of the scope's speakers it names. */
    speakersNamed: number;
  };
}

/**
 * BM25 (k1 = 1.2, b = 0.75) of every memory of the index, or of every window of three (a memory
 * with the memories said just before and after it in its session) with `windows`, read from the
 * stems' postings: only the memories that match are visited. A stem's document frequency is the
 * number of memories (windows) holding it; a stem no memory holds adds nothing.
 */
export function bm25Of(stems: readonly string[], index: ScopeIndex, { windows = false }: { windows?: boolean } = {}): Float64Array {
  if (index.scopeWide) return scopeWideBm25(stems, index, index.scopeWide, windows);
  const n = index.memories.length;
  const { previous, next } = index;
  const lengths = windows ? index.windowLength : undefined;
  const averageLength = windows ? index.averageWindowLength : index.averageLength;
  const scores = new Float64Array(n);
  const counts = new Float64Array(n);
  const touched: number[] = [];
  const add = (i: number, count: number) => {
    if (counts[i] === 0) touched.push(i);
    counts[i] = (counts[i] as number) + count;
  };
  for (const term of stems) {
    const posting = index.postings.get(term);
    if (!posting) continue;
    touched.length = 0;
    for (let k = 0; k < posting.memories.length; k++) {
      const j = posting.memories[k] as number;
      const count = posting.counts[k] as number;
      add(j, count);
      if (windows && (previous[j] as number) >= 0) add(previous[j] as number, count);
      if (windows && (next[j] as number) >= 0) add(next[j] as number, count);
    }
    const frequency = touched.length;
    const idf = bm25Idf(n, frequency);
    for (const i of touched) {
      const count = counts[i] as number;
      const length = lengths ? (lengths[i] as number) : (index.memories[i] as IndexedMemory).length;
      scores[i] = (scores[i] as number) + bm25TermScore(idf, count, length, averageLength);
      counts[i] = 0;
    }
  }
  return scores;
}

/**
 * Rank of `values[i]` among all values, best first (ties: the lower index first), as a full sort
 * would give it; `descending` is `values` sorted from the highest.
 */
function rankOf(values: Float64Array, descending: Float64Array, i: number): number {
  const value = values[i] as number;
  // First position holding a value ≤ value, and first holding a value < value.
  let low = 0;
  let high = descending.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((descending[middle] as number) > value) low = middle + 1;
    else high = middle;
  }
  const above = low;
  high = descending.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((descending[middle] as number) >= value) low = middle + 1;
    else high = middle;
  }
  if (low - above === 1) return above;
  let tiedBefore = 0;
  for (let j = 0; j < i; j++) if (values[j] === value) tiedBefore++;
  return above + tiedBefore;
}

/** `bm25Of` for an index of some of a scope's memories, with the whole scope's frequencies and windows. */
function scopeWideBm25(stems: readonly string[], index: ScopeIndex, scope: ScopeWideWords, windows: boolean): Float64Array {
  const n = index.memories.length;
  const scores = new Float64Array(n);
  const averageLength = windows ? index.averageWindowLength : index.averageLength;
  for (const term of stems) {
    const frequency = windows ? scope.windowFrequency(term) : (index.documentFrequency.get(term) ?? 0);
    if (!frequency) continue;
    const idf = bm25Idf(scope.count, frequency);
    for (let i = 0; i < n; i++) {
      const count = windows ? scope.windowCounts[i]?.get(term) : (index.memories[i] as IndexedMemory).tf.get(term);
      if (!count) continue;
      const length = windows ? (index.windowLength[i] as number) : (index.memories[i] as IndexedMemory).length;
      scores[i] = (scores[i] as number) + bm25TermScore(idf, count, length, averageLength);
    }
  }
  return scores;
}

/** Σ a[d]·b[d] over a's length (the hot loop of a search). */
function dotProduct(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let d = 0; d < a.length; d++) dot += (a[d] as number) * (b[d] as number);
  return dot;
}

/** Cosine similarity of `vector` to every memory of the index. */
function cosines(vector: Float32Array, index: ScopeIndex): Float64Array {
  let norm = 0;
  for (let d = 0; d < vector.length; d++) norm += (vector[d] as number) * (vector[d] as number);
  const result = new Float64Array(index.memories.length);
  index.memories.forEach((memory, i) => {
    result[i] = norm === 0 || memory.squaredNorm === 0 ? 0 : dotProduct(vector, memory.vector) / Math.sqrt(norm * memory.squaredNorm);
  });
  return result;
}

const descendingCopy = (values: Float64Array) => Float64Array.from(values).sort().reverse();

/** The `size` best of `candidates` by `score` (highest first; ties: the lower index first). */
function best(candidates: readonly number[], score: Float64Array, size: number): number[] {
  const byScore = (a: number, b: number) => (score[b] as number) - (score[a] as number) || a - b;
  if (candidates.length <= size * 4) return [...candidates].sort(byScore).slice(0, size);
  // The size-th best score, from a native sort of the scores alone; then only those reaching it are ordered.
  const floor = Float64Array.from(candidates, (i) => score[i] as number).sort()[candidates.length - size] as number;
  return candidates
    .filter((i) => (score[i] as number) >= floor)
    .sort(byScore)
    .slice(0, size);
}

/**
 * Scores every memory of the scope with the first stage (`base = (1 − keywordWeight) · max(0, cos) +
 * keywordWeight · bm`), keeps the best `POOL_SIZE` of those `eligible` allows, and computes their
 * feature rows. With `topicPool` and a query naming a speaker, the pool is the best by
 * `(1 − keywordWeight) · max(0, (cos + cosTopic) / 2) + keywordWeight · bm` instead (a second cosine
 * per memory); the neighbour and session signals read `base` either way. Signals that need
 * neighbours, speakers or dates are 0 for memories without them.
 */
export function scoreFeatures(
  index: ScopeIndex,
  query: RankQuery,
  {
    keywordWeight = 0.3,
    eligible = () => true,
    topicPool = true,
  }: { keywordWeight?: number; eligible?: (memory: IndexedMemory) => boolean; topicPool?: boolean } = {},
): Scored {
  const { memories, previous, next, session } = index;
  const n = memories.length;
  const cos = new Float64Array(n);
  let maxCos = -1;
  const vector = query.vector;
  let queryNorm = 0;
  for (let d = 0; d < vector.length; d++) queryNorm += (vector[d] as number) * (vector[d] as number);
  for (let i = 0; i < n; i++) {
    const memory = memories[i] as IndexedMemory;
    const dot = dotProduct(vector, memory.vector);
    cos[i] = queryNorm === 0 || memory.squaredNorm === 0 ? 0 : dot / Math.sqrt(queryNorm * memory.squaredNorm);
    if ((cos[i] as number) > maxCos) maxCos = cos[i] as number;
  }
  const stems = [...new Set(query.terms.map(stem))];
  const bm = bm25Of(stems, index);
  const bmWindow = bm25Of(stems, index, { windows: true });
  let bestBm = 0;
  let bestWindow = 0;
  for (let i = 0; i < n; i++) {
    bestBm = Math.max(bestBm, bm[i] as number);
    bestWindow = Math.max(bestWindow, bmWindow[i] as number);
  }
  const bmRel = (i: number) => (bestBm > 0 ? (bm[i] as number) / bestBm : 0);
  const base = new Float64Array(n);
  const sessionBest = new Map<number, number>();
  let bestBase = 0;
  for (let i = 0; i < n; i++) {
    base[i] = (1 - keywordWeight) * Math.max(0, cos[i] as number) + keywordWeight * bmRel(i);
    const s = session[i] as number;
    sessionBest.set(s, Math.max(sessionBest.get(s) ?? 0, base[i] as number));
    bestBase = Math.max(bestBase, base[i] as number);
  }
  bestBase ||= 1;
  const eligibleMemories: number[] = [];
  for (let i = 0; i < n; i++) if (eligible(memories[i] as IndexedMemory)) eligibleMemories.push(i);
  const topic = topicPool && query.topicVector ? cosines(query.topicVector, index) : undefined;
  let poolScore = base;
  if (topic) {
    poolScore = new Float64Array(n);
    for (let i = 0; i < n; i++)
      poolScore[i] = (1 - keywordWeight) * Math.max(0, ((cos[i] as number) + (topic[i] as number)) / 2) + keywordWeight * bmRel(i);
  }
  const pool = best(eligibleMemories, poolScore, POOL_SIZE);
  const cosDescending = descendingCopy(cos);
  const bmDescending = descendingCopy(bm);

  const { speakers, documentFrequency } = index;
  let named = new Set<string>();
  let nameStems = new Set<string>();
  if (query.text === undefined) {
    for (const word of query.words) {
      const speaker = speakers.get(word);
      if (speaker !== undefined) named.add(speaker);
    }
  } else ({ names: named, stems: nameStems } = speakersNamedIn(query.text, speakers, (term) => documentFrequency.has(term)));
  const corpus = index.scopeWide?.count ?? n;
  const idf = (term: string) => {
    const frequency = documentFrequency.get(term) ?? 0;
    return bm25Idf(corpus, frequency);
  };
  const nouns = query.nouns.filter((term) => !speakers.has(term) && !nameStems.has(term));
  const nounWeight = nouns.reduce((sum, term) => sum + idf(term), 0);

  const rows = pool.map((i) => {
    const memory = memories[i] as IndexedMemory;
    let neighbours = 0;
    for (let j = previous[i] as number, k = 0; j >= 0 && k < 2; j = previous[j] as number, k++)
      neighbours = Math.max(neighbours, base[j] as number);
    for (let j = next[i] as number, k = 0; j >= 0 && k < 2; j = next[j] as number, k++)
      neighbours = Math.max(neighbours, base[j] as number);
    let neighbourCos = 0;
    let neighbourBm = 0;
    for (const j of [previous[i] as number, next[i] as number]) {
      if (j < 0) continue;
      neighbourCos = Math.max(neighbourCos, cos[j] as number);
      neighbourBm = Math.max(neighbourBm, bmRel(j));
    }
    let noun = 0;
    for (const term of nouns) if (memory.tf.has(term)) noun += idf(term);
    let date = 0;
    for (const day of query.days) for (const said of memory.days) date = Math.max(date, 1 - Math.min(1, Math.abs(said - day) / 2));
    const speaker = memory.speaker;
    return Float64Array.from([
      cos[i] as number,
      (cos[i] as number) - maxCos,
      bmRel(i),
      bestWindow > 0 ? (bmWindow[i] as number) / bestWindow : 0,
      neighbours / bestBase,
      (sessionBest.get(session[i] as number) ?? 0) / bestBase,
      nounWeight ? noun / nounWeight : 0,
      speaker !== undefined && named.has(speaker) ? 1 : 0,
      named.size > 0 && (speaker === undefined || !named.has(speaker)) ? 1 : 0,
      date,
      Math.log(1 + memory.length),
      memory.isQuestion ? 1 : 0,
      (bm[i] as number) / 10,
      1 / (1 + rankOf(cos, cosDescending, i)),
      (bm[i] as number) > 0 ? 1 / (1 + rankOf(bm, bmDescending, i)) : 0,
      neighbourCos,
      neighbourBm,
      query.terms.length,
      maxCos,
      topic ? (topic[i] as number) : query.topicVector ? cosineSimilarity(query.topicVector, memory.vector) : (cos[i] as number),
    ]);
  });

  const termStems = query.terms.map(stem);
  const unknownTerms = termStems.filter((term) => !documentFrequency.has(term)).length;
  const unknownProper = query.properNouns.filter((term) => !documentFrequency.has(term) && !nameStems.has(term)).length;
  return {
    pool,
    rows,
    query: {
      maxCos,
      maxBmRaw: pool.reduce((max, i) => Math.max(max, (bm[i] as number) / 10), 0),
      unknownTermShare: unknownTerms / (termStems.length || 1),
      unknownProperShare: unknownProper / (query.properNouns.length || 1),
      namesSpeaker: named.size > 0 ? 1 : 0,
      anyUnknownProper: unknownProper > 0 ? 1 : 0,
      speakersNamed: named.size,
    },
  };
}
