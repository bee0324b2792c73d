import { bm25Scores } from "../retrieval/bm25.js";

/**
 * Ranks full-text candidates by BM25 (`bm25Scores`: Porter stems, k1 = 1.2, b = 0.75), so that
 * keyword search ranks the same in every store whatever finds the candidates: the best `limit` of
 * those that score above zero, best first, equal scores by id.
 *
 * @param terms the query's `keywordTerms`.
 * @param candidates the records the store's full-text index matched inside the filter.
 * @param documentCount the number of records inside the filter, when the candidates are only
 *   part of them: inverse document frequencies are computed against it. @default candidates.length
 *
 * @example
 * const best = rankByBm25(terms, matches, { documentCount: scopeSize, limit });
 * return best.map(({ candidate, score }) => ({ record: candidate.record, score }));
 */
export function rankByBm25<T extends { readonly id: string; readonly text: string }>(
  terms: readonly string[],
  candidates: readonly T[],
  { documentCount, limit }: { documentCount?: number; limit: number },
): { candidate: T; score: number }[] {
  const scores = bm25Scores(
    terms,
    candidates.map((candidate) => candidate.text),
    { documentCount },
  );
  return candidates
    .map((candidate, i) => ({ candidate, score: scores[i] as number }))
    .filter((hit) => hit.score > 0)
    .sort((a, b) => b.score - a.score || (a.candidate.id < b.candidate.id ? -1 : a.candidate.id > b.candidate.id ? 1 : 0))
    .slice(0, limit);
}
