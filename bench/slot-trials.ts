import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { FEATURES } from "../src/retrieval/features.js";
import { loadNlp } from "../src/retrieval/nlp.js";
import { type LinearModel, logitOf } from "../src/retrieval/ranker.js";
import { allocateSlots } from "../src/retrieval/slots.js";
import { speakersNamedIn } from "../src/retrieval/speaker-names.js";
import { readLocomo } from "./support/locomo.js";
import { type Conversation, crossValidate, fitLogistic, loadConversations, order, type Run, runsOf } from "./support/ranker-training.js";
import { ingestTurns } from "./support/raw-ingest.js";
import { defaultDataFile, figure } from "./support/report.js";
import { trialMemory } from "./support/trial-memory.js";

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    "embedding-cache": { type: "string" },
    pools: { type: "string", default: "shipped,topic" },
    short: { type: "boolean", default: false },
  },
});
const file = resolve(positionals[0] ?? defaultDataFile);
const { samples } = readLocomo(file);
const { embedder, store, memory, dispose } = trialMemory("engram-slots-", options["embedding-cache"]);
const pct = (x: number) => figure(x * 100, 1);
const mean = (list: readonly number[]) => list.reduce((a, b) => a + b, 0) / (list.length || 1);

/** A held-out ranking of one run: pool positions best logit first, their logits, sessions and positions in time. */
interface Ranking {
  run: Run;
  positions: number[];
  logits: number[];
  sessions: number[];
  at: number[];
  plural: boolean;
  /** Per pool position (ranked order): the memory's speaker; how many speakers the query names. */
  speakers: (string | undefined)[];
  named: number;
  /** The pool positions in the order search returns them (`allocateSlots`). */
  slotted: number[];
}

type Allocate = (ranking: Ranking) => number[];

/** Greedy: each of the first `slots` slots takes the best by `logit − penalty(chosen so far)`. */
const greedy =
  (penalty: (ranking: Ranking, candidate: number, chosen: readonly number[]) => number, slots = 10): Allocate =>
  (ranking) => {
    const left = ranking.positions.map((_, r) => r);
    const chosen: number[] = [];
    while (chosen.length < slots && left.length) {
      let bestAt = 0;
      let bestValue = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < left.length; j++) {
        const r = left[j] as number;
        const value = (ranking.logits[r] as number) - penalty(ranking, r, chosen);
        if (value > bestValue) {
          bestValue = value;
          bestAt = j;
        }
      }
      chosen.push(left.splice(bestAt, 1)[0] as number);
    }
    return [...chosen, ...left].map((r) => ranking.positions[r] as number);
  };

const sameSession = (ranking: Ranking, r: number, chosen: readonly number[]) =>
  chosen.filter((c) => ranking.sessions[c] === ranking.sessions[r]).length;
const nearby = (distance: number) => (ranking: Ranking, r: number, chosen: readonly number[]) =>
  chosen.filter(
    (c) => ranking.sessions[c] === ranking.sessions[r] && Math.abs((ranking.at[c] as number) - (ranking.at[r] as number)) <= distance,
  ).length;

/** At most `cap` memories of a session in the first `slots` slots (then the rest in logit order). */
const capped =
  (cap: number, slots = 10): Allocate =>
  (ranking) => {
    const count = new Map<number, number>();
    const first: number[] = [];
    const rest: number[] = [];
    ranking.positions.forEach((_, r) => {
      const s = ranking.sessions[r] as number;
      if (first.length < slots && (count.get(s) ?? 0) < cap) {
        first.push(r);
        count.set(s, (count.get(s) ?? 0) + 1);
      } else rest.push(r);
    });
    return [...first, ...rest].map((r) => ranking.positions[r] as number);
  };

/** The first 10 − `reserved` by logit, then the best memory of each session not yet represented. */
const reserving =
  (reserved: number): Allocate =>
  (ranking) => {
    const head = ranking.positions.map((_, r) => r).slice(0, 10 - reserved);
    const seen = new Set(head.map((r) => ranking.sessions[r]));
    const extra: number[] = [];
    for (let r = 10 - reserved; r < ranking.positions.length && extra.length < reserved; r++) {
      if (seen.has(ranking.sessions[r] as number)) continue;
      seen.add(ranking.sessions[r] as number);
      extra.push(r);
    }
    const taken = new Set([...head, ...extra]);
    const rest = ranking.positions.map((_, r) => r).filter((r) => !taken.has(r));
    return [...head, ...extra, ...rest].map((r) => ranking.positions[r] as number);
  };

