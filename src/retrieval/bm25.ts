import { tokenize } from "./keywords.js";

/**
 * Okapi BM25 over a small in-process corpus (k1 = 1.2, b = 0.75), for stores without a full-text
 * engine and for baselines. Returns a score per document, 0 when no term matches.
 */
export function bm25Scores(terms: readonly string[], documents: readonly string[], { k1 = 1.2, b = 0.75 } = {}): number[] {
  const tokenized = documents.map((text) => tokenize(text));
  const count = tokenized.length;
  if (count === 0 || terms.length === 0) return tokenized.map(() => 0);
  const averageLength = tokenized.reduce((sum, tokens) => sum + tokens.length, 0) / count || 1;
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
