import { stem, tokenize } from "./keywords.js";

/** BM25's term-frequency saturation. */
export const BM25_K1 = 1.2;
/** BM25's length normalisation. */
export const BM25_B = 0.75;

/** What BM25 needs of one document: its length in tokens and how often each query stem occurs in it. */
export interface Bm25Document {
  readonly length: number;
  readonly counts: ReadonlyMap<string, number>;
}

/** Tokenizes `text` once for BM25: its length and the counts of the wanted stems (other words are not kept). */
export function bm25Document(wanted: ReadonlySet<string>, text: string): Bm25Document {
  const tokens = tokenize(text);
  const counts = new Map<string, number>();
  for (const token of tokens) {
    const stemmed = stem(token);
    if (wanted.has(stemmed)) counts.set(stemmed, (counts.get(stemmed) ?? 0) + 1);
  }
  return { length: tokens.length, counts };
}

/** BM25's inverse document frequency of a term held by `frequency` of `documentCount` documents. */
export function bm25Idf(documentCount: number, frequency: number): number {
  return Math.log(1 + (documentCount - frequency + 0.5) / (frequency + 0.5));
}

/**
 * One term's share of a document's BM25 score with the default k1 and b: `count` occurrences in a
 * document of `length` tokens, against the corpus's `averageLength`. Ranking's hot loops call it.
 */
export function bm25TermScore(idf: number, count: number, length: number, averageLength: number): number {
  return (idf * count * 2.2) / (count + 1.2 * (0.25 + (0.75 * length) / averageLength));
}

/**
 * BM25 scores of documents already read by `bm25Document` (same options as `bm25Scores`; `terms`
 * are distinct stems).
 */
export function scoreBm25Documents(
  stemmedTerms: readonly string[],
  documents: readonly Bm25Document[],
  {
    k1 = BM25_K1,
    b = BM25_B,
    documentCount,
    documentFrequencies,
  }: { k1?: number; b?: number; documentCount?: number; documentFrequencies?: ReadonlyMap<string, number> } = {},
): number[] {
  const count = Math.max(documentCount ?? 0, documents.length);
  if (documents.length === 0 || stemmedTerms.length === 0) return documents.map(() => 0);
  const averageLength = documents.reduce((sum, document) => sum + document.length, 0) / documents.length || 1;
  const documentFrequency = new Map<string, number>();
  for (const { counts } of documents) {
    for (const term of counts.keys()) documentFrequency.set(term, (documentFrequency.get(term) ?? 0) + 1);
  }
  const idf = new Map(
    stemmedTerms.map((term) => [term, bm25Idf(count, Math.max(documentFrequencies?.get(term) ?? 0, documentFrequency.get(term) ?? 0))]),
  );
  return documents.map(({ length, counts }) => {
    let score = 0;
    for (const term of stemmedTerms) {
      const termCount = counts.get(term);
      if (!termCount) continue;
      score += ((idf.get(term) as number) * termCount * (k1 + 1)) / (termCount + k1 * (1 - b + (b * length) / averageLength));
    }
    return score;
  });
}

/**
 * Okapi BM25 over a small in-process corpus (k1 = 1.2, b = 0.75), for stores without a full-text
 * engine, for scoring a full-text engine's matches, and for baselines. Terms and document words
 * are compared by their Porter stems ("prefers" matches "preferred"). Returns a score per document,
 * 0 when no term matches.
 *
 * `documentCount` is the size of the corpus when `documents` are only part of it (e.g. only the
 * documents that contain a term): inverse document frequencies are computed against it.
 * @default documents.length
 *
 * `documentFrequencies` (by stem) are how many documents of the corpus hold each term, when
 * `documents` are not all of those that do (a full-text index counted them).
 * @default counted in `documents`
 */
export function bm25Scores(
  terms: readonly string[],
  documents: readonly string[],
  options: { k1?: number; b?: number; documentCount?: number; documentFrequencies?: ReadonlyMap<string, number> } = {},
): number[] {
  const stemmedTerms = [...new Set(terms.map(stem))];
  const wanted = new Set(stemmedTerms);
  return scoreBm25Documents(
    stemmedTerms,
    documents.map((text) => bm25Document(wanted, text)),
    options,
  );
}
