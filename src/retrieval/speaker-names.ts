import { stem } from "./keywords.js";

const wordLike = /[\p{L}\p{N}]+(?:['’][\p{L}]+)?/gu;

/**
 * American Soundex of a lower-cased word (letters a–z): its first letter and the codes of the
 * next three consonant sounds ("muhammad", "mohammed" and "muhhamed" → "m530").
 */
export function soundex(word: string): string {
  const codes: Record<string, string> = {};
  for (const [letters, code] of [
    ["bfpv", "1"],
    ["cgjkqsxz", "2"],
    ["dt", "3"],
    ["l", "4"],
    ["mn", "5"],
    ["r", "6"],
  ] as const)
    for (const letter of letters) codes[letter] = code;
  const letters = word.replace(/[^a-z]/g, "");
  if (!letters) return "";
  let result = letters[0] as string;
  let last = codes[letters[0] as string] ?? "";
  for (const letter of letters.slice(1)) {
    const code = codes[letter];
    if (code === undefined) {
      // A vowel separates two equal codes; h and w do not.
      if (letter !== "h" && letter !== "w") last = "";
      continue;
    }
    if (code !== last) result += code;
    last = code;
    if (result.length === 4) break;
  }
  return result.padEnd(4, "0");
}

/** Whether two words are at most one edit apart (an insertion, a deletion, a substitution or two adjacent letters swapped). */
export function oneEditApart(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  if (i === a.length && i === b.length) return true;
  const rest = (x: number, y: number) => a.slice(x) === b.slice(y);
  if (a.length === b.length) return rest(i + 1, i + 1) || (a[i] === b[i + 1] && a[i + 1] === b[i] && rest(i + 2, i + 2));
  return a.length > b.length ? rest(i + 1, i) : rest(i, i + 1);
}

/**
 * The speaker a word of a query names, or undefined. A word names a speaker when its stem is the
 * stem of a word of the speaker's name, or, when it is written with a capital, is not the query's
 * first word and is a word no memory of the scope holds (`known`), when it is spelt like a word of
 * the name: the same Soundex code (both at least 5 letters: "Muhammad" for "Muhhamed", "Faheem" for
 * "Fahim") or one edit apart (both at least 4 letters: "Aqib" for "Akib"). People write names they
 * have only heard or seen once in several ways; the exact match alone missed those questions.
 * `speakers`: stem of each word of a speaker's name → the name (`ScopeIndex.speakers`).
 */
export function speakerNamedBy(
  word: string,
  speakers: ReadonlyMap<string, string>,
  { first = false, known }: { first?: boolean; known?: (stem: string) => boolean } = {},
): string | undefined {
  const bare = word.toLowerCase().replace(/['’]s$/, "");
  if (!/^[\p{L}\p{N}]+$/u.test(bare)) return undefined;
  const exact = speakers.get(stem(bare));
  if (exact !== undefined || first || !known || !/^\p{Lu}/u.test(word) || !/^[a-z]{4,}$/.test(bare) || known(stem(bare))) return exact;
  for (const name of new Set(speakers.values()))
    for (const part of name.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
      if (!/^[a-z]{4,}$/.test(part)) continue;
      if (oneEditApart(bare, part) || (bare.length >= 5 && part.length >= 5 && soundex(bare) === soundex(part))) return name;
    }
  return undefined;
}

/**
 * The query without the words of the scope's speakers' names ("What pets does Vanessa have?" →
 * "What pets does have?"), or undefined when it names none. Verbatim memories begin with their
 * speaker's name and questions about a conversation name a speaker, so the name weighs on every
 * cosine of such a query alike; the same query without it compares only what is asked about.
 * `speakers`: stem of each word of a speaker's name → the name (`ScopeIndex.speakers`); `known`:
 * whether a memory of the scope holds a stem (names spelt otherwise count then, see `speakerNamedBy`).
 */
export function withoutSpeakerNames(
  text: string,
  speakers: ReadonlyMap<string, string>,
  known?: (stem: string) => boolean,
): string | undefined {
  if (speakers.size === 0) return undefined;
  let removed = false;
  let first = true;
  const kept = text.replace(wordLike, (word) => {
    const named = speakerNamedBy(word, speakers, { first, ...(known ? { known } : {}) });
    first = false;
    if (named === undefined) return word;
    removed = true;
    return "";
  });
  if (!removed) return undefined;
  const cleaned = kept
    .replace(/\s+([,.;:?!])/g, "$1")
    .replace(/\s{2,}/g, " ")
    .trim();
  return /[\p{L}\p{N}]/u.test(cleaned) ? cleaned : undefined;
}

/** The speakers a query names (`speakerNamedBy`) and the stems of the words that name them. */
export function speakersNamedIn(
  text: string,
  speakers: ReadonlyMap<string, string>,
  known?: (stem: string) => boolean,
): { names: Set<string>; stems: Set<string> } {
  const names = new Set<string>();
  const stems = new Set<string>();
  let first = true;
  for (const word of text.match(wordLike) ?? []) {
    const named = speakerNamedBy(word, speakers, { first, ...(known ? { known } : {}) });
    first = false;
    if (named === undefined) continue;
    names.add(named);
    stems.add(stem(word.toLowerCase().replace(/['’]s$/, "")));
  }
  return { names, stems };
}
