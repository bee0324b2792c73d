import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

/** What `ScanHelper` runs of the scan module instance the rows are in. */
export interface HelperExports {
  ternary(rows: number, count: number, plane: number, query: number, out: number, counts: number, bound: number): void;
  histogram(scores: number, count: number, bound: number, counts: number): void;
  scoresAt(rows: number, positions: number, n: number, stride: number, query: number, scales: number, out: number): void;
}

/** One ternary pass (`int8-scores.wat`): byte offsets in the shared memory, and the helper's own regions. */
export interface TernaryJob {
  readonly rows: number;
  readonly count: number;
  readonly plane: number;
  readonly query: number;
  /** Every row's score, by position, and their histogram (zeroed by the caller). */
  readonly out: number;
  readonly counts: number;
  /** Where the helper writes the scores of the rows it takes (by position, `count` i32) and their histogram. */
  readonly helperOut: number;
  readonly helperCounts: number;
  readonly bound: number;
}

/** The int8 scores of the rows at `count` positions (`scoresAt` in `int8-scores.wat`), and the helper's own region for those it takes. */
export interface ShortlistJob {
  readonly positions: number;
  readonly count: number;
  readonly stride: number;
  readonly query: number;
  readonly scales: number;
  /** The scores, in the order of `positions` (`count` f32). */
  readonly out: number;
  readonly helperOut: number;
}

/**
 * A thread that shares a large scan's passes (`QuantizedRows.scan`) on the rows' shared WebAssembly
 * memory: the ternary pass over every row, memory- and popcount-bound (about 22 ms for 1,000,000
 * rows on one core of `bench:store`'s machine and about 11 with two), and the int8 scores of its
 * shortlist.
 *
 * A pass is cut into CHUNKS runs that both threads take one at a time from a shared counter
 * (`Atomics.add`), so a thread slowed down (by the collector's threads on the other core, say) takes
 * fewer and the pass is never much slower than on one thread. Handing over is synchronous: the job
 * goes into words of a SharedArrayBuffer, the caller wakes the thread with `Atomics.notify` and, once
 * no run is left, waits with `Atomics.wait`; no event-loop turn is spent. The thread writes its
 * scores to a region of its own, copied over once it says a run is done. When the thread is not ready
 * yet (it starts in about 30 ms), is still on a pass the caller gave up on, or has died, the caller
 * scores every row itself; when it has not finished a run within HELPER_WAIT_MS, the caller scores
 * that run too (and counts a ternary pass's histogram again). The scores are the same whoever
 * computes them.
 */
export class ScanHelper {
  readonly #control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
  readonly #worker: Worker;
  #dead = false;

  private constructor(module: object, memory: object) {
    this.#worker = new Worker(WORKER, { eval: true, workerData: { module, memory, control: this.#control.buffer } });
    this.#worker.unref();
    const dead = () => {
      this.#dead = true;
    };
    this.#worker.on("error", dead);
    this.#worker.on("exit", dead);
  }

  /**
   * A helper for a scan module instance's shared `memory`, or undefined on a single core or where
   * threads cannot be started. Closed when `owner` is collected (or by `close`).
   */
  static for(owner: object, module: object, memory: object): ScanHelper | undefined {
    if (availableParallelism() < 2) return undefined;
    let helper: ScanHelper;
    try {
      helper = new ScanHelper(module, memory);
    } catch {
      return undefined;
    }
    closeWhenCollected.register(owner, helper);
    return helper;
  }

  /** Resolves once the thread has started (true), or has died or not started within `timeoutMs` (false). */
  async ready(timeoutMs = 10_000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (!this.#dead && Atomics.load(this.#control, READY) !== 1 && Date.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 2));
    return !this.#dead && Atomics.load(this.#control, READY) === 1;
  }

  /**
   * Scores every row of `job` (into `out`, counted into `counts`), sharing the runs with the thread
   * when it can take them. `meanwhile` runs on the calling thread once the thread has been woken, before
   * the caller takes runs: the thread then takes the runs meanwhile. Should `meanwhile` throw, the caller
   * takes the runs left all the same (the thread is not left busy with the whole pass), then the error
   * is thrown; the pass's scores are not used.
   */
  ternary(exports: HelperExports, buffer: SharedArrayBuffer, job: TernaryJob, meanwhile?: () => void): void {
    const { rows, count, plane, query, out, counts, bound } = job;
    const finished = this.#share(
      buffer,
      { kind: TERNARY, count, args: [rows, plane, query, job.helperOut, job.helperCounts, bound], out, helperOut: job.helperOut },
      (first, n) => exports.ternary(rows + first * 2 * plane, n, plane, query, out + first * 4, counts, bound),
      meanwhile,
    );
    if (finished === undefined) return;
    const histogram = new Int32Array(buffer, counts, 2 * bound + 1);
    if (finished) {
      const helperCounts = new Int32Array(buffer, job.helperCounts, 2 * bound + 1);
      for (let k = 0; k < histogram.length; k++) histogram[k] = (histogram[k] as number) + (helperCounts[k] as number);
    } else {
      // The thread's counts are not whole: count every score again.
      histogram.fill(0);
      exports.histogram(out, count, bound, counts);
    }
  }

