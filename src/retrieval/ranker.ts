import { FEATURES } from "./features.js";
import weights from "./ranker-weights.json" with { type: "json" };

/**
 * A logistic regression over standardised inputs: `logit = b + Σ wₖ · (xₖ − meanₖ) / stdₖ`, the
 * probability `1 / (1 + e^−logit)`. Trained by `bench/train-ranker.ts`.
 */
export interface LinearModel {
  readonly features: readonly string[];
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly w: readonly number[];
  readonly b: number;
}

export function logitOf(model: LinearModel, row: ArrayLike<number>): number {
  let logit = model.b;
  for (let k = 0; k < model.w.length; k++)
    logit += (model.w[k] as number) * (((row[k] as number) - (model.mean[k] as number)) / ((model.std[k] as number) || 1));
  return logit;
}

export const sigmoid = (logit: number): number => 1 / (1 + Math.exp(-logit));

/** Checks that a model reads exactly `features`, in order, with one weight each. */
export function checkModel<M extends LinearModel>(model: M, features: readonly string[], what: string): M {
  const lengths = [model.features.length, model.mean.length, model.std.length, model.w.length];
  if (model.features.join() !== features.join() || lengths.some((length) => length !== features.length))
    throw new TypeError(`${what} does not match the features ${features.join(", ")}: retrain it with bench/train-ranker.ts`);
  return model;
}

/** The shipped ranker: the probability that a memory holds what a query asks, from its `FEATURES` row. */
export const defaultRanker: LinearModel = checkModel(weights, FEATURES, "src/retrieval/ranker-weights.json");
