import { cosineSimilarity, dotProduct } from "../store-kit/filter.js";
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

/** What ranking reads of a query's words: `RankQuery` without its embeddings. */
export type QueryWords = Omit<RankQuery, "vector" | "topicVector">;

/** A query's embeddings, as `RankQuery` holds them. */
export type QueryVectors = Pick<RankQuery, "vector" | "topicVector">;

export function analyseQuery(text: string, vector: Float32Array, nlp: Nlp, referenceDay: number, topicVector?: Float32Array): RankQuery {
  return { ...analyseQueryText(text, nlp, referenceDay), vector, ...(topicVector ? { topicVector } : {}) };
}

/** What ranking reads of a query's words (`analyseQuery` without its embeddings): search computes it while the query is embedded. */
export function analyseQueryText(text: string, nlp: Nlp, referenceDay: number): QueryWords {
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

const cosineOf = (dot: number, norm: number, memory: IndexedMemory) =>
  norm === 0 || memory.squaredNorm === 0 ? 0 : dot / Math.sqrt(norm * memory.squaredNorm);

/**
 * Cosine similarity of `vector`, and of `second` when given, to every memory of the index (the hot
 * loop of a search). Four memories at a time, each memory's vector read once for both queries: the
 * sums are independent, so they run side by side, and each is summed in dimension order as
 * `dotProduct` sums it, so every value is the one-at-a-time cosine to the bit.
 */
function cosinesOf(memories: readonly IndexedMemory[], vector: Float32Array, second?: Float32Array): [Float64Array, Float64Array?] {
  if (!memories.some((memory) => memory.cosineTo)) return heldCosines(memories, vector, second);
  // Memories ranked without their vector give their own cosines; the others as below.
  const n = memories.length;
  const held: IndexedMemory[] = [];
  const heldAt: number[] = [];
  for (let i = 0; i < n; i++) {
    const memory = memories[i] as IndexedMemory;
    if (memory.cosineTo) continue;
    held.push(memory);
    heldAt.push(i);
  }
  const [heldCos, heldOther] = heldCosines(held, vector, second);
  const cos = new Float64Array(n);
  const other = second ? new Float64Array(n) : undefined;
  for (let k = 0; k < heldAt.length; k++) {
    const i = heldAt[k] as number;
    cos[i] = heldCos[k] as number;
    if (other && heldOther) other[i] = heldOther[k] as number;
  }
  for (let i = 0; i < n; i++) {
    const memory = memories[i] as IndexedMemory;
    if (!memory.cosineTo) continue;
    cos[i] = memory.cosineTo(vector);
    if (other && second) other[i] = memory.cosineTo(second);
  }
  return [cos, other];
}

/** `cosinesOf` for memories that hold their vectors. */
function heldCosines(memories: readonly IndexedMemory[], vector: Float32Array, second?: Float32Array): [Float64Array, Float64Array?] {
  if (second && second.length !== vector.length) return [heldCosines(memories, vector)[0], heldCosines(memories, second)[0]];
  const n = memories.length;
  const length = vector.length;
  const cos = new Float64Array(n);
  const other = second ? new Float64Array(n) : undefined;
  const norm = dotProduct(vector, vector);
  const otherNorm = second ? dotProduct(second, second) : 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    const m0 = memories[i] as IndexedMemory;
    const m1 = memories[i + 1] as IndexedMemory;
    const m2 = memories[i + 2] as IndexedMemory;
    const m3 = memories[i + 3] as IndexedMemory;
    const v0 = m0.vector;
    const v1 = m1.vector;
    const v2 = m2.vector;
    const v3 = m3.vector;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    if (second && other) {
      let b0 = 0;
      let b1 = 0;
      let b2 = 0;
      let b3 = 0;
      for (let d = 0; d < length; d++) {
        const p = vector[d] as number;
        const q = second[d] as number;
        const x0 = v0[d] as number;
        const x1 = v1[d] as number;
        const x2 = v2[d] as number;
        const x3 = v3[d] as number;
        a0 += p * x0;
        a1 += p * x1;
        a2 += p * x2;
        a3 += p * x3;
        b0 += q * x0;
        b1 += q * x1;
        b2 += q * x2;
        b3 += q * x3;
      }
      other[i] = cosineOf(b0, otherNorm, m0);
      other[i + 1] = cosineOf(b1, otherNorm, m1);
      other[i + 2] = cosineOf(b2, otherNorm, m2);
      other[i + 3] = cosineOf(b3, otherNorm, m3);
    } else {
      for (let d = 0; d < length; d++) {
        const p = vector[d] as number;
        a0 += p * (v0[d] as number);
        a1 += p * (v1[d] as number);
        a2 += p * (v2[d] as number);
        a3 += p * (v3[d] as number);
      }
    }
    cos[i] = cosineOf(a0, norm, m0);
    cos[i + 1] = cosineOf(a1, norm, m1);
    cos[i + 2] = cosineOf(a2, norm, m2);
    cos[i + 3] = cosineOf(a3, norm, m3);
  }
  for (; i < n; i++) {
    const memory = memories[i] as IndexedMemory;
    cos[i] = cosineOf(dotProduct(vector, memory.vector), norm, memory);
    if (second && other) other[i] = cosineOf(dotProduct(second, memory.vector), otherNorm, memory);
  }
  return [cos, other];
}

