// Candidate ranker inputs for bench/ranker-trials.ts, computed from the scope's memories and the
// query only (no answers, evidence or categories).
import { analyseQuery, bm25Of } from "../../src/retrieval/features.js";
import { stem } from "../../src/retrieval/keywords.js";
import { loadNlp } from "../../src/retrieval/nlp.js";
import { withoutSpeakerNames } from "../../src/retrieval/speaker-names.js";
import { cosineSimilarity } from "../../src/store-kit/filter.js";
import type { Conversation, Run } from "./ranker-training.js";

export interface MemoryKinds {
  time: boolean;
  duration: boolean;
  number: boolean;
  place: boolean;
  person: boolean;
  reason: boolean;
  firstPerson: boolean;
  secondPerson: boolean;
}

export interface TrialContext {
  conversations: readonly Conversation[];
  kinds: MemoryKinds[][];
  vectorOf: Map<string, Float32Array>;
  /** The question's vector with the scope's speakers' names left out. */
  noNameVectorOf: Map<string, Float32Array>;
  someoneVectorOf: Map<string, Float32Array>;
  keyOf: (scopeConv: number, question: string) => string;
  nameVectorOf: Map<string, Float32Array>;
  verbsOf: Map<string, string[]>;
}

const kin =
  /\b(?:mom|mum|mother|dad|father|parents?|brother|sister|siblings?|wife|husband|girlfriend|boyfriend|partner|son|daughter|kids?|children|cousin|uncle|aunt|grandma|grandpa|grandmother|grandfather|friends?|colleague|boss|roommate|neighbou?r|teacher|coach)\b/i;
const placeAfter = new Set(["in", "at", "to", "from", "near", "around", "visit", "visited", "visiting"]);
const reason = /\b(?:because|since|so that|cause|due to|reason)\b/i;

