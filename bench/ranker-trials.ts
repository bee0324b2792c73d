import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { FEATURES } from "../src/retrieval/features.js";
import type { LinearModel } from "../src/retrieval/ranker.js";
import { readLocomo } from "./support/locomo.js";
import {
  type Conversation,
  crossValidateCutoff,
  fitLogistic,
  loadConversations,
  nextConversation,
  order,
  type Run,
  runsOf,
} from "./support/ranker-training.js";
import { ingestTurns } from "./support/raw-ingest.js";
import { defaultDataFile, figure } from "./support/report.js";
import { trialMemory } from "./support/trial-memory.js";
import { type Extra, extraColumns, type TrialContext } from "./support/trial-signals.js";

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    "embedding-cache": { type: "string" },
    only: { type: "string" },
    cutoff: { type: "boolean", default: false },
    someone: { type: "boolean", default: false },
    without: { type: "string" },
  },
});
const file = resolve(positionals[0] ?? defaultDataFile);
// Shipped signals left out of every trial (`--without cosTopic`): trials then stand on the others.
const dropped = new Set(options.without?.split(",") ?? []);
const kept = FEATURES.flatMap((name, k) => (dropped.has(name) ? [] : [k]));

const { samples } = readLocomo(file);
const { embedder, store, memory, dispose } = trialMemory("engram-trials-", options["embedding-cache"]);
const pct = (x: number) => figure(x * 100, 1);

type Fit = (runs: readonly Run[], names: readonly string[]) => LinearModel;
const pointwise: Fit = (runs, names) => {
  const rows: Float64Array[] = [];
  const labels: number[] = [];
  for (const run of runs)
    run.scored.rows.forEach((row, k) => {
      rows.push(row);
      labels.push((run.evidence[k] as number[]).length > 0 ? 1 : 0);
    });
  return fitLogistic(rows, labels, names);
};

/** RankNet-style: logistic on (positive − negative) differences within a query, then a Platt scale for probabilities. */
const pairwise =
  (negatives: number, balanced: boolean): Fit =>
  (runs, names) => {
    const base = pointwise(runs, names);
    const d = names.length;
    const z = (row: ArrayLike<number>) =>
      Float64Array.from({ length: d }, (_, k) => ((row[k] as number) - (base.mean[k] as number)) / ((base.std[k] as number) || 1));
    const diffs: Float64Array[] = [];
    const weights: number[] = [];
    for (const run of runs) {
      const { positions } = order(run, base);
      const pos = positions.filter((k) => (run.evidence[k] as number[]).length > 0);
      const neg = positions.filter((k) => (run.evidence[k] as number[]).length === 0).slice(0, negatives);
      if (!pos.length || !neg.length) continue;
      const weight = balanced ? 1 / (pos.length * neg.length) : 1;
      for (const p of pos) {
        const zp = z(run.scored.rows[p] as Float64Array);
        for (const n of neg) {
          const zn = z(run.scored.rows[n] as Float64Array);
          diffs.push(zp.map((v, k) => v - (zn[k] as number)));
          weights.push(weight);
        }
      }
    }
    const total = weights.reduce((a, b) => a + b, 0);
    const scale = diffs.length / total;
    let w = new Float64Array(d);
    for (let iteration = 0; iteration < 30; iteration++) {
      const gradient = new Float64Array(d);
      const hessian = Array.from({ length: d }, () => new Float64Array(d));
      diffs.forEach((x, r) => {
        let s = 0;
        for (let k = 0; k < d; k++) s += (w[k] as number) * (x[k] as number);
        const p = 1 / (1 + Math.exp(-s));
        const c = (weights[r] as number) * scale;
        const error = (p - 1) * c;
        const h = p * (1 - p) * c;
        for (let k = 0; k < d; k++) {
          gradient[k] = (gradient[k] as number) + error * (x[k] as number);
          const line = hessian[k] as Float64Array;
          for (let l = k; l < d; l++) line[l] = (line[l] as number) + h * (x[k] as number) * (x[l] as number);
        }
      });
      for (let k = 0; k < d; k++) {
        for (let l = 0; l < k; l++) (hessian[k] as Float64Array)[l] = (hessian[l] as Float64Array)[k] as number;
        gradient[k] = (gradient[k] as number) + (w[k] as number);
        (hessian[k] as Float64Array)[k] = ((hessian[k] as Float64Array)[k] as number) + 1;
      }
      const step = solveSmall(hessian, gradient);
      w = w.map((v, k) => v - (step[k] as number));
      if (Math.max(...step.map(Math.abs)) < 1e-7) break;
    }
    // Platt: probability = sigmoid(a + s · score), refit pointwise.
    const scores: Float64Array[] = [];
    const labels: number[] = [];
    for (const run of runs)
      run.scored.rows.forEach((row, k) => {
        const x = z(row);
        let s = 0;
        for (let j = 0; j < d; j++) s += (w[j] as number) * (x[j] as number);
        scores.push(Float64Array.of(s));
        labels.push((run.evidence[k] as number[]).length > 0 ? 1 : 0);
      });
    const platt = fitLogistic(scores, labels, ["score"], 0);
    const s = (platt.w[0] as number) / (platt.std[0] as number);
    return {
      features: [...names],
      mean: base.mean,
      std: base.std,
      w: [...w].map((v) => v * s),
      b: (platt.b as number) - s * (platt.mean[0] as number),
    };
  };

