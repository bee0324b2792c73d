import type { Message } from "../history/outbox.js";
import { normaliseText } from "../internal/hash.js";
import { isFiller } from "./filler.js";

/** Consecutive messages of one speaker form one memory while their words stay within this many. */
export const BURST_WORDS = 100;

/**
 * Memories further apart in time than this belong to different sessions (conversations): a
 * speaker's message continues the scope's latest memory only within it, and search takes the
 * memories said just before and after a memory as its context only within it.
 */
export const SESSION_GAP_MS = 30 * 60_000;

/** Words of a text, as the burst cap counts them. */
export const wordCount = (text: string): number => (text.trim() === "" ? 0 : text.trim().split(/\s+/).length);

/** A run of consecutive messages of one speaker: what one verbatim memory holds. */
export interface Burst {
  role: "user" | "assistant";
  name?: string;
  /** The messages' texts, normalised, in order. */
  parts: string[];
  words: number;
}

/** The stored text of a burst: `"<name>: <parts joined>"`, or the parts alone without a name. */
export const burstText = ({ name, parts }: Pick<Burst, "name" | "parts">): string =>
  normaliseText(`${name === undefined ? "" : `${name}: `}${parts.join(" ")}`);

/** Whether two messages (or memories) come from the same speaker: the same role and the same name (or none). */
export const sameSpeaker = (a: { role: string; name?: string }, b: { role: string; name?: string }): boolean =>
  a.role === b.role && a.name === b.name;

/**
 * The messages of one verbatim add as bursts: system messages and filler (`isFiller`) are dropped,
 * then consecutive messages of one named speaker (same role and `name`) are joined while their words stay within `BURST_WORDS`
 * (a longer message is a burst of its own). `open` is a burst the first messages may continue (the
 * scope's latest memory); it is returned first, with the parts that joined it. A message `open`
 * already ends with (an add sent twice: the whole text, or its last four words or more) is not
 * joined again but counted in `repeats`.
 */
export function burstsOf(
  messages: readonly Message[],
  { open, maxWords = BURST_WORDS }: { open?: Burst; maxWords?: number } = {},
): { bursts: Burst[]; filler: number; repeats: number } {
  const bursts: Burst[] = open ? [{ ...open, parts: [...open.parts] }] : [];
  let filler = 0;
  let repeats = 0;
  for (const message of messages) {
    if (message.role === "system") continue;
    const text = normaliseText(message.content);
    if (isFiller(text)) {
      filler++;
      continue;
    }
    const words = wordCount(text);
    const last = bursts.at(-1);
    // Only a named speaker's messages run together: unnamed ones (facts, a chat's plain turns) stay apart.
    const continuing = last !== undefined && last.name !== undefined && sameSpeaker(last, message);
    const said = continuing ? last.parts.join(" ") : "";
    // A short message may end the burst by chance; a longer one that does is the same message again.
    if (continuing && open && bursts.length === 1 && (said === text || (words >= 4 && said.endsWith(` ${text}`)))) {
      repeats++;
    } else if (continuing && last.words + words <= maxWords) {
      last.parts.push(text);
      last.words += words;
    } else {
      bursts.push({ role: message.role, ...(message.name === undefined ? {} : { name: message.name }), parts: [text], words });
    }
  }
  return { bursts, filler, repeats };
}
