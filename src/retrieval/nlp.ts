import { stem } from "./keywords.js";

// The two NLP libraries search uses, loaded on first use (a few hundred milliseconds, once per
// process): wink-nlp tags parts of speech (which words of a question name people, places and
// things), chrono reads dates ("last May", "on 8 May 2023", "two weeks ago").

const DAY_MS = 86_400_000;

/** Nouns of a text, as Porter stems (how keyword terms are compared): all of them, and the proper ones. */
export interface Entities {
  readonly nouns: readonly string[];
  readonly properNouns: readonly string[];
}

export interface Nlp {
  /** The nouns and proper nouns of a text. */
  entities(text: string): Entities;
  /**
   * The days a text names (UTC day numbers: milliseconds / 86,400,000), relative dates read against
   * `reference`. `certainOnly`: only dates whose day and month are both given ("on 8 May"), as a
   * question names the day it asks about; otherwise also relative days ("yesterday", "last Friday").
   */
  days(text: string, reference: Date, options?: { certainOnly?: boolean }): number[];
}

const word = /^[\p{L}\p{N}][\p{L}\p{N}'-]*$/u;
// A date needs a digit, a month or weekday, or a relative word: other texts are not parsed.
const mayHoldDate =
  /\d|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun|today|tonight|tomorrow|yesterday|ago|last|next|this)/i;
const relativeDay = /\b(?:ago|yesterday|today|tonight|tomorrow|last|next|this)\b/i;

/** The helpers as loaded: with `names`, which graph memory reads entities with. */
export interface LoadedNlp extends Nlp {
  /** The names a text mentions, as written: runs of proper nouns ("Alice", "New York"), each once. */
  names(text: string): string[];
}

let loading: Promise<LoadedNlp> | undefined;

/** The NLP helpers, loaded once per process. */
export function loadNlp(): Promise<LoadedNlp> {
  loading ??= (async () => {
    const [{ default: winkNlp }, { default: model }, chrono] = await Promise.all([
      import("wink-nlp"),
      import("wink-eng-lite-web-model"),
      import("chrono-node"),
    ]);
    const nlp = winkNlp(model);
    const its = nlp.its;
    return {
      entities(text) {
        const nouns = new Set<string>();
        const properNouns = new Set<string>();
        nlp
          .readDoc(text)
          .tokens()
          .each((token: import("wink-nlp").ItemToken) => {
            const pos = token.out(its.pos);
            if (pos !== "NOUN" && pos !== "PROPN") return;
            const normal = (token.out(its.normal) as string).replace(/'s$/, "");
            if (!word.test(normal) || normal.length < 2) return;
            const stemmed = stem(normal);
            nouns.add(stemmed);
            if (pos === "PROPN") properNouns.add(stemmed);
          });
        return { nouns: [...nouns], properNouns: [...properNouns] };
      },
      names(text) {
        const names = new Map<string, string>();
        let run: string[] = [];
        const end = () => {
          const name = run.join(" ");
          run = [];
          if (name.length >= 2 && !names.has(name.toLowerCase())) names.set(name.toLowerCase(), name);
        };
        nlp
          .readDoc(text)
          .tokens()
          .each((token: import("wink-nlp").ItemToken) => {
            const value = (token.out() as string).replace(/['’]s$/, "");
            if (token.out(its.pos) === "PROPN" && word.test(value)) run.push(value);
            else end();
          });
        end();
        return [...names.values()];
      },
      days(text, reference, { certainOnly = false } = {}) {
        if (!mayHoldDate.test(text)) return [];
        const days: number[] = [];
        for (const { start, text: said } of chrono.en.GB.parse(text, reference)) {
          const certain = start.isCertain("day") && start.isCertain("month");
          if (certainOnly ? !certain : !(start.isCertain("day") || start.isCertain("weekday") || relativeDay.test(said))) continue;
          days.push(Math.floor(start.date().getTime() / DAY_MS));
        }
        return days;
      },
    };
  })();
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}

/** The UTC day number of an ISO 8601 date. */
export const dayOf = (iso: string): number => Math.floor(Date.parse(iso) / DAY_MS);
