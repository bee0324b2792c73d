import { z } from "zod";
import { type AiSdkEmbeddingModel, isAiSdkEmbeddingModel } from "./embedders/ai-sdk-embedder.js";
import type { Embedder } from "./embedders/embedder.js";
import type { EngramError } from "./errors.js";
import { type AiSdkLanguageModel, isAiSdkLanguageModel } from "./extraction/language-model.js";
import type { GraphStore } from "./graph/graph-store.js";
import type { HistoryLog } from "./history/history-log.js";
import type { Outbox } from "./history/outbox.js";
import { ttlDefaultsSchema } from "./lifecycle.js";
import type { Runtime } from "./runtime.js";
import type { VectorStore } from "./stores/vector-store.js";
import type { TracerLike } from "./telemetry/tracing.js";
import type { ErrorContext, Usage, UsageContext } from "./types.js";

const isFunction = (value: unknown): value is (...args: never[]) => unknown => typeof value === "function";

/** A zod check that a value implements a contract's methods; its message names the same methods it checks. */
function implementing<T>(what: string, contract: string, methods: readonly string[]) {
  return z.custom<T>(
    (value) =>
      value != null && typeof value === "object" && methods.every((method) => isFunction((value as Record<string, unknown>)[method])),
    `${what} must implement the ${contract} contract (${methods.join(", ")})`,
  );
}

const graphStoreMethods = ["init", "write", "relations", "neighbors", "memories", "known", "changes", "purge", "reset", "close"] as const;
const historyLogMethods = ["init", "append", "list", "purge", "reset", "close"] as const;
const outboxMethods = [
  "init",
  "enqueue",
  "claim",
  "renew",
  "savePlan",
  "discardPlan",
  "complete",
  "fail",
  "statuses",
  "pending",
  "retryFailed",
  "purgePending",
  "reset",
  "close",
] as const;
const hasMethods = (value: unknown, methods: readonly string[]) =>
  value != null && typeof value === "object" && methods.every((method) => isFunction((value as Record<string, unknown>)[method]));

const deadline = z.union([z.number().min(1).max(2_147_483_647), z.literal(Number.POSITIVE_INFINITY)], {
  error: "timeouts are in milliseconds, from 1 to 2147483647, or Infinity for none",
});

const retryShape = {
  /** Retries after the first attempt. @default 2 */
  retries: z.number().int().min(0).max(10).optional(),
  /** Delay before the first retry; doubles each time, with jitter. @default 250 */
  minDelayMs: z.number().min(0).optional(),
  /** @default 4000 */
  maxDelayMs: z.number().min(0).optional(),
};

/**
 * The options of `new Memory(options)`: this schema is their one definition, `MemoryOptions` is
 * derived from it.
 */
