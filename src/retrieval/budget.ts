/**
 * An estimate of a text's tokens for common tokenizers (o200k, cl100k): about four characters a
 * token in English, rounded up, plus the few tokens a memory block line adds (dash, date).
 */
export const estimateTokens = (text: string): number => Math.ceil(text.length / 4) + 8;

/**
 * The token budget stage: takes results in rank order while their estimated tokens stay within
 * `maxTokens` (a result that does not fit is skipped, a shorter one after it may still fit).
 */
export function withinTokenBudget<T>(ranked: readonly T[], textOf: (item: T) => string, maxTokens: number): T[] {
  const kept: T[] = [];
  let used = 0;
  for (const item of ranked) {
    const tokens = estimateTokens(textOf(item));
    if (used + tokens > maxTokens) continue;
    kept.push(item);
    used += tokens;
  }
  return kept;
}
