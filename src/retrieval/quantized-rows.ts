import { int8ScoresWasm } from "./int8-scores-wasm.js";
import { type HelperExports, ScanHelper } from "./scan-helper.js";

/**
 * One vector normalised and quantised to int8 with its own scale: `codes · scale` approximates the
 * unit vector, so the cosine of two vectors is about `dot(codes, codes') · scale · scale'`.
 */
export interface QuantizedVector {
  readonly codes: Int8Array;
  readonly scale: number;
  /** |unit vector − codes · scale|. */
  readonly error: number;
}

/** SIMD lanes of the scan: rows are padded with zeros to a multiple of 16 bytes. */
const LANES = 16;

export const strideOf = (dimension: number) => Math.ceil(dimension / LANES) * LANES;

/**
 * `vector` quantised into `codes` (its first `vector.length` bytes; the rest left zero): returns the
 * scale and the error, the length of the difference between the unit vector and `codes · scale`.
 */
export function quantizeInto(vector: Float32Array, codes: Int8Array): { scale: number; error: number } {
  let norm = 0;
  let largest = 0;
  for (const value of vector) {
    norm += value * value;
    largest = Math.max(largest, Math.abs(value));
  }
  if (!(largest > 0) || !(norm > 0) || !Number.isFinite(norm)) {
    codes.fill(0, 0, vector.length);
    return { scale: 0, error: 0 };
  }
  norm = Math.sqrt(norm);
  const scale = largest / 127 / norm;
  let error = 0;
  for (let k = 0; k < vector.length; k++) {
    const code = Math.round(((vector[k] as number) / largest) * 127);
    codes[k] = code;
    const difference = (vector[k] as number) / norm - code * scale;
    error += difference * difference;
  }
  return { scale, error: Math.sqrt(error) };
}

/** The part of the WebAssembly API used here (the compiler's libraries for Node do not declare it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: unknown };
  Memory: new (descriptor: { initial: number; maximum: number; shared: true }) => ScanMemory;
}
interface ScanMemory {
  readonly buffer: SharedArrayBuffer;
}
const { WebAssembly: wasm } = globalThis as unknown as { WebAssembly: WebAssemblyApi };

let compiled: object | undefined;
const scanModule = () => {
  compiled ??= new wasm.Module(Buffer.from(int8ScoresWasm, "base64"));
  return compiled;
};

/** The scan module on a new shared memory of at least `bytes` (at most 4 GiB: 65,536 pages). */
function scanInstance(bytes: number): { memory: ScanMemory; exports: ScanExports } {
  const memory = new wasm.Memory({ initial: Math.max(1, Math.ceil(bytes / 65_536)), maximum: 65_536, shared: true });
  return { memory, exports: new wasm.Instance(scanModule(), { scan: { memory } }).exports as unknown as ScanExports };
}

interface ScanExports extends HelperExports {
  scores(rows: number, count: number, stride: number, query: number, scales: number, out: number): void;
  best(scores: number, count: number, limit: number, bound: number, counts: number, out: number): number;
}

/** Bytes of one bit plane of a ternary vector of `dimension` components (a multiple of 16). */
const planeBytesOf = (dimension: number) => Math.ceil(dimension / 128) * 16;

/**
 * A component is +1 or −1 in a vector's ternary form when it is more than TERNARY_CUT times the
 * vector's root mean square away from 0, else 0. On REALTALK's 8,826 turns embedded by the local
 * model, the best 500 by ternary dot product (5.7 %) hold every question's 10 nearest by exact
 * cosine and 99.3 % of its 200 nearest, the best 1,000 all of both (`bench/ternary-recall.ts`);
 * `bench/store.ts` measures whole searches against exact ones.
 */
const TERNARY_CUT = 0.5;

/**
 * `values` (int8 codes or a float vector) in ternary form as two bit planes into `planes` (zeroed
 * first): which components are not 0, then which of those are negative.
 */
export function ternaryInto(values: ArrayLike<number>, dimension: number, planes: Uint8Array, plane: number): void {
  planes.fill(0, 0, 2 * plane);
  let squares = 0;
  for (let k = 0; k < dimension; k++) squares += (values[k] as number) * (values[k] as number);
  const cut = TERNARY_CUT * Math.sqrt(squares / dimension);
  for (let k = 0; k < dimension; k++) {
    const value = values[k] as number;
    if (Math.abs(value) <= cut) continue;
    const bit = 1 << (k & 7);
    planes[k >> 3] = (planes[k >> 3] as number) | bit;
    if (value < 0) planes[plane + (k >> 3)] = (planes[plane + (k >> 3)] as number) | bit;
  }
}