const descendingCopy = (values: Float64Array) => Float64Array.from(values).sort().reverse();

/** The `size` best of `candidates` by `score` (highest first; ties: the lower index first). */
function best(candidates: readonly number[], score: Float64Array, size: number): number[] {
  const byScore = (a: number, b: number) => (score[b] as number) - (score[a] as number) || a - b;
  if (candidates.length <= size * 4) return [...candidates].sort(byScore).slice(0, size);
  // The size-th best score, from a native sort of the scores alone; then only those reaching it are ordered.
  const scores = new Float64Array(candidates.length);
  for (let k = 0; k < candidates.length; k++) scores[k] = score[candidates[k] as number] as number;
  const floor = scores.sort()[candidates.length - size] as number;
  const reaching: number[] = [];
  for (const i of candidates) if ((score[i] as number) >= floor) reaching.push(i);
  return reaching.sort(byScore).slice(0, size);
}

export interface FeatureOptions {
  /** The keyword side's weight in the first-stage score. @default 0.3 */
  keywordWeight?: number;
  /** Which memories may enter the pool. @default every memory */
  eligible?: (memory: IndexedMemory) => boolean;
  /** Choose the pool by the query with and without the speakers' names (see `scoreFeatures`). @default true */
  topicPool?: boolean;
}

/**
 * The part of `scoreFeatures` that does not read the query's embeddings, per memory of the index:
 * its keyword scores and their ranks, the nouns and speakers the query names, which memories are
 * eligible. Search computes it while the query is embedded; `completeFeatures` adds the cosines.
 */
export interface PreparedFeatures {
  readonly index: ScopeIndex;
  readonly query: QueryWords;
  readonly keywordWeight: number;
  readonly topicPool: boolean;
  /** The memories `eligible` allows, ascending. */
  readonly eligible: readonly number[];
  readonly bm: Float64Array;
  /** BM25 / the best BM25 of the scope (the `bm` feature), and keywordWeight times that (the first stage's keyword part). */
  readonly bmRelative: Float64Array;
  readonly keywordPart: Float64Array;
  /** The `bmW`, `nbBm`, `rrBm`, `noun`, `spk`, `spkOther` and `len` features. */
  readonly bmWindow: Float64Array;
  readonly neighbourBm: Float64Array;
  readonly bmRank: Float64Array;
  readonly noun: Float64Array;
  readonly speaker: Uint8Array;
  readonly otherSpeaker: Uint8Array;
  readonly logLength: Float64Array;
  /** Each memory's session as a number from 0 to `sessions` − 1. */
  readonly sessionSlot: Int32Array;
  readonly sessions: number;
  readonly signals: Omit<Scored["query"], "maxCos" | "maxBmRaw">;
}

