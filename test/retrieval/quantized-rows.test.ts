import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { expect, test } from "vitest";
import { compileWat } from "../../scripts/wat.js";
import { int8ScoresWasm } from "../../src/retrieval/int8-scores-wasm.js";
import {
  bestIntegers,
  PARALLEL_FROM,
  QuantizedBatch,
  QuantizedRows,
  TERNARY_FROM,
  topPositions,
} from "../../src/retrieval/quantized-rows.js";
import { cosineSimilarity } from "../../src/store-kit/filter.js";

const batchOf = (vectors: readonly Float32Array[]) => {
  const batch = new QuantizedBatch(vectors[0]?.length ?? 1);
  for (const vector of vectors) batch.add(vector);
  return batch;
};
const rowsOf = (vectors: readonly Float32Array[]) =>
  new QuantizedRows(
    vectors[0]?.length ?? 1,
    Int32Array.from(vectors, (_, i) => -1 - i),
    { fresh: batchOf(vectors) },
  );

test("the shipped WebAssembly is what int8-scores.wat compiles to (npm run build:wasm)", async () => {
  const compiled = await compileWat(join(import.meta.dirname, "../../src/retrieval/int8-scores.wat"));
  expect(Buffer.from(int8ScoresWasm, "base64").equals(Buffer.from(compiled))).toBe(true);
  expect(readFileSync(join(import.meta.dirname, "../../src/retrieval/int8-scores.wat"), "utf8")).toContain("i32x4.dot_i16x8_s");
});

test("known values: a unit vector quantises exactly; cosines of 3-dimensional rows (padded to 16 bytes)", () => {
  const { codes, scale, error } = rowsOf([Float32Array.of(0, 2, 0)]).row(0);
  expect([...codes]).toEqual([0, 127, 0, ...Array(13).fill(0)]);
  expect(scale).toBeCloseTo(1 / 127, 7);
  expect(error).toBeLessThan(1e-6);
  const rows = rowsOf([
    Float32Array.of(1, 0, 0),
    Float32Array.of(0, 1, 0),
    Float32Array.of(1, 1, 0),
    Float32Array.of(-1, 0, 0),
    Float32Array.of(0, 0, 0),
  ]);
  const scan = rows.scan(Float32Array.of(3, 0, 0));
  for (const [position, expected] of [1, 0, Math.SQRT1_2, -1, 0].entries()) expect(scan.cosine(position)).toBeCloseTo(expected, 4);
  expect(scan.best(3)).toEqual([0, 2, 1]);
  // Ties go to the smaller position.
  expect(rows.scan(Float32Array.of(0, 0, 1)).best(5)).toEqual([0, 1, 2, 3, 4]);
  expect(() => rows.scan(Float32Array.of(1, 0))).toThrow(RangeError);
  // A row as a vector (codes times scale): about the unit vector.
  const row = rows.row(2);
  const vector = Float32Array.from(row.codes.subarray(0, 3), (code) => code * row.scale);
  for (const [k, expected] of [Math.SQRT1_2, Math.SQRT1_2, 0].entries()) expect(vector[k]).toBeCloseTo(expected, 3);
  expect(vector.reduce((sum, value) => sum + value * value, 0)).toBeCloseTo(1, 3);
  // Its cosine to any vector, without making it.
  for (const query of [Float32Array.of(3, 0, 0), Float32Array.of(1, -2, 0.5), Float32Array.of(0, 0, 0)])
    expect(rows.cosine(2, query)).toBeCloseTo(cosineSimilarity(vector, query), 6);
  expect(() => rows.cosine(2, Float32Array.of(1, 0))).toThrow(RangeError);
});

