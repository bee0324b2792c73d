import { cosineSimilarity } from "../store-kit/filter.js";
import { keywordTerms, stem, tokenize } from "./keywords.js";
import type { Nlp } from "./nlp.js";
import type { IndexedMemory, ScopeIndex } from "./scope-index.js";

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
] as const;
export type Feature = (typeof FEATURES)[number];

/** A query as ranking reads it. */
export interface RankQuery {
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
}

export function analyseQuery(text: string, vector: Float32Array, nlp: Nlp, referenceDay: number): RankQuery {
  const { nouns, properNouns } = nlp.entities(text);
  return {
    vector,
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
  };
}

/**
 * BM25 (k1 = 1.2, b = 0.75) of every document, from stem counts and document frequencies.
 * `documentCount`: the size of the corpus the frequencies count, when `documents` are part of it.
 */
export function bm25Of(
  stems: readonly string[],
  documents: readonly { tf: ReadonlyMap<string, number>; length: number }[],
  documentFrequency: ReadonlyMap<string, number>,
  averageLength: number,
  documentCount = documents.length,
): Float64Array {
  const n = documents.length;
  const scores = new Float64Array(n);
  const idf = stems.map((term) => {
    const frequency = documentFrequency.get(term) ?? 0;
    return frequency ? Math.log(1 + (documentCount - frequency + 0.5) / (frequency + 0.5)) : 0;
  });
  for (let i = 0; i < n; i++) {
    const { tf, length } = documents[i] as { tf: ReadonlyMap<string, number>; length: number };
    let score = 0;
    for (let k = 0; k < stems.length; k++) {
      const count = tf.get(stems[k] as string);
      if (count) score += ((idf[k] as number) * count * 2.2) / (count + 1.2 * (0.25 + (0.75 * length) / averageLength));
    }
    scores[i] = score;
  }
  return scores;
}

function ranks(values: Float64Array): Float64Array {
  const order = [...values.keys()].sort((a, b) => (values[b] as number) - (values[a] as number) || a - b);
  const rank = new Float64Array(values.length);
  order.forEach((i, k) => {
    rank[i] = k;
  });
  return rank;
}

/**
 * Scores every memory of the scope with the first stage (`(1 − keywordWeight) · max(0, cos) +
 * keywordWeight · bm`), keeps the best `POOL_SIZE` of those `eligible` allows, and computes their
 * feature rows. Signals that need neighbours, speakers or dates are 0 for memories without them.
 */
export function scoreFeatures(
  index: ScopeIndex,
  query: RankQuery,
  { keywordWeight = 0.3, eligible = () => true }: { keywordWeight?: number; eligible?: (memory: IndexedMemory) => boolean } = {},
): Scored {
  const { memories, previous, next, session } = index;
  const n = memories.length;
  const cos = new Float64Array(n);
  let maxCos = -1;
  for (let i = 0; i < n; i++) {
    cos[i] = cosineSimilarity(query.vector, (memories[i] as IndexedMemory).vector);
    if ((cos[i] as number) > maxCos) maxCos = cos[i] as number;
  }
  const stems = [...new Set(query.terms.map(stem))];
  const corpus = index.documentCount ?? n;
  const bm = bm25Of(stems, memories, index.documentFrequency, index.averageLength, corpus);
  const windows = memories.map((_, i) => ({
    tf: index.windowTf[i] as ReadonlyMap<string, number>,
    length: index.windowLength[i] as number,
  }));
  const bmWindow = bm25Of(stems, windows, index.windowFrequency, index.averageWindowLength, corpus);
  const bestBm = Math.max(0, ...bm);
  const bestWindow = Math.max(0, ...bmWindow);
  const bmRel = (i: number) => (bestBm > 0 ? (bm[i] as number) / bestBm : 0);
  const base = new Float64Array(n);
  const sessionBest = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    base[i] = (1 - keywordWeight) * Math.max(0, cos[i] as number) + keywordWeight * bmRel(i);
    const s = session[i] as number;
    sessionBest.set(s, Math.max(sessionBest.get(s) ?? 0, base[i] as number));
  }
  const bestBase = Math.max(0, ...base) || 1;
  const pool = [...base.keys()]
    .filter((i) => eligible(memories[i] as IndexedMemory))
    .sort((a, b) => (base[b] as number) - (base[a] as number) || a - b)
    .slice(0, POOL_SIZE);
  const rankCos = ranks(cos);
  const rankBm = ranks(bm);

  const { speakers, documentFrequency } = index;
  const named = new Set<string>();
  for (const word of query.words) {
    const speaker = speakers.get(word);
    if (speaker !== undefined) named.add(speaker);
  }
  const idf = (term: string) => {
    const frequency = documentFrequency.get(term) ?? 0;
    return Math.log(1 + (corpus - frequency + 0.5) / (frequency + 0.5));
  };
  const nouns = query.nouns.filter((term) => !speakers.has(term));
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
      1 / (1 + (rankCos[i] as number)),
      (bm[i] as number) > 0 ? 1 / (1 + (rankBm[i] as number)) : 0,
      neighbourCos,
      neighbourBm,
      query.terms.length,
      maxCos,
    ]);
  });

  const termStems = query.terms.map(stem);
  const unknownTerms = termStems.filter((term) => !documentFrequency.has(term)).length;
  const unknownProper = query.properNouns.filter((term) => !documentFrequency.has(term)).length;
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
    },
  };
}
