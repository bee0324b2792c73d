import { tokenize } from "./keywords.js";

/**
 * Okapi BM25 over a small in-process corpus (k1 = 1.2, b = 0.75), for stores without a full-text
 * engine, for scoring a full-text engine's matches, and for baselines. Returns a score per
 * document, 0 when no term matches.
 *
 * `documentCount` is the size of the corpus when `documents` are only part of it (e.g. only the
 * documents that contain a term): inverse document frequencies are computed against it.
 * @default documents.length
 */
export function bm25Scores(
  terms: readonly string[],
  documents: readonly string[],
  { k1 = 1.2, b = 0.75, documentCount }: { k1?: number; b?: number; documentCount?: number } = {},
): number[] {
  const tokenized = documents.map((text) => tokenize(text));
  const count = Math.max(documentCount ?? 0, tokenized.length);
  if (tokenized.length === 0 || terms.length === 0) return tokenized.map(() => 0);
  const averageLength = tokenized.reduce((sum, tokens) => sum + tokens.length, 0) / tokenized.length || 1;
  const documentFrequency = new Map<string, number>();
  for (const tokens of tokenized) {
    for (const term of new Set(tokens)) {
      if (terms.includes(term)) documentFrequency.set(term, (documentFrequency.get(term) ?? 0) + 1);
    }
  }
  return tokenized.map((tokens) => {
    let score = 0;
    for (const term of terms) {
      const frequency = documentFrequency.get(term);
      if (!frequency) continue;
      let termCount = 0;
      for (const token of tokens) if (token === term) termCount++;
      if (termCount === 0) continue;
      const idf = Math.log(1 + (count - frequency + 0.5) / (frequency + 0.5));
      score += (idf * termCount * (k1 + 1)) / (termCount + k1 * (1 - b + (b * tokens.length) / averageLength));
    }
    return score;
  });
}
