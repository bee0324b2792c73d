// Training data, leave-one-conversation-out fitting and calibration of the ranker and of the
// cut-off, from the product's own stages (src/retrieval): used by bench/train-ranker.ts (which
// writes the shipped weights) and bench/recall.ts (which reports held-out figures).
import type { Embedder, MemoryRecord, VectorStore } from "../../src/index.js";
import { type CutoffModel, GATE_FEATURES, gateRow } from "../../src/retrieval/cutoff.js";
import { analyseQuery, FEATURES, type Scored, scoreFeatures } from "../../src/retrieval/features.js";
import { loadNlp } from "../../src/retrieval/nlp.js";
import { type LinearModel, logitOf, sigmoid } from "../../src/retrieval/ranker.js";
import { type ScopeIndex, ScopeIndexCache } from "../../src/retrieval/scope-index.js";
import { allocateSlots } from "../../src/retrieval/slots.js";
import { withoutSpeakerNames } from "../../src/retrieval/speaker-names.js";
import type { ValidScope } from "../../src/scope.js";
import type { Question, Sample } from "./locomo.js";

/** A conversation as ranking sees it: its scope's index, and the turns each memory holds. */
export interface Conversation {
  sampleId: string;
  speakers: readonly string[];
  index: ScopeIndex;
  scope: ValidScope;
  /** Per memory of the index: the dia_ids it holds. */
  sources: string[][];
  questions: { question: Question; vector: Float32Array }[];
  /** Embeds a question without a scope's speakers' names, as search does. */
  embedder: Embedder;
}

/** One question searched in one conversation's scope (its own: on-topic; another's: off-topic). */
export interface Run {
  conv: number;
  scopeConv: number;
  question: Question;
  scored: Scored;
  /** Per pool entry: the indices of the question's evidence it holds (empty for off-topic runs). */
  evidence: number[][];
}

export async function loadConversations(
  samples: readonly Sample[],
  store: VectorStore,
  embedder: Embedder,
  sources: ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>,
): Promise<Conversation[]> {
  const nlp = await loadNlp();
  const cache = new ScopeIndexCache();
  const conversations: Conversation[] = [];
  for (const sample of samples) {
    const scope = { userId: sample.sampleId } as ValidScope;
    const index = await cache.index(store, scope, nlp);
    const owned = sources.get(sample.sampleId) ?? new Map();
    const asked = sample.questions.filter((question) => question.evidence.length > 0);
    const vectors = await embedder.embed(asked.map((question) => question.question));
    conversations.push({
      sampleId: sample.sampleId,
      speakers: sample.speakers,
      index,
      scope,
      sources: index.memories.map((memory) => [...(owned.get(memory.record.id) ?? [])]),
      questions: asked.map((question, i) => ({ question, vector: vectors[i] as Float32Array })),
      embedder,
    });
  }
  return conversations;
}

/** Each conversation's questions in its own scope, or in the scope `pair(i)` gives. */
export async function runsOf(
  conversations: readonly Conversation[],
  pair: (i: number) => number = (i) => i,
  scoring: { topicPool?: boolean } = {},
): Promise<Run[]> {
  const nlp = await loadNlp();
  const runs: Run[] = [];
  for (const [conv, conversation] of conversations.entries()) {
    const scopeConv = pair(conv);
    const target = conversations[scopeConv] as Conversation;
    const topics = conversation.questions.map(({ question }) =>
      withoutSpeakerNames(question.question, target.index.speakers, (term) => target.index.documentFrequency.has(term)),
    );
    const named = topics.filter((topic) => topic !== undefined);
    const embedded = named.length > 0 ? await conversation.embedder.embed(named) : [];
    const topicVectors = topics.map((topic) => (topic === undefined ? undefined : embedded[named.indexOf(topic)]));
    for (const [q, { question, vector }] of conversation.questions.entries()) {
      const query = analyseQuery(question.question, vector, nlp, target.index.latestDay, topicVectors[q]);
      const scored = scoreFeatures(target.index, query, scoring);
      const evidence = scored.pool.map((i) =>
        scopeConv === conv ? question.evidence.flatMap((id, k) => ((target.sources[i] as string[]).includes(id) ? [k] : [])) : [],
      );
      runs.push({ conv, scopeConv, question, scored, evidence });
    }
  }
  return runs;
}