export const memoryOptionsSchema = z
  .strictObject({
    /** Where the embedded default keeps its SQLite file (`engram.db`). @default "./.engram" */
    dataDir: z.string().min(1, "dataDir must be a non-empty path").optional(),
    /**
     * Turns text into vectors: an `Embedder` or any AI SDK embedding model.
     * @default the offline local model (Universal Sentence Encoder lite, 512-d)
     */
    embedder: z
      .custom<Embedder | AiSdkEmbeddingModel>(
        (value) => isAiSdkEmbeddingModel(value) || (value != null && typeof value === "object" && isFunction((value as Embedder).embed)),
        "embedder must be an Embedder ({ embed(texts) }) or an AI SDK embedding model",
      )
      .optional(),
    /** @default sqliteStore in `dataDir` */
    vectorStore: implementing<VectorStore>("vectorStore", "VectorStore", [
      "init",
      "write",
      "search",
      "get",
      "list",
      "deleteMany",
      "reset",
      "close",
    ]).optional(),
    /**
     * The change log, and the write-behind outbox unless `outbox` is given (then it only needs to be
     * a `HistoryLog`). @default sqliteHistory in `dataDir` (same file)
     */
    historyStore: implementing<HistoryLog | (HistoryLog & Outbox)>("historyStore", "HistoryLog", historyLogMethods).optional(),
    /** Where `enqueue`d turns wait for the write-behind worker. @default the `historyStore` */
    outbox: implementing<Outbox>("outbox", "Outbox", outboxMethods).optional(),
    /**
     * Graph memory (docs/graph.md): entities and the relations between them, derived from every
     * memory written, per scope, read with `memory.graph` and `search(query, { graph: true })`.
     * `true` keeps it in the SQLite file of `dataDir`; `{ store }` takes a `GraphStore`
     * (`postgresGraph` for many app servers). @default false
     */
    graph: z
      .union(
        [
          z.boolean(),
          z.strictObject({
            store: implementing<GraphStore>("graph.store", "GraphStore", graphStoreMethods),
          }),
        ],
        {
          error: `graph must be true, false, or { store } with a store implementing the GraphStore contract (${graphStoreMethods.join(", ")}), e.g. postgresGraph({ connectionString })`,
        },
      )
      .optional(),
    /** Longest text accepted per message, query or update, in characters. @default 32000 */
    maxMessageLength: z.number().int().min(1).max(1_000_000).optional(),
    /** The profile of each scope (`memory.profile`): a few facts injected into every call. */
    profile: z
      .strictObject({
        /** Largest profile accepted by `setProfile`, in tokens (estimated, erring high). @default 300 */
        maxTokens: z.number().int().min(10).max(4_000).optional(),
        /**
         * With an `llm`, the extraction call of each `add` sees the scope's profile and may edit it
         * (within `maxTokens`), in the same call. Without an `llm` the profile changes only by
         * `setProfile`. @default true
         */
        fromExtraction: z.boolean().optional(),
      })
      .optional(),
    /**
     * How long memories live by default, per scope level: `{ run: "7d" }` lets run-scoped memories
     * fade while user-level facts stay. The most specific id of the add's scope decides (`runId`,
     * then `agentId`, then `userId`); a level without a value never expires. An add's own
     * `expiresAt` / `ttl` wins. Durations: `"30m"`, `"12h"`, `"7d"`, `"2w"`, or milliseconds.
     * @default none: memories never expire
     */
    ttl: ttlDefaultsSchema.optional(),
    /** The background sweep that deletes expired memories (they are never returned once expired, swept or not). */
    sweep: z
      .strictObject({
        /**
         * Sweep every scope in this process, every `intervalMs`. Needs a store that can list its
         * scopes (SQLite, in-memory). @default true when `ttl` is set, else false
         */
        enabled: z.boolean().optional(),
        /** @default 3600000 (one hour) */
        intervalMs: z.number().int().min(10).max(2_147_483_647).optional(),
        /** Erase swept memories' text from history too (as `delete({ purge: true })`), instead of keeping it there. @default false */
        purge: z.boolean().optional(),
      })
      .optional(),
    /** Weight of the keyword (BM25) score in hybrid search; 0 makes search purely semantic. @default 0.3 */
    keywordWeight: z.number().min(0).max(1).optional(),
    /** Retries of embedder calls (and of history writes) on failure. */
    retry: z.strictObject(retryShape).optional(),
    /** The write-behind worker that processes `enqueue`d turns. It starts with the Memory's first call. */
    writeBehind: z
      .strictObject({
        /** Process the outbox in this process. Turn off in processes that only read, or to run workers elsewhere. @default true */
        enabled: z.boolean().optional(),
        /** How often an idle worker looks for turns enqueued by other processes or due for a retry. @default 1000 */
        pollIntervalMs: z.number().int().min(10).optional(),
        /** Users (else agents, else runs) whose turns are processed at once; never two turns of one at once. @default 2 */
        concurrency: z.number().int().min(1).max(64).optional(),
        /**
         * Waiting turns of one user (else agent, else run) a worker takes together: their verbatim
         * adds get ONE embedding call and ONE transaction, each turn still done exactly once. 1
         * processes each turn alone. @default 16
         */
        batchSize: z.number().int().min(1).max(100).optional(),
        /** Attempts before a turn is marked failed (it stays in the outbox, visible through `pending()`). @default 5 */
        maxAttempts: z.number().int().min(1).max(100).optional(),
        /** How long a claim lasts without renewal; a crashed worker's turns are taken over after it. @default 30000 */
        leaseMs: z.number().int().min(100).optional(),
        /** First retry delay, doubled each attempt. @default 500 */
        minDelayMs: z.number().min(0).optional(),
        /** @default 30000 */
        maxDelayMs: z.number().min(0).optional(),
        /** How long the trace of a done turn (its id, for idempotency) is kept before it is pruned. @default 604800000 (7 days) */
        keepDoneMs: z.number().int().min(0).optional(),
      })
      .optional(),
    /**
     * Sees every failure Engram handles away from the caller: background write-behind failures and
     * retried attempts. @default logs to stderr through the `engram` logger
     */
    onError: z.custom<(error: EngramError, context: ErrorContext) => void>(isFunction, "onError must be a function").optional(),
    /**
     * The model that turns turns into facts: any AI SDK language model (`openai("gpt-5-mini")`,
     * Anthropic, Ollama or LM Studio through `@ai-sdk/openai-compatible`, …). With it, `add` extracts
     * and reconciles (see docs/extraction.md); without it, `add` stores messages verbatim.
     * Needs the `ai` package (`npm install ai@^7`).
     */
    llm: z.custom<AiSdkLanguageModel>(isAiSdkLanguageModel, 'llm must be an AI SDK language model, e.g. openai("gpt-5-mini")').optional(),
    /** Added to the extraction instructions, e.g. what to remember for your app and what not. */
    customInstructions: z.string().max(8_000, "customInstructions must be at most 8000 characters").optional(),
    /** Whose messages facts are taken from. Assistant messages are always shown as context. @default "user" */
    extractFrom: z.enum(["user", "user-and-assistant"]).optional(),
    /** How many existing memories of the scope, the most similar to the new messages, the model sees to update or delete. @default 10 */
    similarMemories: z.number().int().min(0).max(50).optional(),
    /**
     * Retries of the extraction model call on transport errors and timeouts.
     * @default { retries: 2, minDelayMs: 250, maxDelayMs: 4000, timeoutMs: 60000 }
     */
    llmRetry: z
      .strictObject({
        ...retryShape,
        /** Longest wait for one model call before it counts as failed (and is retried). @default 60000 */
        timeoutMs: z.number().int().min(1).optional(),
      })
      .optional(),
    /** Receives what each add cost (model calls, tokens, embedding calls), including adds run by the write-behind worker. */
    onUsage: z.custom<(usage: Usage, context: UsageContext) => void>(isFunction, "onUsage must be a function").optional(),
    /**
     * Most facts (decisions) one extraction reply may carry; beyond it the rest are ignored with a
     * warning (in the add's `warnings` and through `onError`). @default 50
     */
    maxFactsPerAdd: z.number().int().min(1).max(10_000).optional(),
    /**
     * Deadlines of the calls Engram makes, per attempt, in milliseconds (`Infinity` for none). A call
     * that misses its deadline fails with a `TimeoutError` (and is retried like any failure); it is
     * never waited for again. The extraction model's deadline is `llmRetry.timeoutMs`.
     */
    timeouts: z
      .strictObject({
        /** One embedder call (the first one also loads a local model). @default 30000 */
        embedMs: deadline.optional(),
        /** One vector store or history store call. @default 30000 */
        storeMs: deadline.optional(),
        /**
         * How long `close()` waits for the turns in progress and for the stores to close. Turns still in
         * progress then stay in the outbox and are taken over by the next worker once their lease ends.
         * @default 10000
         */
        closeMs: deadline.optional(),
      })
      .optional(),
    /**
     * OpenTelemetry spans (through `@opentelemetry/api`, an optional peer: without it, none) for
     * search, add, extraction, write-behind turns and store calls, children of the active span.
     * Scope ids are left out unless `scopeIds` says otherwise. See docs/lifecycle.md.
     */
    telemetry: z
      .strictObject({
        enabled: z.boolean().optional(),
        tracer: z
          .custom<TracerLike>(
            (value) => value !== null && typeof value === "object" && typeof (value as { startSpan?: unknown }).startSpan === "function",
            "telemetry.tracer must be an OpenTelemetry Tracer (trace.getTracer(...))",
          )
          .optional(),
        scopeIds: z.enum(["omit", "hash", "include"]).optional(),
      })
      .optional(),
    /** Time and ids (`{ now, id }`), for tests that drive a fake clock. @default Date.now and crypto.randomUUID */
    _internal: z
      .strictObject({
        now: z.custom<Runtime["now"]>(isFunction, "_internal.now must be a function returning milliseconds").optional(),
        id: z.custom<Runtime["id"]>(isFunction, "_internal.id must be a function returning a unique id").optional(),
      })
      .optional(),
  })
  .refine(
    (options) => options.outbox !== undefined || options.historyStore === undefined || hasMethods(options.historyStore, outboxMethods),
    {
      path: ["historyStore"],
      message: "historyStore is only a HistoryLog: pass an outbox too, or a historyStore that also implements Outbox",
    },
  );

/** Options of `new Memory(options)`. */
export type MemoryOptions = z.input<typeof memoryOptionsSchema>;

/** The deadlines of `MemoryOptions.timeouts`, with their defaults. */
export type Timeouts = Required<NonNullable<MemoryOptions["timeouts"]>>;

export const defaultTimeouts: Timeouts = { embedMs: 30_000, storeMs: 30_000, closeMs: 10_000 };
