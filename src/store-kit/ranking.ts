import { type Bm25Document, bm25Document, scoreBm25Documents } from "../retrieval/bm25.js";
import { stem } from "../retrieval/keywords.js";

/**
 * Ranks full-text candidates by BM25 (`bm25Scores`: Porter stems, k1 = 1.2, b = 0.75), so that
 * keyword search ranks the same in every store whatever finds the candidates: the best `limit` of
 * those that hold a query term, best first, equal scores by id.
 *
 * Only candidates holding a term take part (their average length is BM25's), so passing every
 * record of the filter, or only those a full-text index matched, gives the same ranking.
 *
 * @param terms the query's `keywordTerms`.
 * @param candidates the records the store's full-text index matched inside the filter, or all of them.
 * @param options `limit`: how many to return, best first; `documentCount`: the number of records
 *   inside the filter, when the candidates are only part of them (inverse document frequencies are
 *   computed against it; default `candidates.length`); `documentFrequencies`: how many records
 *   inside the filter hold each term (by Porter stem), when the candidates are not all of those
 *   that do (default: counted among the candidates).
 *
 * @example
 * const best = rankByBm25(terms, matches, { documentCount: scopeSize, limit });
 * return best.map(({ candidate, score }) => ({ record: candidate.record, score }));
 */
export function rankByBm25<T extends { readonly id: string; readonly text: string }>(
  terms: readonly string[],
  candidates: readonly T[],
  {
    documentCount = candidates.length,
    documentFrequencies,
    limit,
  }: { documentCount?: number; documentFrequencies?: ReadonlyMap<string, number>; limit: number },
): { candidate: T; score: number }[] {
  const stemmedTerms = [...new Set(terms.map(stem))];
  const wanted = new Set(stemmedTerms);
  return rankBm25Documents(
    stemmedTerms,
    candidates.map((candidate) => ({ candidate, document: bm25Document(wanted, candidate.text) })),
    { documentCount, ...(documentFrequencies && { documentFrequencies }), limit },
  );
}

/**
 * `rankByBm25` over candidates whose texts were already read by `bm25Document` (for the query's
 * distinct stems): a store that scores growing sets of candidates reads each text once.
 */
export function rankBm25Documents<T extends { readonly id: string }>(
  stemmedTerms: readonly string[],
  candidates: readonly { candidate: T; document: Bm25Document }[],
  {
    documentCount,
    documentFrequencies,
    limit,
  }: { documentCount?: number; documentFrequencies?: ReadonlyMap<string, number>; limit: number },
): { candidate: T; score: number }[] {
  const matching = candidates.filter(({ document }) => document.counts.size > 0);
  const scores = scoreBm25Documents(
    stemmedTerms,
    matching.map(({ document }) => document),
    { documentCount: documentCount ?? candidates.length, ...(documentFrequencies && { documentFrequencies }) },
  );
  return matching
    .map(({ candidate }, i) => ({ candidate, score: scores[i] as number }))
    .sort((a, b) => b.score - a.score || (a.candidate.id < b.candidate.id ? -1 : a.candidate.id > b.candidate.id ? 1 : 0))
    .slice(0, limit);
}
