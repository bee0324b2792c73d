import { expect, test } from "vitest";
import { MemoryTableBuilder } from "../../src/retrieval/memory-table.js";
import { stampKey } from "../../src/retrieval/scope-index.js";

// A large scope's statistics keep each memory in flat arrays: what goes in comes back out, by position.

const stamp = (id: string, day: number) => ({
  id,
  hash: `h-${id}`,
  createdAt: new Date(Date.UTC(2025, 0, day)).toISOString(),
  updatedAt: new Date(Date.UTC(2025, 0, day, 5)).toISOString(),
});

test("memories come back by position: stamp, version key, stems, speaker and expiry", () => {
  const builder = new MemoryTableBuilder();
  builder.add(
    stamp("a", 1),
    new Map([
      [4, 2],
      [9, 1],
    ]),
    3,
    "Emi",
    undefined,
  );
  builder.add(stamp("b", 2), new Map(), 0, undefined, 1_700_000_000_000);
  builder.add(stamp("c", 3), new Map([[9, 5]]), 5, "Emi", undefined);
  const table = builder.build();
  expect(table.count).toBe(3);
  expect(table.ids).toEqual(["a", "b", "c"]);
  expect(table.stamp(0)).toEqual(stamp("a", 1));
  expect(stampKey(table.stamp(2))).toBe(stampKey(stamp("c", 3)));
  expect([...table.termStart]).toEqual([0, 2, 2, 3]);
  expect([...table.terms]).toEqual([4, 9, 9]);
  expect([...table.termCounts]).toEqual([2, 1, 5]);
  expect([...table.lengths]).toEqual([3, 0, 5]);
  expect([table.speaker(0), table.speaker(1), table.speaker(2)]).toEqual(["Emi", undefined, "Emi"]);
  expect([table.expires(0), table.expires(1)]).toEqual([undefined, 1_700_000_000_000]);
});

test("copying memories from tables keeps everything they held, in the new order", () => {
  const first = new MemoryTableBuilder();
  first.add(stamp("a", 1), new Map([[1, 1]]), 1, "Paola", undefined);
  first.add(
    stamp("b", 2),
    new Map([
      [2, 3],
      [3, 1],
    ]),
    4,
    "Emi",
    42,
  );
  const one = first.build();
  const second = new MemoryTableBuilder();
  second.add(stamp("z", 9), new Map([[7, 1]]), 1, "Kai", undefined);
  const two = second.build();
  const joined = new MemoryTableBuilder();
  joined.copy(two, 0);
  joined.copy(one, 1);
  joined.copy(one, 0);
  const table = joined.build();
  expect(table.ids).toEqual(["z", "b", "a"]);
  expect(table.stamp(1)).toEqual(stamp("b", 2));
  expect([...table.terms]).toEqual([7, 2, 3, 1]);
  expect([...table.termCounts]).toEqual([1, 3, 1, 1]);
  expect([...table.termStart]).toEqual([0, 1, 3, 4]);
  expect([table.speaker(0), table.speaker(1), table.speaker(2)]).toEqual(["Kai", "Emi", "Paola"]);
  expect([table.expires(0), table.expires(1), table.expires(2)]).toEqual([undefined, 42, undefined]);
});

test("a memory is held in the version of its stamp only: another hash, createdAt or updatedAt is another version", () => {
  const builder = new MemoryTableBuilder();
  builder.add(stamp("a", 1), new Map(), 0, undefined, undefined);
  const table = builder.build();
  expect(table.holds(0, stamp("a", 1))).toBe(true);
  expect(table.holds(0, { ...stamp("a", 1), hash: "h-other" })).toBe(false);
  expect(table.holds(0, { ...stamp("a", 1), createdAt: stamp("a", 2).createdAt })).toBe(false);
  expect(table.holds(0, { ...stamp("a", 1), updatedAt: stamp("a", 2).updatedAt })).toBe(false);
  expect(table.holds(0, { ...stamp("a", 1), id: "b" })).toBe(false);
});

test("a builder sized too small grows: every memory comes back as added", () => {
  const builder = new MemoryTableBuilder({ memories: 1, terms: 1 });
  for (let i = 0; i < 100; i++) {
    builder.add(
      stamp(`m${i}`, 1 + (i % 28)),
      new Map([
        [i, 1],
        [i + 1, 2],
        [i + 2, 3],
      ]),
      i,
      i % 2 ? "Emi" : undefined,
      i % 3 ? undefined : i,
    );
  }
  const table = builder.build();
  expect(table.count).toBe(100);
  for (const i of [0, 1, 63, 64, 99]) {
    expect(table.stamp(i)).toEqual(stamp(`m${i}`, 1 + (i % 28)));
    const from = table.termStart[i] as number;
    expect([...table.terms.subarray(from, from + 3)]).toEqual([i, i + 1, i + 2]);
    expect([...table.termCounts.subarray(from, from + 3)]).toEqual([1, 2, 3]);
    expect(table.lengths[i]).toBe(i);
    expect(table.speaker(i)).toBe(i % 2 ? "Emi" : undefined);
    expect(table.expires(i)).toBe(i % 3 ? undefined : i);
  }
  expect(table.termStart[100]).toBe(300);
});
