import { stem } from "./keywords.js";

const wordLike = /[\p{L}\p{N}]+(?:['’][\p{L}]+)?/gu;

/**
 * The query without the words of the scope's speakers' names ("What pets does Vanessa have?" →
 * "What pets does have?"), or undefined when it names none. Verbatim memories begin with their
 * speaker's name and questions about a conversation name a speaker, so the name weighs on every
 * cosine of such a query alike; the same query without it compares only what is asked about.
 * `speakers`: stem of each word of a speaker's name → the name (`ScopeIndex.speakers`).
 */
export function withoutSpeakerNames(text: string, speakers: ReadonlyMap<string, string>): string | undefined {
  if (speakers.size === 0) return undefined;
  let removed = false;
  const kept = text.replace(wordLike, (word) => {
    const bare = word.toLowerCase().replace(/['’]s$/, "");
    if (!/^[\p{L}\p{N}]+$/u.test(bare) || !speakers.has(stem(bare))) return word;
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