/** `scoreFeatures` before the query's embeddings: everything it computes that does not read them. */
export function prepareFeatures(
  index: ScopeIndex,
  query: QueryWords,
  { keywordWeight = 0.3, eligible = () => true, topicPool = true }: FeatureOptions = {},
): PreparedFeatures {
  const { memories, previous, next, session, speakers, documentFrequency } = index;
  const n = memories.length;
  const stems = [...new Set(query.terms.map(stem))];
  const bm = bm25Of(stems, index);
  const windowScores = bm25Of(stems, index, { windows: true });
  let bestBm = 0;
  let bestWindow = 0;
  for (let i = 0; i < n; i++) {
    bestBm = Math.max(bestBm, bm[i] as number);
    bestWindow = Math.max(bestWindow, windowScores[i] as number);
  }
  const bmRelative = new Float64Array(n);
  const keywordPart = new Float64Array(n);
  const bmWindow = new Float64Array(n);
  const matched: number[] = [];
  for (let i = 0; i < n; i++) {
    bmRelative[i] = bestBm > 0 ? (bm[i] as number) / bestBm : 0;
    keywordPart[i] = keywordWeight * (bmRelative[i] as number);
    bmWindow[i] = bestWindow > 0 ? (windowScores[i] as number) / bestWindow : 0;
    if ((bm[i] as number) > 0) matched.push(i);
  }
  // Rank by BM25 among all memories (ties: the lower index first) of those that match; 0 for the rest.
  const bmRank = new Float64Array(n);
  matched.sort((a, b) => (bm[b] as number) - (bm[a] as number) || a - b);
  matched.forEach((i, rank) => {
    bmRank[i] = 1 / (1 + rank);
  });
  const neighbourBm = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const before = previous[i] as number;
    const after = next[i] as number;
    let best = 0;
    if (before >= 0) best = Math.max(best, bmRelative[before] as number);
    if (after >= 0) best = Math.max(best, bmRelative[after] as number);
    neighbourBm[i] = best;
  }
  const eligibleMemories: number[] = [];
  for (let i = 0; i < n; i++) if (eligible(memories[i] as IndexedMemory)) eligibleMemories.push(i);

  let named = new Set<string>();
  let nameStems = new Set<string>();
  if (query.text === undefined) {
    for (const word of query.words) {
      const speaker = speakers.get(word);
      if (speaker !== undefined) named.add(speaker);
    }
  } else ({ names: named, stems: nameStems } = speakersNamedIn(query.text, speakers, (term) => documentFrequency.has(term)));
  const corpus = index.scopeWide?.count ?? n;
  const idf = (term: string) => bm25Idf(corpus, documentFrequency.get(term) ?? 0);
  const nouns = query.nouns.filter((term) => !speakers.has(term) && !nameStems.has(term));
  const nounIdf = nouns.map(idf);
  const nounWeight = nounIdf.reduce((sum, weight) => sum + weight, 0);
  const noun = new Float64Array(n);
  if (nounWeight && !index.scopeWide) {
    // From the nouns' postings: the memories holding each, in the order of the nouns (as a memory's sum over them).
    for (let k = 0; k < nouns.length; k++) {
      const posting = index.postings.get(nouns[k] as string);
      if (posting) for (const i of posting.memories) noun[i] = (noun[i] as number) + (nounIdf[k] as number);
    }
    for (let i = 0; i < n; i++) noun[i] = (noun[i] as number) / nounWeight;
  }
  const speaker = new Uint8Array(n);
  const otherSpeaker = new Uint8Array(n);
  const logLength = new Float64Array(n);
  const slots = new Map<number, number>();
  const sessionSlot = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const memory = memories[i] as IndexedMemory;
    if (nounWeight && index.scopeWide) {
      let sum = 0;
      for (let k = 0; k < nouns.length; k++) if (memory.tf.has(nouns[k] as string)) sum += nounIdf[k] as number;
      noun[i] = sum / nounWeight;
    }
    const said = memory.speaker;
    speaker[i] = said !== undefined && named.has(said) ? 1 : 0;
    otherSpeaker[i] = named.size > 0 && (said === undefined || !named.has(said)) ? 1 : 0;
    logLength[i] = Math.log(1 + memory.length);
    const s = session[i] as number;
    if (i > 0 && session[i - 1] === s) sessionSlot[i] = sessionSlot[i - 1] as number;
    else {
      let slot = slots.get(s);
      if (slot === undefined) {
        slot = slots.size;
        slots.set(s, slot);
      }
      sessionSlot[i] = slot;
    }
  }

  const termStems = query.terms.map(stem);
  const unknownTerms = termStems.filter((term) => !documentFrequency.has(term)).length;
  const unknownProper = query.properNouns.filter((term) => !documentFrequency.has(term) && !nameStems.has(term)).length;
  return {
    index,
    query,
    keywordWeight,
    topicPool,
    eligible: eligibleMemories,
    bm,
    bmRelative,
    keywordPart,
    bmWindow,
    neighbourBm,
    bmRank,
    noun,
    speaker,
    otherSpeaker,
    logLength,
    sessionSlot,
    sessions: slots.size,
    signals: {
      unknownTermShare: unknownTerms / (termStems.length || 1),
      unknownProperShare: unknownProper / (query.properNouns.length || 1),
      namesSpeaker: named.size > 0 ? 1 : 0,
      anyUnknownProper: unknownProper > 0 ? 1 : 0,
      speakersNamed: named.size,
    },
  };
}