const sameSpeaker = (ranking: Ranking, r: number, chosen: readonly number[]) =>
  chosen.filter((c) => ranking.speakers[c] === ranking.speakers[r]).length;
const whenNamed =
  (least: number, allocate: Allocate): Allocate =>
  (ranking) =>
    ranking.named >= least ? allocate(ranking) : ranking.positions;
/** At most `cap` memories of one speaker in the top 10. */
const speakerCapped =
  (cap: number): Allocate =>
  (ranking) => {
    const count = new Map<string | undefined, number>();
    const first: number[] = [];
    const rest: number[] = [];
    ranking.positions.forEach((_, r) => {
      const s = ranking.speakers[r];
      if (first.length < 10 && (count.get(s) ?? 0) < cap) {
        first.push(r);
        count.set(s, (count.get(s) ?? 0) + 1);
      } else rest.push(r);
    });
    return [...first, ...rest].map((r) => ranking.positions[r] as number);
  };

const shipped: Allocate = (ranking) => ranking.positions;
const onlyPlural =
  (allocate: Allocate): Allocate =>
  (ranking) =>
    ranking.plural ? allocate(ranking) : ranking.positions;
const onlyNotPlural =
  (allocate: Allocate): Allocate =>
  (ranking) =>
    ranking.plural ? ranking.positions : allocate(ranking);

interface Family {
  name: string;
  members: { name: string; allocate: Allocate }[];
}

function families(): Family[] {
  const list: Family[] = [
    { name: "logit order", members: [{ name: "logit order", allocate: shipped }] },
    { name: "shipped slots", members: [{ name: "shipped slots (allocateSlots)", allocate: (ranking) => ranking.slotted }] },
  ];
  const lambdas = [0.25, 0.5, 0.75, 1, 1.5, 2, 3];
  const small = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1];
  list.push({
    name: "speaker penalty, queries naming two speakers",
    members: small.map((l) => ({
      name: `speaker penalty λ ${l}, two named`,
      allocate: whenNamed(
        2,
        greedy((g, r, c) => l * sameSpeaker(g, r, c)),
      ),
    })),
  });
  list.push({
    name: "speaker cap, queries naming two speakers",
    members: [4, 5, 6, 7, 8].map((c) => ({ name: `speaker cap ${c}, two named`, allocate: whenNamed(2, speakerCapped(c)) })),
  });
  list.push({
    name: "speaker penalty, all queries",
    members: small.map((l) => ({ name: `speaker penalty λ ${l}, all`, allocate: greedy((g, r, c) => l * sameSpeaker(g, r, c)) })),
  });
  list.push({
    name: "nearby 2 penalty, small λ",
    members: small.map((l) => ({ name: `nearby 2 λ ${l}`, allocate: greedy((g, r, c) => l * nearby(2)(g, r, c)) })),
  });
  list.push({
    name: "nearby 2 penalty 0.25 + speaker penalty (two named)",
    members: small.map((l) => ({
      name: `nearby 2 λ 0.25 + speaker λ ${l}, two named`,
      allocate: greedy((g, r, c) => 0.25 * nearby(2)(g, r, c) + (g.named >= 2 ? l * sameSpeaker(g, r, c) : 0)),
    })),
  });
  const grid: Family["members"] = [];
  for (const n of [0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4])
    for (const sp of [0, 0.25, 0.5, 0.75, 1, 1.5, 2])
      grid.push({
        name: `nearby 2 λ ${n} + speaker λ ${sp}, two named`,
        allocate: greedy((g, r, c) => n * nearby(2)(g, r, c) + (g.named >= 2 ? sp * sameSpeaker(g, r, c) : 0)),
      });
  list.push({ name: "grid", members: grid });
  const wide: Family["members"] = [];
  for (const d of [1, 2, 3])
    for (const n of [0.1, 0.15, 0.2, 0.25, 0.3])
      for (const sp of [0.5, 0.75, 1])
        wide.push({
          name: `nearby ${d} λ ${n} + speaker λ ${sp}, two named`,
          allocate: greedy((g, r, c) => n * nearby(d)(g, r, c) + (g.named >= 2 ? sp * sameSpeaker(g, r, c) : 0)),
        });
  list.push({ name: "wide grid", members: wide });
  if (options.short) return list.slice(0, 2).concat(list.slice(-2));
  list.push({
    name: "session penalty λ · (memories of its session already chosen), logits",
    members: lambdas.map((l) => ({ name: `session penalty λ ${l}`, allocate: greedy((g, r, c) => l * sameSession(g, r, c)) })),
  });
  list.push({
    name: "session penalty λ · [its session already chosen], logits",
    members: lambdas.map((l) => ({ name: `session seen λ ${l}`, allocate: greedy((g, r, c) => (sameSession(g, r, c) > 0 ? l : 0)) })),
  });
  for (const d of [1, 2, 4])
    list.push({
      name: `nearby penalty λ · (chosen memories ≤ ${d} apart in its session)`,
      members: lambdas.map((l) => ({ name: `nearby ${d} λ ${l}`, allocate: greedy((g, r, c) => l * nearby(d)(g, r, c)) })),
    });
  list.push({
    name: "cap per session in the top 10",
    members: [1, 2, 3, 4].map((c) => ({ name: `cap ${c} per session`, allocate: capped(c) })),
  });
  list.push({
    name: "reserve the last r slots for unrepresented sessions",
    members: [1, 2, 3, 4, 5].map((r) => ({ name: `reserve ${r}`, allocate: reserving(r) })),
  });
  for (const [tag, wrap] of [
    ["plural queries only", onlyPlural],
    ["non-plural queries only", onlyNotPlural],
  ] as const) {
    list.push({
      name: `session penalty, ${tag}`,
      members: lambdas.map((l) => ({
        name: `session penalty λ ${l}, ${tag}`,
        allocate: wrap(greedy((g, r, c) => l * sameSession(g, r, c))),
      })),
    });
    list.push({
      name: `reserve, ${tag}`,
      members: [1, 2, 3, 4, 5].map((r) => ({ name: `reserve ${r}, ${tag}`, allocate: wrap(reserving(r)) })),
    });
    list.push({
      name: `cap, ${tag}`,
      members: [1, 2, 3].map((c) => ({ name: `cap ${c}, ${tag}`, allocate: wrap(capped(c)) })),
    });
  }
  return list;
}