function solveSmall(matrix: Float64Array[], vector: Float64Array): number[] {
  const n = vector.length;
  const m = matrix.map((row, i) => [...row, vector[i] as number]);
  for (let i = 0; i < n; i++) {
    let pivot = i;
    for (let r = i + 1; r < n; r++) if (Math.abs(m[r]![i]!) > Math.abs(m[pivot]![i]!)) pivot = r;
    [m[i], m[pivot]] = [m[pivot]!, m[i]!];
    const row = m[i]!;
    const value = row[i] || 1e-12;
    for (let r = 0; r < n; r++) {
      if (r === i) continue;
      const f = m[r]![i]! / value;
      for (let c = i; c <= n; c++) m[r]![c] = m[r]![c]! - f * row[c]!;
    }
  }
  return m.map((row, i) => row[n]! / (row[i] || 1e-12));
}

interface Trial {
  name: string;
  extras: readonly Extra[];
  fit?: Fit;
}

try {
  const ingested = await ingestTurns(memory, samples);
  const conversations = await loadConversations(samples, store, embedder, ingested.sources);
  const on = await runsOf(conversations);
  const off = options.cutoff ? await runsOf(conversations, nextConversation(conversations.length)) : [];
  const inPool = on.map((run) => new Set(run.evidence.flat()).size / run.question.evidence.length);
  console.log(
    `evidence in the first stage's pool of ${on[0]?.scored.pool.length}: ${pct(inPool.reduce((a, b) => a + b, 0) / (inPool.length || 1))} %`,
  );
  const context = await TrialContextOf(conversations, [...on, ...off], options.someone ?? false);
  const allExtras = Object.keys(extraColumns);
  const trials: Trial[] = [
    { name: "shipped", extras: [] },
    ...allExtras.map((name) => ({ name, extras: [name as Extra] })),
    { name: "pairwise (top 50 negatives)", extras: [], fit: pairwise(50, false) },
    { name: "pairwise (all negatives, query-balanced)", extras: [], fit: pairwise(150, true) },
  ];
  const only = options.only?.split(",");
  for (const trial of only ? trials.filter((t) => only.includes(t.name)) : trials) evaluate(trial, conversations, on, off, context);
  if (only)
    for (const combined of only.filter((o) => o.includes("+")))
      evaluate({ name: combined, extras: combined.split("+") as Extra[] }, conversations, on, off, context);
} finally {
  await dispose();
}

async function TrialContextOf(conversations: readonly Conversation[], runs: readonly Run[], someone: boolean): Promise<TrialContext> {
  const { trialContext } = await import("./support/trial-signals.js");
  return trialContext(conversations, (texts) => embedder.embed(texts), runs, someone);
}

function extend(runs: readonly Run[], extras: readonly Extra[], context: TrialContext): Run[] {
  if (extras.length === 0 && dropped.size === 0) return [...runs];
  return runs.map((run) => {
    const columns = extras.map((extra) => extraColumns[extra](context, run));
    const rows = run.scored.rows.map((row, k) =>
      Float64Array.from([...kept.map((j) => row[j] as number), ...columns.map((column) => column[k] as number)]),
    );
    return { ...run, scored: { ...run.scored, rows } };
  });
}

function evaluate(trial: Trial, conversations: readonly Conversation[], on: readonly Run[], off: readonly Run[], context: TrialContext) {
  const started = performance.now();
  const names = [...FEATURES.filter((name) => !dropped.has(name)), ...trial.extras];
  const runs = extend(on, trial.extras, context);
  const train = trial.fit ?? pointwise;
  const folds = conversations.map((_, k) =>
    train(
      runs.filter((run) => run.conv !== k),
      names,
    ),
  );
  const recall: number[] = [];
  const all: number[] = [];
  const byCategory = new Map<string, number[]>();
  for (const run of runs) {
    const { positions } = order(run, folds[run.conv] as LinearModel);
    const found = new Set(positions.slice(0, 10).flatMap((k) => run.evidence[k] as number[]));
    const r = found.size / run.question.evidence.length;
    recall.push(r);
    all.push(found.size === run.question.evidence.length ? 1 : 0);
    byCategory.set(run.question.category, [...(byCategory.get(run.question.category) ?? []), r]);
  }
  const mean = (list: number[]) => list.reduce((a, b) => a + b, 0) / (list.length || 1);
  let cut = "";
  if (off.length) {
    const report = crossValidateCutoff(conversations, runs, extend(off, trial.extras, context), folds, "next");
    cut = ` | kept ${pct(report.keptShare)} % (${figure(report.memoriesPerQuery, 2)}/q), off-topic ${figure(report.offTopicPerQuery, 2)}/q (naming ${figure(report.namingSpeaker.perQuery, 2)}, others ${figure(report.notNaming.perQuery, 2)})`;
  }
  const categories = [...byCategory.entries()]
    .sort()
    .map(([c, list]) => `c${c} ${pct(mean(list))}`)
    .join(" ");
  console.log(
    `${trial.name.padEnd(44)} R@10 ${pct(mean(recall))}  all@10 ${pct(mean(all))}  ${categories}${cut}  (${figure((performance.now() - started) / 1000, 0)} s)`,
  );
}
