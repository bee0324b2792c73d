import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

/**
 * A thread that runs part of a large scan's ternary pass (`QuantizedRows.scan`) on the rows' shared
 * WebAssembly memory, while the calling thread runs the rest: the pass is memory- and popcount-bound,
 * about 22 ms for 1,000,000 rows on one core of `bench:store`'s machine and about 11 with two.
 *
 * Handing over is synchronous: the job goes into words of a SharedArrayBuffer, the caller wakes the
 * thread with `Atomics.notify` and later waits with `Atomics.wait`, so no event-loop turn is spent.
 * When the thread is not ready yet (it starts in about 30 ms), is still on a job the caller gave up
 * on, or has died, `start` says no and the caller scans everything itself; when it is late, the caller
 * stops waiting and does its part too. Either way the scores are the same: the thread writes its own
 * regions of the memory, which the caller reads only once the thread says it is done.
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
   * Hands the thread `ternary(rows, count, plane, query, out, counts, bound)` (the counts are zeroed
   * first, there): false, and nothing handed over, when the thread cannot take it now.
   */
  start(job: readonly [number, number, number, number, number, number, number]): boolean {
    const control = this.#control;
    if (this.#dead || Atomics.load(control, READY) !== 1 || Atomics.load(control, STATE) === BUSY) return false;
    control.set(job, JOB);
    Atomics.store(control, STATE, BUSY);
    Atomics.notify(control, STATE);
    return true;
  }

  /** Waits up to `timeoutMs` for the job handed over: true once it is done, false when the caller must do it. */
  finish(timeoutMs: number): boolean {
    const control = this.#control;
    Atomics.wait(control, STATE, BUSY, timeoutMs);
    if (Atomics.load(control, STATE) !== DONE) return false;
    Atomics.store(control, STATE, IDLE);
    return true;
  }

  close(): void {
    Atomics.store(this.#control, STATE, STOP);
    Atomics.notify(this.#control, STATE);
    void this.#worker.terminate();
  }
}

const closeWhenCollected = new FinalizationRegistry<ScanHelper>((helper) => helper.close());

/** Words of the control buffer: the state, whether the thread is ready, then the job's seven arguments. */
const STATE = 0;
const READY = 1;
const JOB = 2;
const CONTROL_WORDS = JOB + 7;
const IDLE = 0;
const BUSY = 1;
const DONE = 2;
const STOP = 3;

/** The thread: instantiates the scan module on the shared memory, then runs each job handed to it. */
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
  const [rows, count, plane, query, out, counts, bound] = words.subarray(${JOB}, ${JOB + 7});
  new Int32Array(memory.buffer, counts, 2 * bound + 1).fill(0);
  scan.ternary(rows, count, plane, query, out, counts, bound);
  Atomics.store(words, ${STATE}, ${DONE});
  Atomics.notify(words, ${STATE});
}
`;
