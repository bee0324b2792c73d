import { afterEach, describe, expect, test, vi } from "vitest";
import { backoffDelay } from "../../src/internal/async.js";

afterEach(() => {
  vi.restoreAllMocks();
});

/** backoffDelay with Math.random() returning `random`. */
function delay(attempt: number, random: number, minDelayMs = 500, maxDelayMs = 30_000): number {
  vi.spyOn(Math, "random").mockReturnValue(random);
  return backoffDelay(attempt, { minDelayMs, maxDelayMs });
}

describe("backoffDelay (known values)", () => {
  test("doubles from minDelayMs each attempt, capped at maxDelayMs; Math.random 0.5 gives the base itself", () => {
    // base = min(30000, 500 · 2^attempt)
    expect([0, 1, 2, 3, 4, 5, 6, 10].map((attempt) => delay(attempt, 0.5))).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  test("jitter spans base · [0.75, 1.25), rounded to whole milliseconds", () => {
    expect(delay(0, 0)).toBe(375); // 500 · 0.75
    expect(delay(0, 0.999)).toBe(625); // round(500 · 1.2495) = round(624.75)
    expect(delay(3, 0.25)).toBe(3500); // 4000 · 0.875
    expect(delay(6, 0)).toBe(22500); // the cap 30000 · 0.75
    expect(delay(0, 0, 3)).toBe(2); // round(2.25)
    expect(delay(0, 0.25, 3)).toBe(3); // round(2.625)
    expect(delay(2, 0.5, 0)).toBe(0);
  });
});
