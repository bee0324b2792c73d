import { appendFileSync } from "node:fs";
import { inject } from "vitest";
import { seededRandom } from "../../bench/support/synthetic.js";

/**
 * What one fault test exercised, measured while it ran. Numbers are summed per suite over the run;
 * a text (such as why a test could not run here) is kept as it is.
 */
export interface FaultCounts {
  /** Calls made on Engram (any verb, through any surface). */
  operations?: number;
  /** The scopes the operations used (each a string such as its JSON), or how many there were. */
  scopes?: number | Iterable<string>;
  /** Processes killed with SIGKILL. */
  kills?: number;
  /** Turns (or import lines) that had to end up stored exactly once. */
  turns?: number;
  /** Of those, turns missing at the end. */
  lost?: number;
  /** Of those, turns stored more than once. */
  duplicated?: number;
  /** Processes run on one data dir. */
  processes?: number;
  /** Damaged files opened (torn or corrupted WAL, corrupted database). */
  corruptions?: number;
  /** Calls that failed at their deadline with a TimeoutError. */
  timeouts?: number;
  /** Interleavings of a write and a purge run. */
  races?: number;
  /** Calls refused with a typed error because the disk was full. */
  diskFullErrors?: number;
  /** Set when the disk-full test could not run here: why. */
  diskFull?: string;
}

/** The `ENGRAM_FAULT_SCALE` multiplier of fuzz sizes (default 1; 10 for a long run). */
export function faultScale(): number {
  const raw = process.env.ENGRAM_FAULT_SCALE;
  if (raw === undefined || raw === "") return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale <= 0) throw new Error(`ENGRAM_FAULT_SCALE must be a positive number, not ${JSON.stringify(raw)}`);
  return scale;
}

/** `base` scaled by `ENGRAM_FAULT_SCALE`, at least 1. */
export const scaled = (base: number): number => Math.max(1, Math.round(base * faultScale()));

/** How many times to repeat a scenario whose size cannot grow (processes on two cores, a worker's capacity). */
export const repeats = (): number => Math.max(1, Math.round(faultScale()));

/** A test timeout that grows with `ENGRAM_FAULT_SCALE`. */
export const scaledTimeout = (ms: number): number => Math.round(ms * Math.max(1, faultScale()));

/** The seed fuzz tests start from: `ENGRAM_FAULT_SEED` to replay a reported run, else a new one. */
export function faultSeed(): number {
  const raw = process.env.ENGRAM_FAULT_SEED;
  if (raw !== undefined && raw !== "") {
    const seed = Number(raw);
    if (!Number.isSafeInteger(seed)) throw new Error(`ENGRAM_FAULT_SEED must be an integer, not ${JSON.stringify(raw)}`);
    return seed;
  }
  return Math.floor(Math.random() * 2 ** 31);
}

/** Records what a test exercised; the run's global teardown prints the totals per suite. */
export function recordFaults(suite: string, { scopes, ...counts }: FaultCounts): void {
  // Scope lists are kept whole so that the totals count a scope used by several tests once.
  const scopeCount = typeof scopes === "number" ? { scopes } : scopes ? { scopeList: [...new Set(scopes)] } : {};
  appendFileSync(inject("faultCountsFile"), `${JSON.stringify({ suite, ...counts, ...scopeCount })}\n`);
}

/** Seeded random choices (the benchmarks' generator): the same seed gives the same choices. */
export function seededChoices(seed: number) {
  const next = seededRandom(seed);
  return {
    next,
    /** A whole number from 0 to `n` - 1. */
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
    chance: (p: number) => next() < p,
  };
}