/** The conversation after i; the first after i that shares no speaker with it (else the next). */
export const nextConversation = (count: number) => (i: number) => (i + 1) % count;
export function noSharedSpeaker(conversations: readonly Conversation[]) {
  return (i: number) => {
    const own = (conversations[i] as Conversation).speakers;
    for (let d = 1; d < conversations.length; d++) {
      const j = (i + d) % conversations.length;
      if (!(conversations[j] as Conversation).speakers.some((speaker) => own.includes(speaker))) return j;
    }
    return (i + 1) % conversations.length;
  };
}

// ── logistic regression (Newton's method, L2 penalty on the weights) ─────────────────────────

export function fitLogistic(
  rows: readonly ArrayLike<number>[],
  labels: readonly number[],
  features: readonly string[],
  l2 = 1,
): LinearModel {
  const d = features.length;
  const count = rows.length;
  const mean = features.map((_, k) => rows.reduce((sum, row) => sum + (row[k] as number), 0) / count);
  const std = features.map(
    (_, k) => Math.sqrt(rows.reduce((sum, row) => sum + ((row[k] as number) - (mean[k] as number)) ** 2, 0) / count) || 1,
  );
  const z = rows.map((row) =>
    Float64Array.from([...features.map((_, k) => ((row[k] as number) - (mean[k] as number)) / (std[k] as number)), 1]),
  );
  let w = new Float64Array(d + 1);
  for (let iteration = 0; iteration < 30; iteration++) {
    const gradient = new Float64Array(d + 1);
    const hessian = Array.from({ length: d + 1 }, () => new Float64Array(d + 1));
    for (let r = 0; r < count; r++) {
      const x = z[r] as Float64Array;
      let s = 0;
      for (let k = 0; k <= d; k++) s += (w[k] as number) * (x[k] as number);
      const p = sigmoid(s);
      const error = p - (labels[r] as number);
      const h = p * (1 - p);
      for (let k = 0; k <= d; k++) {
        gradient[k] = (gradient[k] as number) + error * (x[k] as number);
        const line = hessian[k] as Float64Array;
        for (let l = k; l <= d; l++) line[l] = (line[l] as number) + h * (x[k] as number) * (x[l] as number);
      }
    }
    for (let k = 0; k <= d; k++) for (let l = 0; l < k; l++) (hessian[k] as Float64Array)[l] = (hessian[l] as Float64Array)[k] as number;
    for (let k = 0; k < d; k++) {
      gradient[k] = (gradient[k] as number) + l2 * (w[k] as number);
      (hessian[k] as Float64Array)[k] = ((hessian[k] as Float64Array)[k] as number) + l2;
    }
    const step = solve(hessian, gradient);
    w = w.map((value, k) => value - (step[k] as number));
    if (Math.max(...step.map(Math.abs)) < 1e-7) break;
  }
  return { features: [...features], mean, std, w: [...w.slice(0, d)], b: w[d] as number };
}

function solve(matrix: Float64Array[], vector: Float64Array): number[] {
  const n = vector.length;
  const m = matrix.map((row, i) => [...row, vector[i] as number]);
  for (let i = 0; i < n; i++) {
    let pivot = i;
    for (let r = i + 1; r < n; r++)
      if (Math.abs((m[r] as number[])[i] as number) > Math.abs((m[pivot] as number[])[i] as number)) pivot = r;
    [m[i], m[pivot]] = [m[pivot] as number[], m[i] as number[]];
    const row = m[i] as number[];
    const value = (row[i] as number) || 1e-12;
    for (let r = 0; r < n; r++) {
      if (r === i) continue;
      const other = m[r] as number[];
      const f = (other[i] as number) / value;
      for (let c = i; c <= n; c++) other[c] = (other[c] as number) - f * (row[c] as number);
    }
  }
  return m.map((row, i) => (row[n] as number) / ((row[i] as number) || 1e-12));
}

// ── ranker ───────────────────────────────────────────────────────────────────────────────────

