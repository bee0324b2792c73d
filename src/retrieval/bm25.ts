import { stem, tokenize } from "./keywords.js";

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
  {
    k1 = 1.2,
    b = 0.75,
    documentCount,
    documentFrequencies,
  }: { k1?: number; b?: number; documentCount?: number; documentFrequencies?: ReadonlyMap<string, number> } = {},
): number[] {
  const stemmedTerms = [...new Set(terms.map(stem))];
  const wanted = new Set(stemmedTerms);
  // Per document: its length and how often each query term occurs in it (other words are not kept).
  const documentsTerms = documents.map((text) => {
    const tokens = tokenize(text);
    const counts = new Map<string, number>();
    for (const token of tokens) {
      const stemmed = stem(token);
      if (wanted.has(stemmed)) counts.set(stemmed, (counts.get(stemmed) ?? 0) + 1);
    }
    return { length: tokens.length, counts };
  });
  const count = Math.max(documentCount ?? 0, documentsTerms.length);
  if (documentsTerms.length === 0 || terms.length === 0) return documentsTerms.map(() => 0);
  const averageLength = documentsTerms.reduce((sum, document) => sum + document.length, 0) / documentsTerms.length || 1;
  const documentFrequency = new Map<string, number>();
  for (const { counts } of documentsTerms) {
    for (const term of counts.keys()) documentFrequency.set(term, (documentFrequency.get(term) ?? 0) + 1);
  }
  return documentsTerms.map(({ length, counts }) => {
    let score = 0;
    for (const term of stemmedTerms) {
      const termCount = counts.get(term);
      if (!termCount) continue;
      const frequency = Math.max(documentFrequencies?.get(term) ?? 0, documentFrequency.get(term) as number);
      const idf = Math.log(1 + (count - frequency + 0.5) / (frequency + 0.5));
      score += (idf * termCount * (k1 + 1)) / (termCount + k1 * (1 - b + (b * length) / averageLength));
    }
    return score;
  });
}