test("property: the approximate cosine is within its error bound of the exact one, for any vectors", () => {
  const vector = (dimension: number) =>
    fc
      .array(fc.float({ min: -10, max: 10, noNaN: true, noDefaultInfinity: true }), { minLength: dimension, maxLength: dimension })
      .map((values) => Float32Array.from(values));
  fc.assert(
    fc.property(
      fc
        .integer({ min: 1, max: 70 })
        .chain((dimension) => fc.tuple(fc.array(vector(dimension), { minLength: 1, maxLength: 12 }), vector(dimension))),
      ([vectors, query]) => {
        const scan = rowsOf(vectors).scan(query);
        for (const [position, row] of vectors.entries()) {
          const difference = Math.abs(scan.cosine(position) - cosineSimilarity(row, query));
          if (difference > scan.error(position)) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
});

test("at 512 dimensions the scan keeps the exact top 10 among its best 30, and the errors are small", () => {
  let seed = 7;
  const random = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed / 2 ** 32 - 0.5;
  };
  const vectors = Array.from({ length: 3_000 }, () => Float32Array.from({ length: 512 }, random));
  const rows = rowsOf(vectors);
  for (let q = 0; q < 5; q++) {
    // A query near one row, so the top is not a tie of noise.
    const query = Float32Array.from(vectors[q * 100] as Float32Array, (value) => value + random() * 0.5);
    const exact = vectors.map((row) => cosineSimilarity(row, query));
    const top10 = [...exact.keys()].sort((a, b) => (exact[b] as number) - (exact[a] as number)).slice(0, 10);
    const scan = rows.scan(query);
    const kept = new Set(scan.best(30));
    expect(top10.every((position) => kept.has(position))).toBe(true);
    expect(Math.max(...top10.map((position) => scan.error(position)))).toBeLessThan(0.05);
  }
});

test("rows built from earlier rows (runs copied as blocks) and fresh vectors scan as rows built from the vectors alone", () => {
  const vectors = Array.from({ length: 40 }, (_, i) => Float32Array.from({ length: 20 }, (_, k) => Math.sin(i * 7 + k * 3)));
  const before = rowsOf(vectors.slice(0, 30));
  const fresh = batchOf(vectors.slice(30));
  // Rows 0–9 dropped, 10–29 kept in order with two moved, then the ten fresh ones, one out of order.
  const earlier = Array.from({ length: 20 }, (_, i) => (i === 5 ? 29 : i === 19 ? 15 : 10 + i));
  const added = [0, 1, 2, 3, 4, 5, 6, 7, 9, 8];
  const rebuilt = new QuantizedRows(20, Int32Array.from([...earlier, ...added.map((k) => -1 - k)]), { before, fresh });
  const reference = rowsOf([...earlier, ...added.map((k) => 30 + k)].map((i) => vectors[i] as Float32Array));
  const query = Float32Array.from({ length: 20 }, (_, k) => Math.cos(k));
  const [a, b] = [rebuilt.scan(query), reference.scan(query)];
  for (let position = 0; position < 30; position++) {
    expect(a.cosine(position)).toBe(b.cosine(position));
    expect(a.error(position)).toBe(b.error(position));
  }
  expect(() => new QuantizedRows(21, Int32Array.of(0), { before })).toThrow(RangeError);
  expect(() => new QuantizedRows(20, Int32Array.of(30), { before })).toThrow(RangeError);
  expect(() => new QuantizedRows(20, Int32Array.of(-11), { fresh })).toThrow(RangeError);
});

test("topPositions: the highest scores, best first, ties by the smaller position, as a full sort", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -5, max: 5 }), { maxLength: 300 }), fc.integer({ min: 0, max: 40 }), (values, limit) => {
      const scores = Float32Array.from(values);
      const sorted = [...scores.keys()].sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b).slice(0, limit);
      expect(topPositions(scores, limit)).toEqual(sorted);
    }),
  );
});

test("bestIntegers: the positions of the highest integer scores, ascending, ties by the smaller position, as a full sort", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -6, max: 6 }), { maxLength: 300 }), fc.integer({ min: 0, max: 40 }), (values, limit) => {
      const scores = Int32Array.from(values);
      const sorted = [...scores.keys()].sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b).slice(0, limit);
      expect([...bestIntegers(scores, limit, 6)]).toEqual(sorted.sort((a, b) => a - b));
    }),
  );
});