  /** Scores the rows of a shortlist (into `out`), sharing the runs with the thread when it can take them. */
  shortlist(exports: HelperExports, buffer: SharedArrayBuffer, job: ShortlistJob): void {
    const { positions, count, stride, query, scales, out } = job;
    this.#share(
      buffer,
      { kind: SHORTLIST, count, args: [positions, stride, query, scales, job.helperOut, 0], out, helperOut: job.helperOut },
      (first, n) => exports.scoresAt(0, positions + first * 4, n, stride, query, scales, out + first * 4),
      undefined,
    );
  }

  /**
   * One pass of `count` items (4 bytes of output each, by item) shared with the thread: `here` scores
   * the `n` items from `first` on the calling thread. Undefined when the caller scored every item,
   * else whether the thread finished the runs it took (those it did not were scored here).
   */
  #share(
    buffer: SharedArrayBuffer,
    job: { kind: number; count: number; args: readonly number[]; out: number; helperOut: number },
    here: (first: number, n: number) => void,
    meanwhile: (() => void) | undefined,
  ): boolean | undefined {
    const { count } = job;
    const control = this.#control;
    if (this.#dead || Atomics.load(control, READY) !== 1 || Atomics.load(control, STATE) === BUSY || count === 0) {
      meanwhile?.();
      here(0, count);
      return undefined;
    }
    const run = Math.ceil(count / CHUNKS);
    control.fill(0, CHUNK_OWNER, CHUNK_OWNER + CHUNKS);
    control.set([job.kind, count, run, ...job.args], JOB);
    Atomics.store(control, NEXT, 0);
    Atomics.store(control, STATE, BUSY);
    Atomics.notify(control, STATE);
    try {
      meanwhile?.();
    } finally {
      for (let chunk = Atomics.add(control, NEXT, 1); chunk * run < count; chunk = Atomics.add(control, NEXT, 1)) {
        const first = chunk * run;
        here(first, Math.min(run, count - first));
        Atomics.store(control, CHUNK_OWNER + chunk, CALLER);
      }
    }
    let taken = false;
    for (let chunk = 0; chunk * run < count; chunk++) if (Atomics.load(control, CHUNK_OWNER + chunk) !== CALLER) taken = true;
    // The thread took no run (it had not woken yet): every score is here, and the thread stays busy
    // with this pass until it wakes and finds none left.
    if (!taken) return undefined;
    Atomics.wait(control, STATE, BUSY, HELPER_WAIT_MS);
    const finished = Atomics.load(control, STATE) === DONE;
    if (finished) Atomics.store(control, STATE, IDLE);
    const words = new Int32Array(buffer);
    for (let chunk = 0; chunk * run < count; chunk++) {
      const first = chunk * run;
      const n = Math.min(run, count - first);
      const owner = Atomics.load(control, CHUNK_OWNER + chunk);
      if (owner === HELPER) words.copyWithin(job.out / 4 + first, job.helperOut / 4 + first, job.helperOut / 4 + first + n);
      else if (owner !== CALLER) here(first, n);
    }
    return finished;
  }

  close(): void {
    Atomics.store(this.#control, STATE, STOP);
    Atomics.notify(this.#control, STATE);
    void this.#worker.terminate();
  }
}

const closeWhenCollected = new FinalizationRegistry<ScanHelper>((helper) => helper.close());

/** Runs a pass is cut into. */
const CHUNKS = 64;
/**
 * How long a pass waits for the thread's last run (ms) before scoring it itself: long enough not to
 * give up on a thread that is only slowed, short enough that a hung one costs one slow search (it is
 * then busy, and later passes run on the calling thread alone).
 */
const HELPER_WAIT_MS = 500;
/**
 * Words of the control buffer: the state, whether the thread is ready, the next run to take, the
 * job (its kind, items and items per run, then its arguments with the helper's regions), and who
 * scored each run.
 */
const STATE = 0;
const READY = 1;
const NEXT = 2;
const JOB = 3;
const CHUNK_OWNER = JOB + 9;
const CONTROL_WORDS = CHUNK_OWNER + CHUNKS;
const IDLE = 0;
const BUSY = 1;
const DONE = 2;
const STOP = 3;
const CALLER = 1;
const HELPER = 2;
/** Kinds of pass. */
const TERNARY = 1;
const SHORTLIST = 2;

/** The thread: instantiates the scan module on the shared memory, then takes runs of each pass handed to it. */
const WORKER = `
const { workerData } = require("node:worker_threads");
const { module, memory, control } = workerData;
const scan = new WebAssembly.Instance(module, { scan: { memory } }).exports;
const words = new Int32Array(control);
Atomics.store(words, ${READY}, 1);
for (;;) {
  let state;
  while ((state = Atomics.load(words, ${STATE})) !== ${BUSY}) {
    if (state === ${STOP}) process.exit(0);
    Atomics.wait(words, ${STATE}, state);
  }
  const [kind, count, run, a, b, c, d, e, f] = words.subarray(${JOB}, ${JOB + 9});
  // A ternary pass: rows, plane, query, out, counts, bound. A shortlist: positions, stride, query, scales, out.
  if (kind === ${TERNARY}) new Int32Array(memory.buffer, e, 2 * f + 1).fill(0);
  for (let chunk = Atomics.add(words, ${NEXT}, 1); chunk * run < count; chunk = Atomics.add(words, ${NEXT}, 1)) {
    const first = chunk * run;
    const n = Math.min(run, count - first);
    if (kind === ${TERNARY}) scan.ternary(a + first * 2 * b, n, b, c, d + first * 4, e, f);
    else scan.scoresAt(0, a + first * 4, n, b, c, d, e + first * 4);
    Atomics.store(words, ${CHUNK_OWNER} + chunk, ${HELPER});
  }
  Atomics.store(words, ${STATE}, ${DONE});
  Atomics.notify(words, ${STATE});
}
`;