export function fitRanker(runs: readonly Run[]): LinearModel {
  const rows: Float64Array[] = [];
  const labels: number[] = [];
  for (const run of runs) {
    run.scored.rows.forEach((row, k) => {
      rows.push(row);
      labels.push((run.evidence[k] as number[]).length > 0 ? 1 : 0);
    });
  }
  return fitLogistic(rows, labels, FEATURES);
}

/** Pool positions of a run, best logit first, with their logits. */
export function order(run: Run, ranker: LinearModel): { positions: number[]; logits: number[] } {
  const logits = run.scored.rows.map((row) => logitOf(ranker, row));
  const positions = [...logits.keys()].sort((a, b) => (logits[b] as number) - (logits[a] as number) || a - b);
  return { positions, logits: positions.map((k) => logits[k] as number) };
}

/** Pool positions of a run in result order (`allocateSlots` over the first `limit`), as search returns them. */
export function resultOrder(conversation: Conversation, run: Run, ranker: LinearModel, limit = 10): number[] {
  const { positions } = order(run, ranker);
  const logits = run.scored.rows.map((row) => logitOf(ranker, row));
  return allocateSlots(conversation.index, run.scored, logits, positions, limit);
}

/** One ranker per conversation, trained without it, and one trained on all. */
export function crossValidate(conversations: readonly Conversation[], runs: readonly Run[]): { folds: LinearModel[]; all: LinearModel } {
  const folds = conversations.map((_, k) => fitRanker(runs.filter((run) => run.conv !== k)));
  return { folds, all: fitRanker(runs) };
}

// ── cut-off ──────────────────────────────────────────────────────────────────────────────────

const recallOf = (run: Run, positions: readonly number[]) => {
  const found = new Set(positions.flatMap((k) => run.evidence[k] as number[]));
  return found.size / run.question.evidence.length;
};

interface GateRun {
  run: Run;
  /** Pool positions in result order (slots allocated), and the logits best first. */
  positions: number[];
  logits: number[];
  /** Per pool position, its logit. */
  byPosition: number[];
  row: Float64Array;
}
const gateRun = (run: Run, ranker: LinearModel, conversations?: readonly Conversation[]): GateRun => {
  const { positions, logits } = order(run, ranker);
  const byPosition = run.scored.rows.map((row) => logitOf(ranker, row));
  const target = conversations?.[run.scopeConv];
  const slotted = target ? allocateSlots(target.index, run.scored, byPosition, positions, 10) : positions;
  return { run, positions: slotted, logits, byPosition, row: gateRow(run.scored, logits) };
};

/** The positions the cut-off shows: those whose logit reaches the `kept`-th best, in result order, at most 10. */
const shownBy = (r: GateRun, kept: number) => {
  const floor = kept === 0 ? Number.POSITIVE_INFINITY : (r.logits[kept - 1] as number);
  return r.positions.filter((k) => (r.byPosition[k] as number) >= floor).slice(0, 10);
};

/** How many results the cut-off keeps (of at most `limit`). */
export function keptBy(model: CutoffModel, logits: readonly number[], row: ArrayLike<number>, limit = 10): number {
  if (logits.length === 0 || sigmoid(logitOf(model, row)) < model.minProbability) return 0;
  const floor = (logits[0] as number) - model.gap;
  let kept = 0;
  while (kept < Math.min(limit, logits.length) && (logits[kept] as number) >= floor) kept++;
  return kept;
}

/**
 * The gate (on-topic runs against off-topic runs) and the least gate probability and largest gap
 * that keep at least `keep` of the uncut evidence found in the top 10, with the fewest off-topic
 * results.
 */
