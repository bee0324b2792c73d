import gate from "./cutoff-gate.json" with { type: "json" };
import type { Scored } from "./features.js";
import { checkModel, type LinearModel, logitOf, sigmoid } from "./ranker.js";

/** Query-level inputs of the cut-off's gate, in order. */
export const GATE_FEATURES = [
  "bestLogit", // the ranker's best logit
  "bestMinus10th", // best logit − the 10th best
  "maxCos", // best cosine similarity in the scope
  "maxBmRaw", // best BM25 / 10
  "unknownTermShare", // share of the query's keyword terms no memory of the scope holds
  "unknownProperShare", // share of its proper nouns no memory holds
  "namesSpeaker", // it names a speaker of the scope
  "anyUnknownProper", // some proper noun of it no memory holds
] as const;

/**
 * The default relevance cut-off: a gate (the probability that the scope holds anything the query
 * asks about, from query-level inputs) and a gap (results more than `gap` logits below the best
 * are dropped). Trained and calibrated by `bench/train-ranker.ts`.
 */
export interface CutoffModel extends LinearModel {
  /** Below this gate probability, nothing is returned. */
  readonly minProbability: number;
  readonly gap: number;
}

/**
 * Scopes holding fewer memories than this are cut by similarity instead of the gate: the gate's
 * inputs (the best logit, its lead over the 10th, raw BM25) were calibrated on scopes of hundreds
 * of memories and close on almost every query in a scope of a few, related or not.
 */
export const SMALL_SCOPE = 50;
/** In a small scope, the least cosine similarity a result needs by default. */
export const SMALL_SCOPE_MIN_COSINE = 0.3;

export const defaultCutoff: CutoffModel = checkModel(gate, GATE_FEATURES, "src/retrieval/cutoff-gate.json");

/** The gate's inputs, from the logits of the pool in rank order (best first). */
export function gateRow(scored: Scored, sortedLogits: readonly number[]): Float64Array {
  const best = sortedLogits[0] ?? 0;
  const tenth = sortedLogits[9] ?? sortedLogits.at(-1) ?? 0;
  const q = scored.query;
  return Float64Array.from([
    best,
    best - tenth,
    q.maxCos,
    q.maxBmRaw,
    q.unknownTermShare,
    q.unknownProperShare,
    q.namesSpeaker,
    q.anyUnknownProper,
  ]);
}

/** How many of the ranked results (logits best first) the cut-off keeps: 0 when the gate closes. */
export function keptByCutoff(model: CutoffModel, scored: Scored, sortedLogits: readonly number[]): number {
  if (sortedLogits.length === 0) return 0;
  if (sigmoid(logitOf(model, gateRow(scored, sortedLogits))) < model.minProbability) return 0;
  const floor = (sortedLogits[0] as number) - model.gap;
  let kept = 0;
  while (kept < sortedLogits.length && (sortedLogits[kept] as number) >= floor) kept++;
  return kept;
}

/** The default cut-off in a scope of fewer than `SMALL_SCOPE` memories: which results (cosines in rank order) it keeps. */
export function keptBySimilarity(cosines: readonly number[]): boolean[] {
  return cosines.map((cosine) => cosine >= SMALL_SCOPE_MIN_COSINE);
}