test(`past ${TERNARY_FROM} rows the ternary first pass keeps the best rows; every row's cosine is still the int8 one`, () => {
  let seed = 11;
  const random = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed / 2 ** 32;
  };
  // Sparse rows of −1, 0 and +1 (as the hashed test embedder gives), 64 dimensions: their ternary
  // form is themselves, so the first pass ranks by the exact dot product.
  const dimension = 64;
  const sparse = () => {
    const vector = new Float32Array(dimension);
    for (let j = 0; j < 8; j++) vector[Math.floor(random() * dimension)] = random() < 0.5 ? -1 : 1;
    return vector;
  };
  const vectors = Array.from({ length: TERNARY_FROM + 500 }, sparse);
  const big = rowsOf(vectors);
  // The same rows in groups under the first-pass size, scanned in one pass each: the reference.
  const groups = Array.from({ length: Math.ceil(vectors.length / 10_000) }, (_, g) => rowsOf(vectors.slice(g * 10_000, (g + 1) * 10_000)));
  for (let q = 0; q < 5; q++) {
    const query = Float32Array.from(vectors[q * 997] as Float32Array, (value, k) => (k % 9 === 0 ? 0 : value));
    const scan = big.scan(query);
    const scans = groups.map((rows) => rows.scan(query));
    const reference = (position: number) =>
      (scans[Math.floor(position / 10_000)] as ReturnType<QuantizedRows["scan"]>).cosine(position % 10_000);
    for (const position of [0, 1, q * 997, 7_777, TERNARY_FROM + 499]) expect(scan.cosine(position)).toBe(reference(position));
    const exact = vectors.map((row) => cosineSimilarity(row, query));
    const top10 = [...exact.keys()].sort((a, b) => (exact[b] as number) - (exact[a] as number) || a - b).slice(0, 10);
    expect(new Set(scan.best(10))).toEqual(new Set(top10));
  }
});

test(`from ${PARALLEL_FROM} rows a second thread shares each ternary pass and the shortlist's int8 scores: the same scan as one thread`, async () => {
  let seed = 5;
  const random = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed / 2 ** 32 - 0.5;
  };
  // 16 dimensions: a hundred thousand rows stay small.
  const dimension = 16;
  const vectors = Array.from({ length: PARALLEL_FROM + 101 }, () => Float32Array.from({ length: dimension }, random));
  const from = Int32Array.from(vectors, (_, i) => -1 - i);
  const fresh = batchOf(vectors);
  const shared = new QuantizedRows(dimension, from, { fresh });
  const alone = new QuantizedRows(dimension, from, { fresh, parallel: false });
  expect(await alone.helperReady()).toBe(false);
  expect(await shared.helperReady()).toBe(availableParallelism() > 1);
  for (let q = 0; q < 5; q++) {
    const query = vectors[q * 7_919] as Float32Array;
    const [both, one] = [shared.scan(query), alone.scan(query)];
    expect(both.best(300)).toEqual(one.best(300));
    for (const position of [0, q * 7_919, PARALLEL_FROM / 2, PARALLEL_FROM + 100]) expect(both.cosine(position)).toBe(one.cosine(position));
  }
  // Work given to a scan runs once, on the calling thread, while the thread scores rows; the scan is the same.
  const query = vectors[42] as Float32Array;
  const expected = alone.scan(query).best(300);
  for (const rows of [shared, alone]) {
    let ran = 0;
    const scan = rows.scan(query, () => {
      ran++;
      const until = performance.now() + 20;
      while (performance.now() < until);
    });
    expect(ran).toBe(1);
    expect(scan.best(300)).toEqual(expected);
    // Should that work throw, the error is thrown, and the next scan is whole.
    expect(() =>
      rows.scan(query, () => {
        throw new Error("meanwhile failed");
      }),
    ).toThrow("meanwhile failed");
    expect(rows.scan(query).best(300)).toEqual(expected);
  }
});