export function fitCutoff(
  on: readonly Run[],
  off: readonly Run[],
  ranker: LinearModel,
  keep = 0.96,
  conversations?: readonly Conversation[],
): CutoffModel {
  const onRuns = on.map((run) => gateRun(run, ranker, conversations));
  const offRuns = off.map((run) => gateRun(run, ranker, conversations));
  const gate = fitLogistic(
    [...onRuns, ...offRuns].map((r) => r.row),
    [...onRuns.map(() => 1), ...offRuns.map(() => 0)],
    GATE_FEATURES,
  );
  const uncut = onRuns.reduce((sum, r) => sum + recallOf(r.run, r.positions.slice(0, 10)), 0);
  let best = { minProbability: 0, gap: 99, injected: Number.POSITIVE_INFINITY, kept: 0 };
  for (let g = 0; g <= 0.9 + 1e-9; g += 0.05) {
    for (const gap of [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 99]) {
      const model = { ...gate, minProbability: g, gap };
      const kept = onRuns.reduce((sum, r) => sum + recallOf(r.run, shownBy(r, keptBy(model, r.logits, r.row))), 0) / uncut;
      if (kept < keep) continue;
      const injected = offRuns.reduce((sum, r) => sum + keptBy(model, r.logits, r.row), 0) / (offRuns.length || 1);
      if (injected < best.injected - 1e-9 || (Math.abs(injected - best.injected) < 1e-9 && kept > best.kept))
        best = { minProbability: Number(g.toFixed(2)), gap, injected, kept };
    }
  }
  return { ...gate, minProbability: best.minProbability, gap: best.gap };
}

export interface CutoffReport {
  pairing: string;
  /** Held-out: the fold's ranker and cut-off were fitted without the scored conversation. */
  uncutRecall10: number;
  cutRecall10: number;
  keptShare: number;
  memoriesPerQuery: number;
  offTopicPerQuery: number;
  offTopicAnyShare: number;
  /** Off-topic queries naming a speaker of the scope searched, and the others. */
  namingSpeaker: { queries: number; perQuery: number };
  notNaming: { queries: number; perQuery: number };
  folds: CutoffModel[];
}

/** Leave-one-conversation-out evaluation of the cut-off for one pairing of scopes. */
export function crossValidateCutoff(
  conversations: readonly Conversation[],
  on: readonly Run[],
  off: readonly Run[],
  folds: readonly LinearModel[],
  pairing: string,
): CutoffReport {
  let uncut = 0;
  let cut = 0;
  let shown = 0;
  const injected: { count: number; naming: boolean }[] = [];
  const cutoffs: CutoffModel[] = [];
  conversations.forEach((_, k) => {
    const ranker = folds[k] as LinearModel;
    const train = (runs: readonly Run[]) => runs.filter((run) => run.conv !== k && run.scopeConv !== k);
    const model = fitCutoff(train(on), train(off), ranker, undefined, conversations);
    cutoffs.push(model);
    for (const run of on.filter((r) => r.conv === k)) {
      const r = gateRun(run, ranker, conversations);
      const kept = keptBy(model, r.logits, r.row);
      uncut += recallOf(run, r.positions.slice(0, 10));
      cut += recallOf(run, shownBy(r, kept));
      shown += kept;
    }
    for (const run of off.filter((r) => r.conv === k)) {
      const r = gateRun(run, ranker, conversations);
      injected.push({ count: keptBy(model, r.logits, r.row), naming: r.row[GATE_FEATURES.indexOf("namesSpeaker")] === 1 });
    }
  });
  const onCount = on.length || 1;
  const per = (list: typeof injected) => ({
    queries: list.length,
    perQuery: list.reduce((sum, x) => sum + x.count, 0) / (list.length || 1),
  });
  return {
    pairing,
    uncutRecall10: uncut / onCount,
    cutRecall10: cut / onCount,
    keptShare: cut / (uncut || 1),
    memoriesPerQuery: shown / onCount,
    offTopicPerQuery: per(injected).perQuery,
    offTopicAnyShare: injected.filter((x) => x.count > 0).length / (injected.length || 1),
    namingSpeaker: per(injected.filter((x) => x.naming)),
    notNaming: per(injected.filter((x) => !x.naming)),
    folds: cutoffs,
  };
}

/** The memory records a run's ranking returns (top `limit`), for scoring. */
export function recordsOf(
  conversation: Conversation,
  run: Run,
  positions: readonly number[],
): { record: MemoryRecord; sources: string[] }[] {
  return positions.map((k) => {
    const i = run.scored.pool[k] as number;
    return {
      record: (conversation.index.memories[i] as ScopeIndex["memories"][number]).record,
      sources: conversation.sources[i] as string[],
    };
  });
}
