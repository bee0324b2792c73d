import { expect, test } from "vitest";
import { RecentMap } from "../../src/internal/recent-map.js";

test("RecentMap keeps the most recently used entries: reads and writes move an entry to the end, the oldest go once a quarter more is held", () => {
  const recent = new RecentMap<string, number>(8);
  for (let i = 0; i < 10; i++) recent.set(`k${i}`, i);
  // 10 ≤ 8 + 2: nothing dropped yet.
  expect(recent.entries).toBe(10);
  expect(recent.get("k0")).toBe(0);
  recent.set("k1", 1);
  // The 11th entry: trimmed to the 8 most recently used (k0 and k1 were used after k2…k9 were written).
  recent.set("k10", 10);
  expect(recent.entries).toBe(8);
  for (const gone of ["k2", "k3", "k4"]) expect(recent.get(gone)).toBeUndefined();
  for (const kept of ["k0", "k1", "k5", "k6", "k7", "k8", "k9", "k10"]) expect(recent.get(kept)).toBeDefined();
  // Writing a key again replaces its value without adding an entry.
  recent.set("k5", 50);
  expect(recent.get("k5")).toBe(50);
  expect(recent.entries).toBe(8);
});