/**
 * Past this many rows a scan first ranks every row by the ternary dot product (a quarter of the int8
 * codes' bytes) and scores on the int8 codes only its best `shortlistOf(count)` (2,530 of 100,000 rows;
 * 8,000 of 1,000,000).
 */
export const TERNARY_FROM = 20_000;
/** From this many rows a second thread shares the ternary pass and the shortlist's scores (`ScanHelper`), on a machine of two cores or more. */
export const PARALLEL_FROM = 100_000;
const shortlistOf = (count: number) => Math.max(2_000, Math.ceil(8 * Math.sqrt(count)));

/**
 * The quantised vectors of a scope's memories, by position, in one shared WebAssembly memory: an
 * approximate cosine of a query against every row is one SIMD pass over the int8 codes
 * (`int8-scores.wat`; 51 MB for 100,000 rows of 512 dimensions, about 10 ms on `bench:store`'s
 * machine, memory-bound). From TERNARY_FROM rows each row also has a ternary form (two bit planes, 128
 * bytes at 512 dimensions) and a scan first ranks those by popcounts (22 ms for 1,000,000 rows on one
 * core, timed alone; from PARALLEL_FROM rows a second thread shares the pass, `ScanHelper`), then
 * scores on the int8 codes only the best of them. Ranking re-scores the rows it keeps on their full
 * vectors.
 */
export class QuantizedRows {
  readonly count: number;
  readonly dimension: number;
  readonly #stride: number;
  readonly #exports: ScanExports;
  /** Byte offsets of the scales, the query's codes and the scores in the WebAssembly memory. */
  readonly #scalesAt: number;
  readonly #queryAt: number;
  readonly #outAt: number;
  /** Views of that memory (it never grows once built): the rows' codes, their scales, the query's codes, the scores. */
  readonly #codes: Int8Array;
  readonly #scales: Float32Array;
  readonly #queryCodes: Int8Array;
  readonly #scores: Float32Array;
  readonly #errors: Float32Array;
  /** The rows' and the query's ternary bit planes and the ternary scores (`planeBytesOf`, from TERNARY_FROM rows). */
  readonly #plane: number;
  readonly #planesAt: number;
  readonly #queryPlanesAt: number;
  readonly #ternaryAt: number;
  /** The shortlist's positions and their int8 scores (`shortlistOf(count)` of each), and the histogram of the ternary scores. */
  readonly #listAt: number;
  readonly #listedAt: number;
  readonly #countsAt: number;
  readonly #planes: Uint8Array | undefined;
  readonly #queryPlanes: Uint8Array | undefined;
  readonly #ternaryScores: Int32Array | undefined;
  readonly #counts: Int32Array | undefined;
  readonly #memory: ScanMemory;
  /** From PARALLEL_FROM rows: the thread that shares the ternary pass and the shortlist's scores, and where it writes them. */
  readonly #helper: ScanHelper | undefined;
  readonly #helperCountsAt: number;
  readonly #helperScoresAt: number;
  readonly #helperListedAt: number;

