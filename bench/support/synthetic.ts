// Synthetic memory texts for the store benchmarks: sentences over a Zipf-distributed vocabulary,
// so a few words occur in a large share of every user's memories. Those common words are what
// make keyword search expensive when it is not confined to the scope early.

export { seededRandom } from "../../src/testing/seeded-random.js";

const common = (
  "prefer like use work team project meeting coffee travel family weekend morning code review database " +
  "deploy music book run city language friend dinner plan budget health sleep phone email office remote"
).split(" ");
const rare = Array.from({ length: 5_000 }, (_, i) => `w${i.toString(36)}x${(i * 7919).toString(36)}`);
const vocabulary = [...common, ...rare];
const cumulative: number[] = [];
{
  const weights = vocabulary.map((_, rank) => 1 / (rank + 1));
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  for (const weight of weights) cumulative.push((cumulative.at(-1) ?? 0) + weight / total);
}

/** One word drawn from the Zipf vocabulary. */
function word(next: () => number): string {
  const r = next();
  let low = 0;
  let high = cumulative.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((cumulative[middle] as number) < r) low = middle + 1;
    else high = middle;
  }
  return vocabulary[low] as string;
}

/** A sentence of `words` Zipf-distributed words (8 to 12 by default). */
export function zipfSentence(next: () => number, words = 8 + Math.floor(next() * 5)): string {
  return Array.from({ length: words }, () => word(next)).join(" ");
}