interface Figures {
  r5: number[];
  r10: number[];
  all10: number[];
}

function figuresOf(rankings: readonly Ranking[], allocate: Allocate): Figures {
  const r5: number[] = [];
  const r10: number[] = [];
  const all10: number[] = [];
  for (const ranking of rankings) {
    const positions = allocate(ranking);
    const { run } = ranking;
    const found = (k: number) => new Set(positions.slice(0, k).flatMap((p) => run.evidence[p] as number[])).size;
    const total = run.question.evidence.length;
    r5.push(found(5) / total);
    r10.push(found(10) / total);
    all10.push(found(10) === total ? 1 : 0);
  }
  return { r5, r10, all10 };
}

function line(name: string, rankings: readonly Ranking[], f: Figures): string {
  const categories = new Map<string, number[]>();
  rankings.forEach((ranking, q) => {
    const c = ranking.run.question.category;
    categories.set(c, [...(categories.get(c) ?? []), f.r10[q] as number]);
  });
  const byCategory = [...categories.entries()]
    .sort()
    .map(([c, list]) => `c${c} ${pct(mean(list))}`)
    .join(" ");
  return `${name.padEnd(58)} R@5 ${pct(mean(f.r5))}  R@10 ${pct(mean(f.r10))}  all@10 ${pct(mean(f.all10))}  ${byCategory}`;
}

/** Each conversation ranked with the family member that does best on all@10 (then R@10) over the others. */
function nested(family: Family, rankings: readonly Ranking[], conversations: number): { figures: Figures; chosen: string[] } {
  const per = family.members.map((member) => figuresOf(rankings, member.allocate));
  const out: Figures = { r5: [], r10: [], all10: [] };
  const chosen: string[] = [];
  const pick: number[] = [];
  for (let k = 0; k < conversations; k++) {
    let best = 0;
    let bestValue = Number.NEGATIVE_INFINITY;
    per.forEach((f, m) => {
      let all = 0;
      let r10 = 0;
      rankings.forEach((ranking, q) => {
        if (ranking.run.conv === k) return;
        all += f.all10[q] as number;
        r10 += f.r10[q] as number;
      });
      const value = all + r10 * 1e-3;
      if (value > bestValue + 1e-9) {
        bestValue = value;
        best = m;
      }
    });
    pick.push(best);
    chosen.push((family.members[best] as { name: string }).name);
  }
  rankings.forEach((ranking, q) => {
    const f = per[pick[ranking.run.conv] as number] as Figures;
    out.r5.push(f.r5[q] as number);
    out.r10.push(f.r10[q] as number);
    out.all10.push(f.all10[q] as number);
  });
  return { figures: out, chosen };
}

const logitsByPosition = (run: Run, ranker: LinearModel) => run.scored.rows.map((row) => logitOf(ranker, row));

