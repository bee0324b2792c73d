import { stemmer } from "stemmer";

// Words too common to help a keyword match; dropping them keeps full-text queries selective.
const stopWords = new Set(
  (
    "a an and are as at be been but by can could did do does for from had has have he her him his how i if in into is it its " +
    "me my no not of on or our she so than that the their them then there these they this to was we were what when where " +
    "which who whom why will with would you your yours about also am any just more most some such too very"
  ).split(" "),
);

/** At most this many distinct terms are used from one query. */
export const MAX_QUERY_TERMS = 24;

/** Lower-cased words of a text (letters and digits, any script), in order, repeats kept. */
export function tokenize(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** The distinct, meaningful words of a query: no stop words, no single characters. */
export function keywordTerms(text: string): string[] {
  const terms: string[] = [];
  for (const word of tokenize(text)) {
    if (word.length < 2 || stopWords.has(word) || terms.includes(word)) continue;
    terms.push(word);
    if (terms.length === MAX_QUERY_TERMS) break;
  }
  return terms;
}

const stems = new Map<string, string>();
const MAX_CACHED_STEMS = 100_000;

/**
 * The Porter stem of a lower-cased word ("preferences" and "preferred" → "prefer"), the same
 * algorithm as SQLite FTS5's `porter` tokenizer, so keyword matches and BM25 scores agree.
 * Cached: documents repeat their words.
 */
export function stem(word: string): string {
  let stemmed = stems.get(word);
  if (stemmed === undefined) {
    stemmed = stemmer(word);
    if (stems.size >= MAX_CACHED_STEMS) stems.clear();
    stems.set(word, stemmed);
  }
  return stemmed;
}