/** `scoreFeatures` from its prepared part and the query's embeddings: the cosines, the pool and its rows. */
export function completeFeatures(prepared: PreparedFeatures, { vector, topicVector }: QueryVectors): Scored {
  const { index, query, keywordWeight, bm, bmRelative, keywordPart, sessionSlot } = prepared;
  const { memories, previous, next } = index;
  const n = memories.length;
  const topicPool = prepared.topicPool && topicVector !== undefined;
  const [cos, topic] = cosinesOf(memories, vector, topicPool ? topicVector : undefined);
  let maxCos = -1;
  for (let i = 0; i < n; i++) if ((cos[i] as number) > maxCos) maxCos = cos[i] as number;
  const base = new Float64Array(n);
  const sessionBest = new Float64Array(prepared.sessions);
  let bestBase = 0;
  for (let i = 0; i < n; i++) {
    const value = (1 - keywordWeight) * Math.max(0, cos[i] as number) + (keywordPart[i] as number);
    base[i] = value;
    const s = sessionSlot[i] as number;
    sessionBest[s] = Math.max(sessionBest[s] as number, value);
    bestBase = Math.max(bestBase, value);
  }
  bestBase ||= 1;
  let poolScore = base;
  if (topic) {
    poolScore = new Float64Array(n);
    for (let i = 0; i < n; i++)
      poolScore[i] = (1 - keywordWeight) * Math.max(0, ((cos[i] as number) + (topic[i] as number)) / 2) + (keywordPart[i] as number);
  }
  const pool = best(prepared.eligible, poolScore, POOL_SIZE);
  const cosDescending = descendingCopy(cos);

  // One buffer for the rows (a typed array of its own per row costs an allocation each).
  const buffer = new Float64Array(pool.length * FEATURES.length);
  const rows = pool.map((i, position) => {
    const memory = memories[i] as IndexedMemory;
    let neighbours = 0;
    for (let j = previous[i] as number, k = 0; j >= 0 && k < 2; j = previous[j] as number, k++)
      neighbours = Math.max(neighbours, base[j] as number);
    for (let j = next[i] as number, k = 0; j >= 0 && k < 2; j = next[j] as number, k++)
      neighbours = Math.max(neighbours, base[j] as number);
    let neighbourCos = 0;
    const before = previous[i] as number;
    const after = next[i] as number;
    if (before >= 0) neighbourCos = Math.max(neighbourCos, cos[before] as number);
    if (after >= 0) neighbourCos = Math.max(neighbourCos, cos[after] as number);
    let date = 0;
    for (const day of query.days) for (const said of memory.days) date = Math.max(date, 1 - Math.min(1, Math.abs(said - day) / 2));
    const row = buffer.subarray(position * FEATURES.length, (position + 1) * FEATURES.length);
    row[0] = cos[i] as number;
    row[1] = (cos[i] as number) - maxCos;
    row[2] = bmRelative[i] as number;
    row[3] = prepared.bmWindow[i] as number;
    row[4] = neighbours / bestBase;
    row[5] = (sessionBest[sessionSlot[i] as number] as number) / bestBase;
    row[6] = prepared.noun[i] as number;
    row[7] = prepared.speaker[i] as number;
    row[8] = prepared.otherSpeaker[i] as number;
    row[9] = date;
    row[10] = prepared.logLength[i] as number;
    row[11] = memory.isQuestion ? 1 : 0;
    row[12] = (bm[i] as number) / 10;
    row[13] = 1 / (1 + rankOf(cos, cosDescending, i));
    row[14] = prepared.bmRank[i] as number;
    row[15] = neighbourCos;
    row[16] = prepared.neighbourBm[i] as number;
    row[17] = query.terms.length;
    row[18] = maxCos;
    row[19] = topic
      ? (topic[i] as number)
      : topicVector
        ? (memory.cosineTo?.(topicVector) ?? cosineSimilarity(topicVector, memory.vector))
        : (cos[i] as number);
    return row;
  });

  return {
    pool,
    rows,
    query: {
      maxCos,
      maxBmRaw: pool.reduce((max, i) => Math.max(max, (bm[i] as number) / 10), 0),
      ...prepared.signals,
    },
  };
}

/**
 * Scores every memory of the scope with the first stage (`base = (1 − keywordWeight) · max(0, cos) +
 * keywordWeight · bm`), keeps the best `POOL_SIZE` of those `eligible` allows, and computes their
 * feature rows. With `topicPool` and a query naming a speaker, the pool is the best by
 * `(1 − keywordWeight) · max(0, (cos + cosTopic) / 2) + keywordWeight · bm` instead (a second cosine
 * per memory); the neighbour and session signals read `base` either way. Signals that need
 * neighbours, speakers or dates are 0 for memories without them. `prepareFeatures` then
 * `completeFeatures`: the same rows to the bit.
 */
export function scoreFeatures(index: ScopeIndex, query: RankQuery, options: FeatureOptions = {}): Scored {
  return completeFeatures(prepareFeatures(index, query, options), query);
}