  /**
   * Rows in order, each from `from[i]`: a row of `before` (`from[i] ≥ 0`, its position there) or a
   * vector of `fresh` (`from[i] = −1 − its index there`). Runs of consecutive rows are copied as one
   * block: after a write to a large scope, most rows are where they were.
   */
  constructor(
    dimension: number,
    from: Int32Array,
    {
      before,
      fresh,
      parallel = from.length >= PARALLEL_FROM,
    }: {
      before?: QuantizedRows;
      fresh?: QuantizedBatch;
      /** Whether a second thread may share each ternary pass (by default from PARALLEL_FROM rows, on two cores or more). */
      parallel?: boolean;
    } = {},
  ) {
    const count = from.length;
    this.count = count;
    this.dimension = dimension;
    const stride = strideOf(dimension);
    this.#stride = stride;
    this.#scalesAt = count * stride;
    this.#queryAt = this.#scalesAt + count * 4 + ((LANES - ((count * 4) % LANES)) % LANES);
    this.#outAt = this.#queryAt + stride;
    const plane = planeBytesOf(dimension);
    const ternary = count >= TERNARY_FROM;
    this.#plane = plane;
    this.#planesAt = this.#outAt + count * 4 + ((LANES - ((count * 4) % LANES)) % LANES);
    this.#queryPlanesAt = this.#planesAt + (ternary ? count * 2 * plane : 0);
    this.#ternaryAt = this.#queryPlanesAt + 2 * plane;
    const shortlist = ternary ? shortlistOf(count) : 0;
    this.#listAt = this.#ternaryAt + count * 4;
    this.#listedAt = this.#listAt + shortlist * 4;
    this.#countsAt = this.#listedAt + shortlist * 4;
    // With a second thread, it writes the scores of the rows it takes, and their counts, to regions of its own.
    parallel &&= ternary;
    this.#helperCountsAt = this.#countsAt + histogramBytesOf(dimension);
    this.#helperScoresAt = this.#helperCountsAt + histogramBytesOf(dimension);
    this.#helperListedAt = this.#helperScoresAt + count * 4;
    const bytes = !ternary
      ? this.#outAt + count * 4
      : parallel
        ? this.#helperListedAt + shortlist * 4
        : this.#countsAt + histogramBytesOf(dimension);
    const { memory, exports } = scanInstance(bytes);
    this.#exports = exports;
    this.#helper = parallel ? ScanHelper.for(this, scanModule(), memory) : undefined;
    const buffer = memory.buffer;
    this.#memory = memory;
    const codes = new Int8Array(buffer, 0, count * stride);
    const scales = new Float32Array(buffer, this.#scalesAt, count);
    this.#codes = codes;
    this.#scales = scales;
    this.#queryCodes = new Int8Array(buffer, this.#queryAt, stride);
    this.#scores = new Float32Array(buffer, this.#outAt, count);
    this.#errors = new Float32Array(count);
    const planes = ternary ? new Uint8Array(buffer, this.#planesAt, count * 2 * plane) : undefined;
    this.#planes = planes;
    this.#queryPlanes = ternary ? new Uint8Array(buffer, this.#queryPlanesAt, 2 * plane) : undefined;
    this.#ternaryScores = ternary ? new Int32Array(buffer, this.#ternaryAt, count) : undefined;
    this.#counts = ternary ? new Int32Array(buffer, this.#countsAt, 2 * dimension + 1) : undefined;
    for (const source of [before, fresh]) {
      if (source && source.dimension !== dimension) throw new RangeError(`rows of ${source.dimension} dimensions, not ${dimension}`);
    }
    for (let position = 0; position < count; ) {
      const first = from[position] as number;
      let run = 1;
      const step = first >= 0 ? 1 : -1;
      while (position + run < count && from[position + run] === first + step * run) run++;
      if (first >= 0) {
        if (!before || first + run > before.count) throw new RangeError(`no earlier row ${first + run - 1}`);
        codes.set(before.#codes.subarray(first * stride, (first + run) * stride), position * stride);
        scales.set(before.#scales.subarray(first, first + run), position);
        this.#errors.set(before.#errors.subarray(first, first + run), position);
        if (planes && before.#planes)
          planes.set(before.#planes.subarray(first * 2 * plane, (first + run) * 2 * plane), position * 2 * plane);
        else if (planes) this.#ternaryRows(position, run);
      } else {
        // Fresh indices run downwards in `from` when they run upwards in the batch.
        const start = -1 - first;
        if (!fresh || start + run > fresh.count) throw new RangeError(`no fresh vector ${start + run - 1}`);
        codes.set(fresh.codes.subarray(start * stride, (start + run) * stride), position * stride);
        scales.set(fresh.scales.subarray(start, start + run), position);
        this.#errors.set(fresh.errors.subarray(start, start + run), position);
        if (planes) this.#ternaryRows(position, run);
      }
      position += run;
    }
  }

  /**
   * Whether scans share their ternary pass with a second thread, once it has started (it starts with
   * the rows, in about 30 ms; until then scans run on the calling thread alone).
   */
  helperReady(): Promise<boolean> {
    return this.#helper?.ready() ?? Promise.resolve(false);
  }

  /** The ternary bit planes of `run` rows from `position`, from their codes. */
  #ternaryRows(position: number, run: number): void {
    const planes = this.#planes as Uint8Array;
    const stride = this.#stride;
    const plane = this.#plane;
    for (let row = position; row < position + run; row++) {
      ternaryInto(
        this.#codes.subarray(row * stride, row * stride + this.dimension),
        this.dimension,
        planes.subarray(row * 2 * plane),
        plane,
      );
    }
  }

  /** The cosine similarity of `vector` to the row at `position` as a vector (codes times scale), without making it. */
  cosine(position: number, vector: Float32Array): number {
    if (vector.length !== this.dimension) throw new RangeError(`vector has ${vector.length} dimensions, rows ${this.dimension}`);
    const codes = this.#codes;
    const start = position * this.#stride;
    let dot = 0;
    let squares = 0;
    let norm = 0;
    for (let k = 0; k < vector.length; k++) {
      const code = codes[start + k] as number;
      const value = vector[k] as number;
      dot += code * value;
      squares += code * code;
      norm += value * value;
    }
    return squares === 0 || norm === 0 ? 0 : dot / Math.sqrt(squares * norm);
  }

  /** The codes and scale of the row at `position` (a view: rows never change once built). */
  row(position: number): QuantizedVector {
    return {
      codes: this.#codes.subarray(position * this.#stride, (position + 1) * this.#stride),
      scale: this.#scales[position] as number,
      error: this.#errors[position] as number,
    };
  }

  /**
   * The approximate cosine of `query` with the rows; the result stays valid after later scans.
   * `error(position)` bounds how far the approximate cosine can be from the exact one: with unit
   * vectors v, u quantised with errors δ, η, |(v + δ)·(u + η) − v·u| ≤ |δ| + |η| + |δ|·|η|. Up to
   * TERNARY_FROM rows every row is scored in one pass; past it the pass ranks the rows' ternary forms
   * and the int8 codes score only the best of them (`best` ranks those) and, when asked, any other.
   * `meanwhile` runs on the calling thread once the scan's helper thread (if any) has started on the
   * rows: work that does not need the scan (the keyword passes of a search, say) then overlaps it.
   */
  scan(query: Float32Array, meanwhile?: () => void): QuantizedScan {
    if (query.length !== this.dimension) throw new RangeError(`query has ${query.length} dimensions, rows ${this.dimension}`);
    this.#queryCodes.fill(0);
    const asked = quantizeInto(query, this.#queryCodes);
    const errors = this.#errors;
    const error = (position: number) => {
      const row = errors[position] as number;
      return row + asked.error + row * asked.error + 1e-6;
    };
    if (!this.#ternaryScores) {
      meanwhile?.();
      this.#exports.scores(0, this.count, this.#stride, this.#queryAt, this.#scalesAt, this.#outAt);
      const scores = this.#scores.slice();
      return {
        cosine: (position) => (scores[position] as number) * asked.scale,
        error,
        best: (limit) => topPositions(scores, limit),
      };
    }
    ternaryInto(query, this.dimension, this.#queryPlanes as Uint8Array, this.#plane);
    (this.#counts as Int32Array).fill(0);
    const exports = this.#exports;
    this.#ternaryPass(exports, meanwhile);
    const kept = exports.best(this.#ternaryAt, this.count, shortlistOf(this.count), this.dimension, this.#countsAt, this.#listAt);
    const buffer = this.#memory.buffer;
    const shortlist = new Int32Array(buffer, this.#listAt, kept).slice();
    this.#shortlistPass(exports, kept);
    const listed = new Float32Array(buffer, this.#listedAt, shortlist.length).slice();
    const others = new Map<number, number>();
    const score = (position: number) => {
      const j = sortedIndexOf(shortlist, position);
      if (j >= 0) return listed[j] as number;
      let value = others.get(position);
      if (value === undefined) {
        value = this.#score(position);
        others.set(position, value);
      }
      return value;
    };
    return {
      cosine: (position) => score(position) * asked.scale,
      error,
      best: (limit) => topPositions(listed, limit).map((j) => shortlist[j] as number),
    };
  }

  /**
   * Every row's ternary score against the query's planes, and their histogram in `counts`: with a
   * helper thread, the two share the rows (`ScanHelper.ternary`), the thread starting while the
   * calling one runs `meanwhile`.
   */
  #ternaryPass(exports: ScanExports, meanwhile: (() => void) | undefined): void {
    const job = {
      rows: this.#planesAt,
      count: this.count,
      plane: this.#plane,
      query: this.#queryPlanesAt,
      out: this.#ternaryAt,
      counts: this.#countsAt,
      helperOut: this.#helperScoresAt,
      helperCounts: this.#helperCountsAt,
      bound: this.dimension,
    };
    if (this.#helper) this.#helper.ternary(exports, this.#memory.buffer, job, meanwhile);
    else {
      meanwhile?.();
      exports.ternary(job.rows, job.count, job.plane, job.query, job.out, job.counts, job.bound);
    }
  }

  /** The int8 scores of the shortlist's `kept` rows, shared with the helper thread when there is one. */
  #shortlistPass(exports: ScanExports, kept: number): void {
    const job = {
      positions: this.#listAt,
      count: kept,
      stride: this.#stride,
      query: this.#queryAt,
      scales: this.#scalesAt,
      out: this.#listedAt,
      helperOut: this.#helperListedAt,
    };
    if (this.#helper) this.#helper.shortlist(exports, this.#memory.buffer, job);
    else exports.scoresAt(0, job.positions, kept, job.stride, job.query, job.scales, job.out);
  }

  /** The int8 score of the row at `position` against the query's codes (a scan's first step). */
  #score(position: number): number {
    this.#exports.scores(this.#stride * position, 1, this.#stride, this.#queryAt, this.#scalesAt + 4 * position, this.#outAt);
    return this.#scores[0] as number;
  }
}

/** Bytes of the histogram of ternary scores (from −dimension to dimension), a multiple of 16. */
const histogramBytesOf = (dimension: number) => Math.ceil(((2 * dimension + 1) * 4) / LANES) * LANES;

/**
 * The positions of the `limit` highest of `scores` (integers from −`bound` to `bound`), ascending;
 * of those tied at the last score, the first ones: one count of each score, then one pass (the
 * WebAssembly functions a scan runs on its ternary scores, here on scores from elsewhere).
 */
export function bestIntegers(scores: Int32Array, limit: number, bound: number): Int32Array {
  const countsAt = scores.length * 4;
  const outAt = countsAt + ((2 * bound + 1) * 4 + LANES);
  const kept = Math.min(Math.max(limit, 0), scores.length);
  const { memory, exports } = scanInstance(outAt + kept * 4);
  new Int32Array(memory.buffer, 0, scores.length).set(scores);
  exports.histogram(0, scores.length, bound, countsAt);
  const n = exports.best(0, scores.length, kept, bound, countsAt, outAt);
  return new Int32Array(memory.buffer, outAt, n).slice();
}

/** The index of `value` in the ascending `sorted`, or −1. */
function sortedIndexOf(sorted: Int32Array, value: number): number {
  let low = 0;
  let high = sorted.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const at = sorted[middle] as number;
    if (at === value) return middle;
    if (at < value) low = middle + 1;
    else high = middle - 1;
  }
  return -1;
}

/**
 * Vectors quantised one by one (rows to be, `QuantizedRows`' `fresh`), in growing buffers rather than
 * an object each: a scope's first read quantises all of its memories.
 */
export class QuantizedBatch {
  readonly dimension: number;
  count = 0;
  codes: Int8Array;
  scales: Float32Array;
  errors: Float32Array;
  readonly #stride: number;

  constructor(dimension: number) {
    this.dimension = dimension;
    this.#stride = strideOf(dimension);
    this.codes = new Int8Array(this.#stride * 64);
    this.scales = new Float32Array(64);
    this.errors = new Float32Array(64);
  }

  /** Quantises `vector` into the batch; returns its index. */
  add(vector: Float32Array): number {
    if (vector.length !== this.dimension) throw new RangeError(`vector has ${vector.length} dimensions, the batch ${this.dimension}`);
    if (this.count === this.scales.length) {
      const grow = <T extends Int8Array | Float32Array>(array: T, make: (length: number) => T) => {
        const larger = make(array.length * 2);
        larger.set(array);
        return larger;
      };
      this.codes = grow(this.codes, (length) => new Int8Array(length));
      this.scales = grow(this.scales, (length) => new Float32Array(length));
      this.errors = grow(this.errors, (length) => new Float32Array(length));
    }
    const index = this.count++;
    const { scale, error } = quantizeInto(vector, this.codes.subarray(index * this.#stride, (index + 1) * this.#stride));
    this.scales[index] = scale;
    // Rounded up, so the bound stays a bound in single precision.
    this.errors[index] = error * (1 + 1e-6) + 1e-7;
    return index;
  }
}

/** One query scanned against the rows (`QuantizedRows.scan`). */
export interface QuantizedScan {
  cosine(position: number): number;
  /** A bound on |approximate − exact cosine| at `position`. */
  error(position: number): number;
  /** The `limit` positions best by the approximate cosine, best first (ties: the smaller position). */
  best(limit: number): number[];
}

/**
 * The `limit` positions of the highest scores, best first, ties by the smaller position: candidates
 * above a rising floor are collected and trimmed to `limit` whenever they reach four times it.
 */
export function topPositions(scores: ArrayLike<number>, limit: number): number[] {
  if (limit <= 0) return [];
  const order = (a: number, b: number) => (scores[b] as number) - (scores[a] as number) || a - b;
  let kept: number[] = [];
  let floor = Number.NEGATIVE_INFINITY;
  for (let position = 0; position < scores.length; position++) {
    // Positions rise: one scoring only as much as the floor ranks after every kept one.
    if ((scores[position] as number) <= floor) continue;
    kept.push(position);
    if (kept.length >= 4 * limit) {
      kept.sort(order);
      kept = kept.slice(0, limit);
      floor = scores[kept[limit - 1] as number] as number;
    }
  }
  return kept.sort(order).slice(0, limit);
}
