// Acknowledgements and reactions that say nothing on their own. Answers ("yes", "no") and greetings
// are not among them: with the message before them they can state a fact.
const phrases = (
  "ok|okay|okey|k|kk|sure|noted|alright|alrighty|cool|nice|great|awesome|perfect|lovely|sweet|gotcha|exactly|indeed|" +
  "true|totally|agreed|same|lol|lmao|lmfao|rofl|xd|omg|wow|whoa|oh|ah|aw|hmm|mhm|huh|um|thanks|thx|ty|np|" +
  "got it|i see|thank you|thanks a lot|thank you so much|sounds good|sounds great|sounds awesome|sounds nice|will do|fair enough|" +
  "makes sense|no problem|no worries|good enough|you're welcome|youre welcome|right|oh no|i know|for sure|of course|very nice|so cool"
)
  .split("|")
  .map((phrase) => phrase.split(" "));

// Stretched forms: "okkk", "hahaha", "hmmm", "ohhh", "awww", "loool", "yaaay".
const stretched = /^(?:(?:ha)+h?|(?:he)+|(?:ah)+|lo+l|h+m+|o+k+|a+w+|o+h+|a+h+|u+m+|w+o+w+|y+a+y+)$/;

/** Messages longer than this many words always carry content. */
const MAX_FILLER_WORDS = 6;

/**
 * True when a message carries nothing worth remembering on its own: only emoji and punctuation,
 * or at most six words that all split into acknowledgement phrases ("ok", "sure, noted", "got it",
 * "thank you", "sounds good", "haha") and their stretched forms. Verbatim adds do not store such
 * messages.
 */
export function isFiller(text: string): boolean {
  const words =
    text
      .toLowerCase()
      .normalize("NFKC")
      .replace(/’/g, "'")
      .match(/[\p{L}\p{N}']+/gu) ?? [];
  if (words.length === 0) return true;
  if (words.length > MAX_FILLER_WORDS) return false;
  // splits[end]: the first `end` words split into filler phrases.
  const splits: boolean[] = [true];
  for (let end = 1; end <= words.length; end++) {
    splits[end] =
      (splits[end - 1] === true && stretched.test(words[end - 1] as string)) ||
      phrases.some((phrase) => {
        const start = end - phrase.length;
        return start >= 0 && splits[start] === true && phrase.every((word, j) => words[start + j] === word);
      });
  }
  return splits[words.length] === true;
}
