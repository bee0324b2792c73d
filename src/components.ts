import { join } from "node:path";
import type { PlanWriter } from "./apply-plan.js";
import { aiSdkEmbedder, isAiSdkEmbeddingModel } from "./embedders/ai-sdk-embedder.js";
import { localEmbedder } from "./embedders/local-embedder.js";
import {
  cacheQueryEmbeddings,
  countEmbeddingCalls,
  embedDeadline,
  retryEmbeddings,
  validateVectors,
  type WrappedEmbedder,
  wrapEmbedder,
} from "./embedders/wrap-embedder.js";
import { EmbeddingError, type EngramError } from "./errors.js";
import type { GraphStore } from "./graph/graph-store.js";
import { sqliteGraph } from "./graph/sqlite-graph.js";
import type { HistoryLog } from "./history/history-log.js";
import type { Outbox } from "./history/outbox.js";
import { sqliteHistory } from "./history/sqlite-history.js";
import type { RetryOptions } from "./internal/async.js";
import { jointWriter } from "./internal/sqlite-joint.js";
import type { MemoryOptions, Timeouts } from "./memory-options.js";
import type { Runtime } from "./runtime.js";
import { guardedCall, guardStore } from "./stores/guard-store.js";
import { sqliteStore } from "./stores/sqlite-store.js";
import type { VectorStore } from "./stores/vector-store.js";
import { loadTracing, type Tracing, traceStore } from "./telemetry/tracing.js";
import type { ErrorContext } from "./types.js";

/** Everything a `Memory` works with, built once and wrapped once: deadlines, retries and typed errors live here, not at each call. */
export interface Components extends PlanWriter {
  embedder: WrappedEmbedder;
  store: VectorStore;
  history: HistoryLog;
  /** The write-behind queue: the `outbox` option, else the history store (which then implements it). */
  outbox: Outbox;
  dimension: number;
  /** Spans around Engram's work (a no-op without `@opentelemetry/api` or with `telemetry.enabled` false). */
  tracing: Tracing;
  /** Graph memory, when it is on. */
  graph: GraphStore | undefined;
  /** Closes each store once (the history and the outbox are often one object). */
  close(): Promise<unknown>;
  /** Empties each store once. */
  reset(): Promise<void>;
}

/** Query vectors kept per Memory (about 2 KB each at 512 dimensions). */
const queryEmbeddingCacheSize = 256;

export interface ComponentSettings {
  options: Pick<MemoryOptions, "dataDir" | "embedder" | "vectorStore" | "historyStore" | "outbox" | "telemetry" | "graph">;
  retry: RetryOptions;
  timeouts: Timeouts;
  report(error: EngramError, context: ErrorContext): void;
  runtime: Runtime;
}

/**
 * The default wiring: the given components or the embedded defaults (local model, SQLite in
 * `dataDir`), each wrapped once, initialised (tables, dimension), ready to use.
 */
export async function createComponents({ options, retry, timeouts, report, runtime }: ComponentSettings): Promise<Components> {
  const file = join(options.dataDir ?? "./.engram", "engram.db");
  const given = options.embedder;
  // An AI SDK model gets no retries of its own: the embedder wrapper below retries every embedder alike.
  const raw = given === undefined ? localEmbedder() : isAiSdkEmbeddingModel(given) ? aiSdkEmbedder(given, { maxRetries: 0 }) : given;
  const embedder = wrapEmbedder(raw, [
    cacheQueryEmbeddings({ size: queryEmbeddingCacheSize }),
    retryEmbeddings({ ...retry, report: (error, attempt) => report(error, { operation: "embed", attempt, willRetry: true }) }),
    countEmbeddingCalls(),
    embedDeadline(timeouts.embedMs),
    validateVectors(),
  ]);
  const rawStore = options.vectorStore ?? sqliteStore({ path: file });
  const rawHistory = options.historyStore ?? sqliteHistory({ path: file, now: runtime.now });
  // Without an outbox of its own, the history is the outbox too (the option check made sure it can be).
  const rawOutbox = options.outbox ?? (rawHistory as HistoryLog & Outbox);
  const guard = { timeoutMs: timeouts.storeMs };
  const tracing = await loadTracing(options.telemetry);
  const store = traceStore(guardStore(rawStore, guard), tracing, "vector");
  const history = traceStore(guardStore(rawHistory, guard), tracing, "history");
  const outbox = (rawOutbox as object) === rawHistory ? (history as HistoryLog & Outbox) : guardStore(rawOutbox, guard);
  const parts = [...new Set<HistoryLog | Outbox>([history, outbox])];
  const joint = jointWriter(rawStore, rawHistory);
  const jointWrite: Components["jointWrite"] =
    joint &&
    ((batch, entries) =>
      tracing.span(
        "engram.store.write",
        {
          "engram.store.kind": "vector+history",
          "engram.store.upserts": batch.upsert?.length ?? 0,
          "engram.store.deletes": batch.delete?.length ?? 0,
        },
        () => guardedCall("write", timeouts.storeMs, () => joint(batch, entries)),
      ));
  const graph =
    options.graph === undefined || options.graph === false
      ? undefined
      : guardStore(options.graph === true ? sqliteGraph({ path: file }) : options.graph.store, guard);
  for (const part of parts) await part.init();
  await graph?.init();
  const dimension = raw.dimension ?? (await embedder.embed(["dimension probe"]))[0]?.length;
  if (!dimension) throw new EmbeddingError({ message: "The embedder returned an empty vector" });
  await store.init({ dimension, modelId: raw.modelId });
  return {
    embedder,
    store,
    history,
    outbox,
    dimension,
    tracing,
    graph,
    close: () => Promise.allSettled([store.close(), ...parts.map((part) => part.close()), ...(graph ? [graph.close()] : [])]),
    async reset() {
      await store.reset();
      for (const part of parts) await part.reset();
      await graph?.reset();
    },
    jointWrite,
    retry,
    report,
  };
}