export async function trialContext(
  conversations: readonly Conversation[],
  embed: (texts: string[]) => Promise<Float32Array[]>,
  runs: readonly Run[],
  withSomeone: boolean,
): Promise<TrialContext> {
  const { default: winkNlp } = await import("wink-nlp");
  const { default: model } = await import("wink-eng-lite-web-model");
  const nlp = winkNlp(model);
  const its = nlp.its;
  const kinds = conversations.map((conversation) =>
    conversation.index.memories.map((memory): MemoryKinds => {
      const speaker = memory.speaker;
      const text = memory.record.text;
      const body = speaker !== undefined && text.startsWith(`${speaker}: `) ? text.slice(speaker.length + 2) : text;
      const doc = nlp.readDoc(body);
      const types = new Set<string>(doc.entities().out(its.type) as string[]);
      const tokens = doc.tokens().out() as string[];
      const pos = doc.tokens().out(its.pos) as string[];
      let place = false;
      let person = false;
      const speakerWords = new Set(conversation.speakers.flatMap((s) => s.toLowerCase().split(/\s+/)));
      for (let i = 0; i < tokens.length; i++) {
        if (pos[i] !== "PROPN") continue;
        const lower = (tokens[i] as string).toLowerCase();
        if (i > 0 && placeAfter.has((tokens[i - 1] as string).toLowerCase())) place = true;
        else if (!speakerWords.has(lower) && /^[A-Z][a-z]/.test(tokens[i] as string)) person = true;
      }
      const lower = body.toLowerCase();
      return {
        time: types.has("DATE") || types.has("TIME") || memory.days.length > 1,
        duration: types.has("DURATION"),
        number: types.has("CARDINAL") || types.has("MONEY") || types.has("PERCENT") || types.has("DURATION") || pos.includes("NUM"),
        place,
        person: person || kin.test(body),
        reason: reason.test(body),
        firstPerson: /\b(?:i|my|me|mine|i'm|i've|i'd|i'll|we|our|us)\b/.test(lower),
        secondPerson: /\b(?:you|your|yours|you're|you've)\b/.test(lower),
      };
    }),
  );
  const vectorOf = new Map<string, Float32Array>();
  const verbsOf = new Map<string, string[]>();
  for (const conversation of conversations)
    for (const { question, vector } of conversation.questions) {
      vectorOf.set(question.question, vector);
      const doc = nlp.readDoc(question.question);
      const tokens = doc.tokens().out(its.normal) as string[];
      const pos = doc.tokens().out(its.pos) as string[];
      verbsOf.set(
        question.question,
        tokens.filter((_, i) => pos[i] === "VERB").map((t) => stem(t)),
      );
    }
  // The question without the searched scope's speakers' names, as search does.
  const keyOf = (scopeConv: number, question: string) => `${scopeConv}\u0000${question}`;
  const wanted = new Map<string, string>();
  const someone = new Map<string, string>();
  for (const run of runs) {
    const speakers = (conversations[run.scopeConv] as Conversation).index.speakers;
    const stripped = withoutSpeakerNames(run.question.question, speakers);
    if (stripped !== undefined) wanted.set(keyOf(run.scopeConv, run.question.question), stripped);
    if (withSomeone) {
      const replaced = run.question.question.replace(/[\p{L}\p{N}]+(?:['’][\p{L}]+)?/gu, (word) => {
        const bare = word.toLowerCase().replace(/['’]s$/, "");
        return speakers.has(stem(bare))
          ? word.toLowerCase().endsWith("s") && bare !== word.toLowerCase()
            ? "someone's"
            : "someone"
          : word;
      });
      if (replaced !== run.question.question) someone.set(keyOf(run.scopeConv, run.question.question), replaced);
    }
  }
  const embedAll = async (map: Map<string, string>) => {
    const vectors = await embed([...map.values()]);
    return new Map([...map.keys()].map((key, i) => [key, vectors[i] as Float32Array]));
  };
  const speakerNames = [...new Set(conversations.flatMap((c) => c.speakers))];
  const nameVectors = await embed(speakerNames);
  const nameVectorOf = new Map(speakerNames.map((name, i) => [name, nameVectors[i] as Float32Array]));
  const noNameVectorOf = await embedAll(wanted);
  const someoneVectorOf = await embedAll(someone);
  return { conversations, kinds, vectorOf, noNameVectorOf, someoneVectorOf, verbsOf, keyOf, nameVectorOf };
}

export type QueryShape = "when" | "number" | "where" | "who" | "why" | "yesNo" | "kind" | "other";

/** The kind of answer a question asks for, from its wh-word (generic English). */
export function queryShape(text: string): QueryShape {
  const q = text.trim().toLowerCase();
  if (
    /^(?:when|since when|what (?:year|month|day|date|time)|which (?:year|month|day|date)|on what (?:day|date)|in what year|how long ago)\b/.test(
      q,
    )
  )
    return "when";
  if (/^how (?:many|much|often|old|long|far|tall|big)\b/.test(q)) return "number";
  if (/^(?:where|which (?:city|country|place|town|state)|in which (?:city|country|place|town))\b/.test(q)) return "where";
  if (/^(?:who|whom|whose|with whom)\b/.test(q)) return "who";
  if (/^why\b/.test(q)) return "why";
  if (/^(?:what|which) (?:kind|kinds|type|types|sort|sorts|genre|genres)\b/.test(q)) return "kind";
  if (/^(?:do|does|did|is|are|was|were|can|could|would|will|has|have|had|should)\b/.test(q)) return "yesNo";
  return "other";
}

interface RunCache {
  cos: Float64Array;
  cosNoName: Float64Array;
  cosSomeone: Float64Array;
  bmRel: Float64Array;
  bmNoName: Float64Array;
  shape: QueryShape;
  named: Set<string>;
}
const caches = new WeakMap<Run, RunCache>();
let nlpLoaded: Awaited<ReturnType<typeof loadNlp>> | undefined;
nlpLoaded = await loadNlp();

function cacheOf(context: TrialContext, run: Run): RunCache {
  let cache = caches.get(run);
  if (cache) return cache;
  const target = context.conversations[run.scopeConv] as Conversation;
  const { index } = target;
  const text = run.question.question;
  const vector = context.vectorOf.get(text) as Float32Array;
  const cos = Float64Array.from(index.memories.map((m) => cosineSimilarity(vector, m.vector)));
  const query = analyseQuery(text, vector, nlpLoaded as NonNullable<typeof nlpLoaded>, index.latestDay);
  const stems = [...new Set(query.terms.map(stem))];
  const bm = bm25Of(stems, index);
  const best = Math.max(0, ...bm);
  const bmRel = bm.map((v) => (best > 0 ? v / best : 0));
  const noName = stems.filter((s) => !index.speakers.has(s));
  const bm2 = bm25Of(noName, index);
  const best2 = Math.max(0, ...bm2);
  const bmNoName = bm2.map((v) => (best2 > 0 ? v / best2 : 0));
  const named = new Set<string>();
  for (const word of query.words) {
    const speaker = index.speakers.get(word);
    if (speaker !== undefined) named.add(speaker);
  }
  const key = context.keyOf(run.scopeConv, text);
  const noNameVector = context.noNameVectorOf.get(key) ?? vector;
  const cosNoName = Float64Array.from(index.memories.map((m) => cosineSimilarity(noNameVector, m.vector)));
  const someoneVector = context.someoneVectorOf.get(key) ?? vector;
  const cosSomeone = Float64Array.from(index.memories.map((m) => cosineSimilarity(someoneVector, m.vector)));
  cache = { cos, cosNoName, cosSomeone, bmRel, bmNoName, shape: queryShape(text), named };
  caches.set(run, cache);
  return cache;
}

const kindFor: Record<QueryShape, (k: MemoryKinds) => boolean> = {
  when: (k) => k.time,
  number: (k) => k.number,
  where: (k) => k.place,
  who: (k) => k.person,
  why: (k) => k.reason,
  yesNo: () => false,
  kind: () => false,
  other: () => false,
};

type Column = (context: TrialContext, run: Run) => number[];
const perMemory =
  (f: (context: TrialContext, run: Run, i: number, cache: RunCache) => number): Column =>
  (context, run) => {
    const cache = cacheOf(context, run);
    return run.scored.pool.map((i) => f(context, run, i, cache));
  };
const shapeMatch = (shape: QueryShape): Column =>
  perMemory((context, run, i, cache) =>
    cache.shape === shape && kindFor[shape]((context.kinds[run.scopeConv] as MemoryKinds[])[i] as MemoryKinds) ? 1 : 0,
  );
const prevQuestion = (context: TrialContext, run: Run, i: number): number => {
  const { index } = context.conversations[run.scopeConv] as Conversation;
  const j = index.previous[i] as number;
  if (j < 0) return -1;
  const before = index.memories[j];
  const self = index.memories[i];
  if (!before?.isQuestion || before.speaker === undefined || before.speaker === self?.speaker) return -1;
  return j;
};

export const extraColumns = {
  ansKind: perMemory((context, run, i, cache) =>
    kindFor[cache.shape]((context.kinds[run.scopeConv] as MemoryKinds[])[i] as MemoryKinds) ? 1 : 0,
  ),
  whenTime: shapeMatch("when"),
  howNumber: shapeMatch("number"),
  wherePlace: shapeMatch("where"),
  whoPerson: shapeMatch("who"),
  whyReason: shapeMatch("why"),
  qaPrevCos: perMemory((context, run, i, cache) => {
    const j = prevQuestion(context, run, i);
    return j < 0 ? 0 : Math.max(0, cache.cos[j] as number);
  }),
  qaPrevBm: perMemory((context, run, i, cache) => {
    const j = prevQuestion(context, run, i);
    return j < 0 ? 0 : (cache.bmRel[j] as number);
  }),
  answersQ: perMemory((context, run, i) => (prevQuestion(context, run, i) < 0 ? 0 : 1)),
  qNextCos: perMemory((context, run, i, cache) => {
    const { index } = context.conversations[run.scopeConv] as Conversation;
    const j = index.next[i] as number;
    if (j < 0 || !index.memories[i]?.isQuestion) return 0;
    return Math.max(0, cache.cos[j] as number);
  }),
  bmNoName: perMemory((_, __, i, cache) => cache.bmNoName[i] as number),
  selfSpk: perMemory((context, run, i, cache) => {
    const { index } = context.conversations[run.scopeConv] as Conversation;
    const speaker = index.memories[i]?.speaker;
    return speaker !== undefined && cache.named.has(speaker) && (context.kinds[run.scopeConv] as MemoryKinds[])[i]?.firstPerson ? 1 : 0;
  }),
  youOther: perMemory((context, run, i, cache) => {
    const { index } = context.conversations[run.scopeConv] as Conversation;
    const speaker = index.memories[i]?.speaker;
    return cache.named.size > 0 &&
      speaker !== undefined &&
      !cache.named.has(speaker) &&
      (context.kinds[run.scopeConv] as MemoryKinds[])[i]?.secondPerson
      ? 1
      : 0;
  }),
  cosNoName: perMemory((_, __, i, cache) => cache.cosNoName[i] as number),
  cosName: perMemory((context, run, i, cache) => {
    const { index } = context.conversations[run.scopeConv] as Conversation;
    let best = 0;
    for (const name of cache.named) {
      const vector = context.nameVectorOf.get(name);
      if (vector) best = Math.max(best, cosineSimilarity(vector, (index.memories[i] as { vector: Float32Array }).vector));
    }
    return best;
  }),
  sessCosNoName: perMemory((context, run, i, cache) => {
    const { index } = context.conversations[run.scopeConv] as Conversation;
    const session = index.session[i];
    let best = -1;
    for (let j = i; j >= 0 && index.session[j] === session; j--) best = Math.max(best, cache.cosNoName[j] as number);
    for (let j = i + 1; j < index.memories.length && index.session[j] === session; j++) best = Math.max(best, cache.cosNoName[j] as number);
    return best;
  }),
  cosSomeone: perMemory((_, __, i, cache) => cache.cosSomeone[i] as number),
  cosNoNameRel: perMemory((_, __, i, cache) => (cache.cosNoName[i] as number) - Math.max(...cache.cosNoName)),
  rrCosNoName: (context, run) => {
    const cache = cacheOf(context, run);
    const values = run.scored.pool.map((i) => cache.cosNoName[i] as number);
    const order = [...values.keys()].sort((a, b) => (values[b] as number) - (values[a] as number));
    const rank = new Array<number>(values.length);
    order.forEach((k, r) => {
      rank[k] = 1 / (1 + r);
    });
    return rank;
  },
  nbCosNoName: perMemory((context, run, i, cache) => {
    const { index } = context.conversations[run.scopeConv] as Conversation;
    let best = 0;
    for (const j of [index.previous[i] as number, index.next[i] as number]) if (j >= 0) best = Math.max(best, cache.cosNoName[j] as number);
    return best;
  }),
  sessStart: perMemory((context, run, i) => {
    const { index } = context.conversations[run.scopeConv] as Conversation;
    let position = 0;
    for (let j = index.previous[i] as number; j >= 0; j = index.previous[j] as number) position++;
    return 1 / (1 + position);
  }),
  idfMass: perMemory((context, run, i) => {
    const { index } = context.conversations[run.scopeConv] as Conversation;
    const n = index.memories.length;
    let sum = 0;
    for (const term of index.memories[i]?.tf.keys() ?? []) {
      const f = index.documentFrequency.get(term) ?? 0;
      sum += Math.log(1 + (n - f + 0.5) / (f + 0.5));
    }
    return sum / 100;
  }),
  verb: perMemory((context, run, i) => {
    const { index } = context.conversations[run.scopeConv] as Conversation;
    const verbs = (context.verbsOf.get(run.question.question) ?? []).filter((v) => !["be", "do", "have"].includes(v));
    if (verbs.length === 0) return 0;
    const tf = index.memories[i]?.tf;
    return verbs.filter((v) => tf?.has(v)).length / verbs.length;
  }),
} satisfies Record<string, Column>;
export type Extra = keyof typeof extraColumns;