/**
 * The query's shape as ranker inputs: "the question has a plural noun" times a context signal (a
 * query-level 0 / 1 alone shifts every memory of a query alike and cannot reorder them).
 */
function inputTrials(conversations: readonly Conversation[], on: readonly Run[], pluralOf: (text: string) => boolean) {
  const plural = on.map((run) => (pluralOf(run.question.question) ? 1 : 0));
  for (const signal of ["sess", "nb", "bmW", "spk", "cosTopic"] as const) {
    const k = FEATURES.indexOf(signal);
    const names = [...FEATURES, `plural×${signal}`];
    const runs = on.map((run, q) => ({
      ...run,
      scored: {
        ...run.scored,
        rows: run.scored.rows.map((row) => Float64Array.from([...row, (plural[q] as number) * (row[k] as number)])),
      },
    }));
    const folds = conversations.map((_, c) => {
      const rows: Float64Array[] = [];
      const labels: number[] = [];
      for (const run of runs) {
        if (run.conv === c) continue;
        run.scored.rows.forEach((row, p) => {
          rows.push(row);
          labels.push((run.evidence[p] as number[]).length > 0 ? 1 : 0);
        });
      }
      return fitLogistic(rows, labels, names);
    });
    const rankings = runs.map((run) => {
      const { positions } = order(run, folds[run.conv] as LinearModel);
      return { run, positions } as unknown as Ranking;
    });
    console.log(line(`ranker input: plural noun × ${signal} (logit order)`, rankings, figuresOf(rankings, shipped)));
  }
}

try {
  const started = performance.now();
  const ingested = await ingestTurns(memory, samples);
  const conversations = await loadConversations(samples, store, embedder, ingested.sources);
  console.log(`ingested and indexed in ${figure((performance.now() - started) / 1000, 0)} s`);
  const nlp = await loadNlp();
  const { default: winkNlp } = await import("wink-nlp");
  const { default: model } = await import("wink-eng-lite-web-model");
  const wink = winkNlp(model);
  const its = wink.its;
  // A question asks for several things when one of its nouns is plural (its lemma differs from its form).
  const pluralOf = (text: string) => {
    let plural = false;
    wink
      .readDoc(text)
      .tokens()
      .each((token: import("wink-nlp").ItemToken) => {
        if (token.out(its.pos) !== "NOUN") return;
        const normal = token.out(its.normal) as string;
        if ((token.out(its.lemma as never) as string) !== normal && /s$/.test(normal)) plural = true;
      });
    return plural;
  };
  void nlp;
  for (const pool of options.pools?.split(",") ?? []) {
    const on = await runsOf(conversations, (i) => i, { topicPool: pool === "topic" });
    if (!options.short) inputTrials(conversations, on, pluralOf);
    const inPool = on.map((run) => new Set(run.evidence.flat()).size / run.question.evidence.length);
    const { folds } = crossValidate(conversations, on);
    const rankings: Ranking[] = on.map((run) => {
      const { positions, logits } = order(run, folds[run.conv] as LinearModel);
      const index = (conversations[run.conv] as Conversation).index;
      return {
        run,
        positions,
        logits,
        sessions: positions.map((k) => index.session[run.scored.pool[k] as number] as number),
        at: positions.map((k) => run.scored.pool[k] as number),
        plural: pluralOf(run.question.question),
        speakers: positions.map((k) => (index.memories[run.scored.pool[k] as number] as Conversation["index"]["memories"][number]).speaker),
        named: speakersNamedIn(run.question.question, index.speakers, (term) => index.documentFrequency.has(term)).names.size,
        slotted: allocateSlots(index, run.scored, logitsByPosition(run, folds[run.conv] as LinearModel), positions, 10),
      };
    });
    const plural = rankings.filter((r) => r.plural).length;
    console.log(`${rankings.filter((r) => r.named >= 2).length} questions name two speakers`);
    console.log(
      `\npool: ${pool}; evidence in the pool ${pct(mean(inPool))} %; ${plural} of ${rankings.length} questions have a plural noun`,
    );
    for (const family of families()) {
      for (const member of family.members) console.log(line(member.name, rankings, figuresOf(rankings, member.allocate)));
      if (family.members.length > 1) {
        const { figures, chosen } = nested(family, rankings, conversations.length);
        const counts = new Map<string, number>();
        for (const c of chosen) counts.set(c, (counts.get(c) ?? 0) + 1);
        console.log(
          line(`  nested choice (${[...counts].map(([c, n]) => `${c.replace(/,.*$/, "")} ×${n}`).join("; ")})`, rankings, figures),
        );
      }
    }
  }
} finally {
  await dispose();
}
