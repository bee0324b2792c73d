import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { z } from "zod";
import { type AiSdkEmbeddingModel, aiSdkEmbedder, isAiSdkEmbeddingModel } from "./embedders/ai-sdk-embedder.js";
import type { Embedder } from "./embedders/embedder.js";
import { localEmbedder } from "./embedders/local-embedder.js";
import {
  asStoreError,
  ConfigError,
  EmbeddingError,
  type EngramError,
  isUserError,
  MemoryNotFoundError,
  StoreError,
  TimeoutError,
  WriteConflictError,
} from "./errors.js";
import { type AiSdkLanguageModel, isAiSdkLanguageModel } from "./extraction/language-model.js";
import { type ExtractionSettings, planExtraction } from "./extraction/plan-extraction.js";
import type { ExtractFrom } from "./extraction/prompt.js";
import type { HistoryEntry, HistoryLog } from "./history/history-log.js";
import type { Message, Outbox, OutboxEntry } from "./history/outbox.js";
import { outboxEntryId } from "./history/outbox-entry-id.js";
import { sqliteHistory } from "./history/sqlite-history.js";
import { defaultRetry, KeyedMutex, type RetryOptions, retry, withDeadline } from "./internal/async.js";
import { normaliseText, textHash } from "./internal/hash.js";
import { jointWriter } from "./internal/sqlite-joint.js";
import { deserialisePlan, emptyPlan, emptyUsage, historyEntry, type Plan, planAdd, planDelete, planUpdate, serialisePlan } from "./plan.js";
import { fuseHits } from "./retrieval/hybrid.js";
import { lockKeyOf, type Scope, sameScope, scopeKeys, scopeOf, type ValidScope, validateScope } from "./scope.js";
import { sqliteStore } from "./stores/sqlite-store.js";
import {
  isKeywordSearchable,
  isScopeEnumerable,
  type MemoryRecord,
  type ScopeCount,
  type ScoredRecord,
  type StoreFilter,
  type VectorStore,
} from "./stores/vector-store.js";
import type { AddResult, ErrorContext, HistoryRecord, MemoryItem, PendingTurn, Usage, UsageContext } from "./types.js";
import {
  filtersSchema,
  metadataSchema,
  parse,
  parseAllScopes,
  parseId,
  parseMessages,
  parseScoped,
  parseScopeOrAll,
  parseText,
  timestampSchema,
} from "./validation.js";
import { defaultWriteBehind, leaseLost, type WriteBehindOptions, WriteBehindWorker } from "./write-behind.js";

const isFunction = (value: unknown) => typeof value === "function";
const hasMethods = (value: unknown, methods: readonly string[]) =>
  value != null && typeof value === "object" && methods.every((m) => isFunction((value as Record<string, unknown>)[m]));
const historyLogMethods = ["init", "append", "list", "purge"];
const outboxMethods = ["init", "enqueue", "claim", "complete", "fail"];

const deadline = z.union([z.number().min(1).max(2_147_483_647), z.literal(Number.POSITIVE_INFINITY)], {
  error: "timeouts are in milliseconds, from 1 to 2147483647, or Infinity for none",
});

const memoryOptionsSchema = z
  .strictObject({
    dataDir: z.string().min(1, "dataDir must be a non-empty path").optional(),
    embedder: z
      .custom<Embedder | AiSdkEmbeddingModel>(
        (value) => isAiSdkEmbeddingModel(value) || (value != null && typeof value === "object" && isFunction((value as Embedder).embed)),
        "embedder must be an Embedder ({ embed(texts) }) or an AI SDK embedding model",
      )
      .optional(),
    vectorStore: z
      .custom<VectorStore>(
        (value) =>
          value != null &&
          typeof value === "object" &&
          ["init", "write", "search", "get", "list"].every((m) => isFunction((value as Record<string, unknown>)[m])),
        "vectorStore must implement the VectorStore contract (init, write, search, get, list, deleteMany, reset, close)",
      )
      .optional(),
    historyStore: z
      .custom<HistoryLog>(
        (value) => hasMethods(value, historyLogMethods),
        "historyStore must implement the HistoryLog contract (init, append, list, purge, reset, close)",
      )
      .optional(),
    outbox: z
      .custom<Outbox>(
        (value) => hasMethods(value, outboxMethods),
        "outbox must implement the Outbox contract (init, enqueue, claim, renew, savePlan, complete, fail, pending, …)",
      )
      .optional(),
    maxMessageLength: z.number().int().min(1).max(1_000_000).optional(),
    keywordWeight: z.number().min(0).max(1).optional(),
    retry: z
      .strictObject({
        retries: z.number().int().min(0).max(10).optional(),
        minDelayMs: z.number().min(0).optional(),
        maxDelayMs: z.number().min(0).optional(),
      })
      .optional(),
    writeBehind: z
      .strictObject({
        enabled: z.boolean().optional(),
        pollIntervalMs: z.number().int().min(10).optional(),
        concurrency: z.number().int().min(1).max(64).optional(),
        maxAttempts: z.number().int().min(1).max(100).optional(),
        leaseMs: z.number().int().min(100).optional(),
        minDelayMs: z.number().min(0).optional(),
        maxDelayMs: z.number().min(0).optional(),
        keepDoneMs: z.number().int().min(0).optional(),
      })
      .optional(),
    onError: z.custom<(error: EngramError, context: ErrorContext) => void>(isFunction, "onError must be a function").optional(),
    llm: z.custom<AiSdkLanguageModel>(isAiSdkLanguageModel, 'llm must be an AI SDK language model, e.g. openai("gpt-5-mini")').optional(),
    customInstructions: z.string().max(8_000, "customInstructions must be at most 8000 characters").optional(),
    extractFrom: z.enum(["user", "user-and-assistant"]).optional(),
    similarMemories: z.number().int().min(0).max(50).optional(),
    llmRetry: z
      .strictObject({
        retries: z.number().int().min(0).max(10).optional(),
        minDelayMs: z.number().min(0).optional(),
        maxDelayMs: z.number().min(0).optional(),
        timeoutMs: z.number().int().min(1).optional(),
      })
      .optional(),
    onUsage: z.custom<(usage: Usage, context: UsageContext) => void>(isFunction, "onUsage must be a function").optional(),
    maxFactsPerAdd: z.number().int().min(1).max(10_000).optional(),
    timeouts: z
      .strictObject({
        embedMs: deadline.optional(),
        storeMs: deadline.optional(),
        closeMs: deadline.optional(),
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

export interface MemoryOptions {
  /** Where the embedded default keeps its SQLite file (`engram.db`). @default "./.engram" */
  dataDir?: string;
  /**
   * Turns text into vectors: an `Embedder` or any AI SDK embedding model.
   * @default the offline local model (Universal Sentence Encoder lite, 512-d)
   */
  embedder?: Embedder | AiSdkEmbeddingModel;
  /** @default sqliteStore in `dataDir` */
  vectorStore?: VectorStore;
  /**
   * The change log, and the write-behind outbox unless `outbox` is given (then it only needs to be
   * a `HistoryLog`). @default sqliteHistory in `dataDir` (same file)
   */
  historyStore?: HistoryLog | (HistoryLog & Outbox);
  /** Where `enqueue`d turns wait for the write-behind worker. @default the `historyStore` */
  outbox?: Outbox;
  /** Longest text accepted per message, query or update, in characters. @default 32000 */
  maxMessageLength?: number;
  /** Weight of the keyword (BM25) score in hybrid search; 0 makes search purely semantic. @default 0.3 */
  keywordWeight?: number;
  /** Retries of embedder calls (and of history writes) on failure. */
  retry?: Partial<RetryOptions>;
  /** The write-behind worker that processes `enqueue`d turns. */
  writeBehind?: Partial<WriteBehindOptions>;
  /**
   * Sees every failure Engram handles away from the caller: background write-behind failures and
   * retried attempts. @default logs to console.error
   */
  onError?: (error: EngramError, context: ErrorContext) => void;
  /**
   * The model that turns turns into facts: any AI SDK language model (`openai("gpt-5-mini")`,
   * Anthropic, Ollama or LM Studio through `@ai-sdk/openai-compatible`, …). With it, `add` extracts
   * and reconciles (see docs/extraction.md); without it, `add` stores messages verbatim.
   * Needs the `ai` package (`npm install ai@^7`).
   */
  llm?: AiSdkLanguageModel;
  /** Added to the extraction instructions, e.g. what to remember for your app and what not. */
  customInstructions?: string;
  /**
   * Whose messages facts are taken from. Assistant messages are always shown as context.
   * @default "user"
   */
  extractFrom?: ExtractFrom;
  /** How many existing memories of the scope, the most similar to the new messages, the model sees to update or delete. @default 10 */
  similarMemories?: number;
  /**
   * Retries of the extraction model call on transport errors and timeouts.
   * @default { retries: 2, minDelayMs: 250, maxDelayMs: 4000, timeoutMs: 60000 }
   */
  llmRetry?: Partial<RetryOptions & { timeoutMs: number }>;
  /** Receives what each add cost (model calls, tokens, embedding calls), including adds run by the write-behind worker. */
  onUsage?: (usage: Usage, context: UsageContext) => void;
  /**
   * Most facts (decisions) one extraction reply may carry; beyond it the rest are ignored with a
   * warning (in the add's `warnings` and through `onError`). @default 50
   */
  maxFactsPerAdd?: number;
  /**
   * Deadlines of the calls Engram makes, per attempt, in milliseconds (`Infinity` for none). A call
   * that misses its deadline fails with a `TimeoutError` (and is retried like any failure); it is
   * never waited for again. The extraction model's deadline is `llmRetry.timeoutMs`.
   */
  timeouts?: Partial<Timeouts>;
}

export interface Timeouts {
  /** One embedder call (the first one also loads a local model). @default 30000 */
  embedMs: number;
  /** One vector store or history store call. @default 30000 */
  storeMs: number;
  /**
   * How long `close()` waits for the turns in progress and for the stores to close. Turns still in
   * progress then stay in the outbox and are taken over by the next worker once their lease ends.
   * @default 10000
   */
  closeMs: number;
}

export const defaultTimeouts: Timeouts = { embedMs: 30_000, storeMs: 30_000, closeMs: 10_000 };

export interface AddOptions extends Scope {
  /** Stored with every memory this call creates. Cannot hold scope keys. */
  metadata?: Record<string, unknown>;
  /** Extract facts with the llm (true) or store each message as it is (false). @default true with an llm, false without */
  infer?: boolean;
  /** When the turn happened (becomes `createdAt` of new memories). @default now */
  timestamp?: Date | string;
}

export interface EnqueueOptions extends AddOptions {
  /** Makes the enqueue idempotent within its scope: a second enqueue with the same key and scope is ignored. @default a random UUID */
  idempotencyKey?: string;
}

export interface SearchOptions extends Scope {
  /** @default 10, at most 100 */
  limit?: number;
  /** Minimum fused score in [0, 1] (see `search`). @default 0 */
  threshold?: number;
  /** Metadata equality filters, AND-ed. */
  filters?: Record<string, string | number | boolean | null>;
}

export interface GetAllOptions extends Scope {
  /** @default 100, at most 1000 */
  limit?: number;
  filters?: Record<string, string | number | boolean | null>;
}

export interface DeleteOptions extends Scope {
  /** Erase the text for good: from the memory, its history and pending turns, and from the database file. */
  purge?: boolean;
}

export interface FlushResult {
  /** Turns enqueued here that are now in memory. */
  processed: number;
  /** Turns enqueued here that failed every attempt (still in the outbox: see `pending()`). */
  failed: number;
  /** Turns still waiting when `timeoutMs` ran out. */
  waiting: number;
}

interface Components {
  embedder: Embedder;
  store: VectorStore;
  history: HistoryLog;
  outbox: Outbox;
  dimension: number;
  /** Writes a batch and its history in one transaction, when the store and history share one SQLite file. */
  jointWrite: ReturnType<typeof jointWriter>;
}

const addSchema = z.strictObject({
  metadata: metadataSchema.optional(),
  infer: z.boolean().optional(),
  timestamp: timestampSchema.optional(),
});
const enqueueSchema = addSchema.extend({
  idempotencyKey: z
    .string()
    .min(1, "idempotencyKey must be a non-empty string of at most 256 characters")
    .max(256, "idempotencyKey must be a non-empty string of at most 256 characters")
    .optional(),
});
const searchSchema = z.strictObject({
  limit: z
    .number()
    .int("limit must be a whole number")
    .min(1, "limit must be between 1 and 100")
    .max(100, "limit must be between 1 and 100")
    .optional(),
  threshold: z.number().min(0, "threshold must be between 0 and 1").max(1, "threshold must be between 0 and 1").optional(),
  filters: filtersSchema.optional(),
});
const getAllSchema = z.strictObject({
  limit: z
    .number()
    .int("limit must be a whole number")
    .min(1, "limit must be between 1 and 1000")
    .max(1000, "limit must be between 1 and 1000")
    .optional(),
  filters: filtersSchema.optional(),
});
const deleteSchema = z.strictObject({ purge: z.boolean().optional() });
const timeoutMessage = "timeoutMs must be a number of milliseconds ≥ 0, or Infinity";
const flushSchema = z.strictObject(
  { timeoutMs: z.union([z.number().min(0, timeoutMessage), z.literal(Number.POSITIVE_INFINITY)], { error: timeoutMessage }).optional() },
  { error: "flush() takes an options object, e.g. { timeoutMs: 5000 }" },
);

const PAGE = 500;

function toItem(record: MemoryRecord, score?: number): MemoryItem {
  const item: MemoryItem = {
    id: record.id,
    memory: record.text,
    hash: record.hash,
    metadata: { ...record.metadata },
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
  for (const key of scopeKeys) if (record[key] !== undefined) item[key] = record[key];
  if (score !== undefined) item.score = score;
  return item;
}

function defaultOnError(error: EngramError, context: ErrorContext): void {
  const where = context.entryId ? ` (turn ${context.entryId})` : "";
  const next =
    context.willRetry === false
      ? " Giving up: the turn stays in the outbox, see memory.pending()."
      : context.willRetry
        ? " Will retry."
        : "";
  const message = /[.!?]$/.test(error.message) ? error.message : `${error.message}.`;
  console.error(`[engram] ${context.operation}${where}: ${error.name}: ${message}${next}`);
}

/**
 * Long-term memory for an LLM app, scoped by user, agent and run.
 *
 * Every call needs a scope (at least one of `userId`, `agentId`, `runId`); there is no global
 * namespace. With no options it is embedded and offline: a local embedding model and one SQLite
 * file under `./.engram`.
 *
 * @example
 * const memory = new Memory();
 * await memory.add("I prefer Postgres", { userId: "alice" });
 * const { results } = await memory.search("which database?", { userId: "alice" });
 */
export class Memory {
  readonly #options: z.infer<typeof memoryOptionsSchema>;
  readonly #retry: RetryOptions;
  readonly #timeouts: Timeouts;
  readonly #maxLength: number;
  readonly #keywordWeight: number;
  readonly #onError: (error: EngramError, context: ErrorContext) => void;
  readonly #extraction: ExtractionSettings | undefined;
  readonly #locks = new KeyedMutex();
  readonly #enqueued = new Set<string>();
  readonly #worker: WriteBehindWorker | undefined;
  #components: Promise<Components> | undefined;
  #closed: Promise<void> | undefined;
  /** Set once `close` has let the turns in progress finish: from then on nothing reaches the stores. */
  #shutDown = false;

  constructor(options: MemoryOptions = {}) {
    this.#options = parse(memoryOptionsSchema, options ?? {}, "new Memory");
    this.#retry = { ...defaultRetry, ...this.#options.retry };
    this.#timeouts = { ...defaultTimeouts, ...this.#options.timeouts };
    this.#maxLength = this.#options.maxMessageLength ?? 32_000;
    this.#keywordWeight = this.#options.keywordWeight ?? 0.3;
    this.#onError = this.#options.onError ?? defaultOnError;
    const { llm, extractFrom = "user", customInstructions, similarMemories = 10, llmRetry } = this.#options;
    if (llm !== undefined) {
      this.#extraction = {
        model: llm,
        extractFrom,
        customInstructions,
        similarMemories,
        call: { ...defaultRetry, timeoutMs: 60_000, ...llmRetry },
        maxLength: this.#maxLength,
        maxFacts: this.#options.maxFactsPerAdd ?? 50,
      };
    }
    const writeBehind = { ...defaultWriteBehind, ...this.#options.writeBehind };
    if (writeBehind.enabled) {
      this.#worker = new WriteBehindWorker(
        () => this.#ready().then((c) => c.outbox),
        (entry, workerId) => this.#processEntry(entry, workerId),
        writeBehind,
        (error, context) => this.#report(error, context),
        this.#timeouts.storeMs,
      );
      // Turns left pending by a previous process are picked up at start.
      this.#worker.kick();
    }
  }

  // ── the public verbs ─────────────────────────────────────────────────────────────────────────

  /**
   * Remembers messages. With an `llm` (and `infer` not false), ONE model call extracts facts from
   * the messages and reconciles them with the most similar memories of this scope: events ADD,
   * UPDATE (previous text kept in history), DELETE, NONE; decisions that do not fit are ignored
   * and listed in `warnings`. Without one (or with `infer: false`), each non-system message is
   * stored as it is (event `ADD`), and a text already stored in exactly this scope gives event
   * `NONE`. Applied all-or-nothing.
   *
   * @throws ExtractionError when the model fails or its output cannot be used; nothing is stored.
   */
  async add(messages: string | Message[], options: AddOptions): Promise<AddResult> {
    const { scope, options: parsed } = parseScoped("add", options, addSchema);
    const turn = parseMessages("add", messages, this.#maxLength);
    this.#assertOpen();
    return this.#locks.run(lockKeyOf(scope), async () => {
      // A memory the plan changes may be changed by another call (another process) meanwhile: the
      // store refuses the write, and the add is decided again against what is stored now.
      const plan = await onConflict(async () => {
        const plan = await this.#plan(scope, turn, parsed);
        await this.#apply(plan);
        return plan;
      });
      return {
        results: plan.results,
        usage: plan.usage,
        ...(plan.warnings.length ? { warnings: plan.warnings } : {}),
      };
    });
  }

  /**
   * Hybrid search inside the scope: cosine similarity of embeddings fused with keyword (BM25)
   * relevance. `score` = (1 − keywordWeight) · max(0, cosine) + keywordWeight · bm25 / best bm25
   * of the query, in [0, 1]; `threshold` applies to it. Best first.
   */
  async search(query: string, options: SearchOptions): Promise<{ results: MemoryItem[] }> {
    this.#assertOpen();
    const { scope, options: parsed } = parseScoped("search", options, searchSchema);
    const text = parseText("search", "query", query, this.#maxLength);
    const { limit = 10, threshold = 0, filters } = parsed;
    const { store, embedder } = await this.#ready();
    const filter: StoreFilter = { scope, metadata: filters };
    const candidates = Math.max(limit * 3, 30);
    // The query goes to the embedder first (synchronously); the keyword lookup needs no vector and
    // runs meanwhile.
    const embedding = this.#embedWith(embedder, [text], emptyUsage());
    const keywordSearch: Promise<ScoredRecord[]> =
      this.#keywordWeight > 0 && isKeywordSearchable(store)
        ? this.#storeCall("keyword search", () => store.keywordSearch({ text, filter, limit: candidates }))
        : Promise.resolve([]);
    const [[vector], keywordHits] = (await Promise.all([embedding, keywordSearch])) as [[Float32Array], ScoredRecord[]];
    const vectorHits = await this.#storeCall("search", () => store.search({ vector, filter, limit: candidates }));
    const results = fuseHits(vectorHits, keywordHits, vector, this.#keywordWeight)
      .filter((hit) => hit.score >= threshold)
      .slice(0, limit)
      .map((hit) => toItem(hit.record, hit.score));
    return { results };
  }

  /** The memory with this id, or null when there is none inside `scope`. */
  async get(memoryId: string, scope: Scope): Promise<MemoryItem | null> {
    this.#assertOpen();
    const valid = validateScope("get", scope);
    const id = parseId("get", memoryId);
    const record = await this.#find(id, valid);
    return record ? toItem(record) : null;
  }

  /** Memories inside the scope, oldest first. */
  async getAll(options: GetAllOptions): Promise<{ results: MemoryItem[] }> {
    this.#assertOpen();
    const { scope, options: parsed } = parseScoped("getAll", options, getAllSchema);
    const { store } = await this.#ready();
    const { records } = await this.#storeCall("getAll", () =>
      store.list({ filter: { scope, metadata: parsed.filters }, limit: parsed.limit ?? 100 }),
    );
    return { results: records.map((record) => toItem(record)) };
  }

  /**
   * Every memory inside the scope, page by page, oldest first: for exports and migrations.
   */
  async *iterate(options: Scope & { filters?: GetAllOptions["filters"] }): AsyncGenerator<MemoryItem> {
    this.#assertOpen();
    const { scope, options: parsed } = parseScoped("iterate", options, getAllSchema.omit({ limit: true }));
    const { store } = await this.#ready();
    let cursor: string | undefined;
    do {
      const page = await this.#storeCall("iterate", () => store.list({ filter: { scope, metadata: parsed.filters }, limit: PAGE, cursor }));
      for (const record of page.records) yield toItem(record);
      cursor = page.cursor;
    } while (cursor);
  }

  /** Replaces a memory's text (re-embedded); the previous text is kept in its history. */
  async update(memoryId: string, text: string, scope: Scope): Promise<MemoryItem> {
    const valid = validateScope("update", scope);
    const id = parseId("update", memoryId);
    const newText = normaliseText(parseText("update", "text", text, this.#maxLength));
    this.#assertOpen();
    const hash = textHash(newText);
    return this.#locks.run(lockKeyOf(valid), () =>
      // Changed by another call while the text was embedded: read it again (a purged or deleted
      // memory is then not found) and update what is stored now.
      onConflict(async () => {
        const existing = await this.#find(id, valid, true);
        if (!existing) throw new MemoryNotFoundError({ memoryId: id });
        if (hash === existing.hash) return toItem(existing);
        const [vector] = (await this.#embed([newText], emptyUsage())) as [Float32Array];
        const now = new Date().toISOString();
        const updated: MemoryRecord = { ...existing, text: newText, hash, vector, updatedAt: now };
        const plan = emptyPlan();
        planUpdate(plan, existing, updated, now);
        await this.#apply(plan);
        return toItem(updated);
      }),
    );
  }

  /**
   * Deletes a memory. Its previous text stays in its history (readable with the memory's scope)
   * unless `purge` is set: then the text is erased from the memory, its history, pending turns and
   * the database file.
   */
  async delete(memoryId: string, options: DeleteOptions): Promise<void> {
    const { scope, options: parsed } = parseScoped("delete", options, deleteSchema);
    const id = parseId("delete", memoryId);
    this.#assertOpen();
    await this.#locks.run(lockKeyOf(scope), async () => {
      if (parsed.purge) return this.#purge(id, scope);
      await onConflict(async () => {
        const existing = await this.#find(id, scope, true);
        if (!existing) throw new MemoryNotFoundError({ memoryId: id });
        const plan = emptyPlan();
        planDelete(plan, existing, new Date().toISOString());
        await this.#apply(plan);
      });
    });
  }

  /**
   * Deletes every memory inside the scope (`{ userId }` covers all of that user's agents and runs).
   * With `purge`, also erases their history text and the scope's pending turns: the right to be
   * forgotten.
   */
  async deleteAll(options: DeleteOptions): Promise<{ deleted: number }> {
    const { scope, options: parsed } = parseScoped("deleteAll", options, deleteSchema);
    this.#assertOpen();
    return this.#locks.run(lockKeyOf(scope), async () => {
      const { store, history, outbox } = await this.#ready();
      let deleted = 0;
      // A store that lists a memory again after it was deleted (a damaged index) must not loop forever.
      const attempted = new Set<string>();
      const nextPage = async () => {
        const { records } = await this.#storeCall("deleteAll", () => store.list({ filter: { scope }, limit: PAGE }));
        if (records.some((record) => attempted.has(record.id))) {
          throw new StoreError({
            message:
              "deleteAll() made no progress: the store still lists memories it was asked to delete. Its index may be damaged: check the database (engram check) and see docs/operations.md.",
          });
        }
        for (const record of records) attempted.add(record.id);
        return records;
      };
      if (parsed.purge) {
        // Memories are erased by id, page after page until none is left: each id is tombstoned in
        // the store and in history, so a write racing the purge (another process) cannot bring one
        // back. Each memory's history still records that it was deleted, without its text.
        for (;;) {
          const records = await nextPage();
          if (records.length === 0) break;
          const ids = records.map((record) => record.id);
          const now = new Date().toISOString();
          await this.#storeCall("deleteAll", () => store.write({ delete: ids, erase: true }));
          await this.#storeCall("purge history", async () => {
            await history.purge({ memoryIds: ids });
            await history.append(records.map((record) => historyEntry(record, "DELETE", null, null, now)));
          });
          deleted += ids.length;
        }
        await this.#storeCall("purge history", async () => {
          await history.purge({ scope });
          await outbox.purgePending({ scope });
        });
        return { deleted };
      }
      for (;;) {
        const records = await nextPage();
        if (records.length === 0) return { deleted };
        // A page changed by another call meanwhile is read again.
        deleted += await onConflict(async () => {
          const full = await this.#storeCall("deleteAll", () =>
            store.get(
              records.map((r) => r.id),
              { scope },
            ),
          );
          const plan = emptyPlan();
          const now = new Date().toISOString();
          for (const record of full) planDelete(plan, record, now);
          await this.#apply(plan);
          return full.length;
        });
      }
    });
  }

  /** Every change of a memory, oldest first. Stays readable with the memory's scope after a delete. */
  async history(memoryId: string, scope: Scope): Promise<HistoryRecord[]> {
    this.#assertOpen();
    const valid = validateScope("history", scope);
    const id = parseId("history", memoryId);
    const { history } = await this.#ready();
    const entries = await this.#storeCall("history", () => history.list(id, valid));
    if (entries.length === 0) throw new MemoryNotFoundError({ memoryId: id });
    return entries.map(({ memoryId: entryMemoryId, event, previousValue, newValue, createdAt }) => ({
      memoryId: entryMemoryId,
      event,
      previousValue,
      newValue,
      createdAt,
    }));
  }

  /**
   * Queues a turn to be remembered and returns at once: the turn is written durably to the outbox
   * first, then a worker runs `add` on it, with retries. The reply path never waits for the model
   * or the embedder. Input is validated now: bad input is refused here and nothing is queued.
   */
  async enqueue(messages: string | Message[], options: EnqueueOptions): Promise<{ id: string; queued: boolean }> {
    const { scope, options: parsed } = parseScoped("enqueue", options, enqueueSchema);
    const turn = parseMessages("enqueue", messages, this.#maxLength);
    this.#assertOpen();
    const { outbox } = await this.#ready();
    const { idempotencyKey, ...addOptions } = parsed;
    // Decided now, not by whichever process's worker runs the turn: a worker without an llm must
    // not store verbatim a turn queued for extraction (it fails it, to be retried elsewhere).
    addOptions.infer ??= this.#extraction !== undefined;
    const id = outboxEntryId(scope, idempotencyKey ?? randomUUID());
    const queued = await this.#storeCall("enqueue", () => outbox.enqueue({ id, messages: turn, scope, options: addOptions }));
    this.#enqueued.add(id);
    this.#worker?.kick();
    return { id, queued };
  }

  /**
   * Resolves when every turn enqueued (or requeued by `retryFailed`) through this instance so far
   * has been processed, or has failed every attempt. For tests, scripts and serverless `waitUntil`.
   */
  async flush(options: { timeoutMs?: number } = {}): Promise<FlushResult> {
    const { timeoutMs = Number.POSITIVE_INFINITY } = parse(flushSchema, options, "flush");
    this.#assertOpen();
    const { outbox } = await this.#ready();
    const deadline = Date.now() + timeoutMs;
    const ids = [...this.#enqueued];
    let processed = 0;
    let failed = 0;
    let open = ids;
    for (;;) {
      const statuses = await outbox.statuses(open);
      const still: string[] = [];
      for (const id of open) {
        const status = statuses.get(id);
        if (status === "pending" || status === "processing") still.push(id);
        else {
          if (status === "failed") failed++;
          else processed++;
          this.#enqueued.delete(id);
        }
      }
      open = still;
      if (open.length === 0 || Date.now() >= deadline) return { processed, failed, waiting: open.length };
      this.#worker?.kick();
      await (this.#worker ? this.#worker.settled(Math.min(50, deadline - Date.now())) : new Promise((r) => setTimeout(r, 50)));
    }
  }

  /** Turns in the outbox that are not done: waiting, in progress, or failed every attempt. */
  async pending(scope: Scope | { allScopes: true }): Promise<PendingTurn[]> {
    this.#assertOpen();
    const valid = parseScopeOrAll("pending", scope);
    const { outbox } = await this.#ready();
    const entries = await this.#storeCall("pending", () => outbox.pending(valid));
    return entries.map((entry) => {
      const turn: PendingTurn = {
        id: entry.id,
        status: entry.status as PendingTurn["status"],
        messages: [...entry.messages],
        attempts: entry.attempts,
        createdAt: entry.createdAt,
        nextAttemptAt: entry.nextAttemptAt,
        ...scopeOf(entry),
      };
      if (entry.lastError !== undefined) turn.lastError = entry.lastError;
      return turn;
    });
  }

  /** Puts turns that failed every attempt back in the queue. */
  async retryFailed(scope: Scope | { allScopes: true }): Promise<{ requeued: number }> {
    this.#assertOpen();
    const valid = parseScopeOrAll("retryFailed", scope);
    const { outbox } = await this.#ready();
    const failed = await this.#storeCall("retryFailed", () => outbox.pending(valid));
    const requeued = await this.#storeCall("retryFailed", () => outbox.retryFailed(valid));
    // flush() waits for requeued turns too.
    for (const entry of failed) if (entry.status === "failed") this.#enqueued.add(entry.id);
    this.#worker?.kick();
    return { requeued };
  }

  /**
   * Every scope that holds memories, with how many: for operator tools that span scopes (a full
   * export, statistics). Returns ids and counts only; read the memories scope by scope. The explicit
   * `{ allScopes: true }` marks the call as one that crosses the scope boundary. Needs a vector
   * store with the `ScopeEnumerable` capability (the SQLite and in-memory stores have it).
   */
  async scopes(options: { allScopes: true }): Promise<ScopeCount[]> {
    this.#assertOpen();
    parseAllScopes("scopes", options, "scopes() lists every scope: pass exactly { allScopes: true } to confirm that is intended.");
    const { store } = await this.#ready();
    if (!isScopeEnumerable(store)) {
      throw new ConfigError({
        message: "This vector store cannot list its scopes (it does not implement ScopeEnumerable): read memories scope by scope instead.",
      });
    }
    return this.#storeCall("scopes", () => store.scopes());
  }

  /** Deletes every memory, history entry and queued turn of EVERY scope. Irreversible. */
  async reset(): Promise<void> {
    this.#assertOpen();
    const { store, history, outbox, embedder, dimension } = await this.#ready();
    await this.#storeCall("reset", async () => {
      await store.reset();
      for (const part of new Set<HistoryLog | Outbox>([history, outbox])) await part.reset();
      // A reset store forgets its dimension: prepare it again.
      await store.init({ dimension, modelId: embedder.modelId });
    });
    this.#enqueued.clear();
  }

  /** Stops the write-behind worker (waiting for turns in progress) and closes the stores. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      // Calls are refused from now on, but the turns being processed finish first (they still use
      // the stores, which close only after them), within `timeouts.closeMs`: a turn still in progress
      // then stays in the outbox, and the next worker takes it over once its lease ends.
      const deadline = Date.now() + this.#timeouts.closeMs;
      const left = () => Math.max(1, deadline - Date.now());
      const hung = (error: unknown) => {
        if (TimeoutError.isInstance(error)) this.#report(error, { operation: "close", willRetry: false });
      };
      await withDeadline("close: waiting for the turns in progress", left(), async () => this.#worker?.stop()).catch(hung);
      this.#worker?.abandon();
      this.#shutDown = true;
      const components = await withDeadline("close: opening the stores", left(), async () => this.#components).catch(() => undefined);
      if (components) {
        await withDeadline("close: closing the stores", left(), () =>
          Promise.allSettled(
            [components.store, ...new Set<HistoryLog | Outbox>([components.history, components.outbox])].map((part) => part.close()),
          ),
        ).catch(hung);
      }
    })();
    return this.#closed;
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────────

  #assertOpen(): void {
    if (this.#closed) throw new ConfigError({ message: "This Memory is closed. Create a new one." });
  }

  #ready(): Promise<Components> {
    if (this.#shutDown) return Promise.reject(new ConfigError({ message: "This Memory is closed. Create a new one." }));
    this.#components ??= this.#initialise().catch((error) => {
      this.#components = undefined;
      throw error;
    });
    return this.#components;
  }

  async #initialise(): Promise<Components> {
    const dataDir = this.#options.dataDir ?? "./.engram";
    const file = join(dataDir, "engram.db");
    const given = this.#options.embedder;
    const embedder = given === undefined ? localEmbedder() : isAiSdkEmbeddingModel(given) ? aiSdkEmbedder(given) : given;
    const store = this.#options.vectorStore ?? sqliteStore({ path: file });
    const history = this.#options.historyStore ?? sqliteHistory({ path: file });
    // Without an outbox of its own, the history is the outbox too (the option check made sure it can be).
    const outbox = this.#options.outbox ?? (history as HistoryLog & Outbox);
    for (const part of new Set<HistoryLog | Outbox>([history, outbox])) await this.#storeCall("init", () => part.init());
    const dimension = embedder.dimension ?? (await this.#embedWith(embedder, ["dimension probe"], emptyUsage()))[0]?.length;
    if (!dimension) throw new EmbeddingError({ message: "The embedder returned an empty vector" });
    await this.#storeCall("init", () => store.init({ dimension, modelId: embedder.modelId }));
    return { embedder, store, history, outbox, dimension, jointWrite: jointWriter(store, history) };
  }

  async #embed(texts: string[], usage: Usage): Promise<Float32Array[]> {
    const { embedder } = await this.#ready();
    return this.#embedWith(embedder, texts, usage);
  }

  async #embedWith(embedder: Embedder, texts: string[], usage: Usage): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    const vectors = await retry(
      async () => {
        usage.embeddingCalls++;
        const result = await withDeadline("The embedder", this.#timeouts.embedMs, (signal) => embedder.embed(texts, { signal }));
        if (!Array.isArray(result) || result.length !== texts.length) {
          throw new EmbeddingError({
            message: `The embedder returned ${Array.isArray(result) ? result.length : "no"} vectors for ${texts.length} texts`,
          });
        }
        const dimension = embedder.dimension ?? result[0]?.length;
        for (const vector of result) {
          if (!(vector instanceof Float32Array) || vector.length !== dimension || vector.some((v) => !Number.isFinite(v))) {
            throw new EmbeddingError({
              message: `The embedder returned a vector that is not a Float32Array of ${dimension} finite numbers`,
            });
          }
        }
        return result;
      },
      {
        ...this.#retry,
        shouldRetry: (error) => !isUserError(error),
        onRetry: (error, attempt) => this.#report(asEmbeddingError(error), { operation: "embed", attempt, willRetry: true }),
      },
    ).catch((error) => {
      throw asEmbeddingError(error);
    });
    return vectors;
  }

  /** Calls a store with the store deadline, mapping its failures to `StoreError`s. */
  async #storeCall<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(`The store (${operation})`, this.#timeouts.storeMs, fn);
    } catch (error) {
      throw asStoreError(error, `${operation} failed in the store`);
    }
  }

  async #find(id: string, scope: Scope, withVector = false): Promise<MemoryRecord | undefined> {
    const { store } = await this.#ready();
    const [record] = await this.#storeCall("get", () => store.get([id], { scope }));
    if (record && withVector && !record.vector)
      throw new StoreError({ message: "The vector store returned a record without its vector from get()" });
    return record;
  }

  /**
   * Erases a memory for good: from the store (leaving a tombstone of its id, so no write racing the
   * purge can bring it back), from its history (whose later entries are kept without text) and from
   * pending turns. A memory deleted earlier is found by its history, which holds its text still.
   */
  async #purge(id: string, scope: ValidScope): Promise<void> {
    const { store, history, outbox } = await this.#ready();
    const existing = await this.#find(id, scope);
    const entries = await this.#storeCall("history", () => history.list(id, scope));
    // Every text the memory ever had: pending turns repeating an earlier version go too.
    const versions = new Set(existing ? [existing.text] : []);
    for (const entry of entries) for (const value of [entry.previousValue, entry.newValue]) if (value !== null) versions.add(value);
    if (!existing && versions.size === 0) throw new MemoryNotFoundError({ memoryId: id });
    const owner = scopeOf(existing ?? (entries[0] as HistoryEntry));
    await this.#storeCall("delete", () => store.write({ delete: [id], erase: true }));
    await this.#storeCall("purge history", async () => {
      await history.purge({ memoryIds: [id] });
      if (existing) await history.append([historyEntry(existing, "DELETE", null, null, new Date().toISOString())]);
      for (const text of versions) await outbox.purgePending({ scope: owner, containing: text });
    });
  }

  /** Decides what an add does, without changing anything. Its cost goes to `onUsage`, also when it fails. */
  async #plan(scope: ValidScope, messages: Message[], options: z.infer<typeof addSchema>, entryId?: string): Promise<Plan> {
    const extraction = this.#extraction;
    const infer = options.infer ?? extraction !== undefined;
    if (infer && !extraction) {
      throw new ConfigError({
        message:
          entryId === undefined
            ? "add() with infer: true needs an extraction model: new Memory({ llm })."
            : "This turn was queued for extraction, but this Memory has no llm. Process the outbox with Memory instances configured with the same llm (writeBehind: { enabled: false } on the others), then retryFailed().",
      });
    }
    const usage = emptyUsage();
    let failed = true;
    try {
      const plan =
        infer && extraction
          ? await planExtraction(
              extraction,
              {
                store: (await this.#ready()).store,
                embed: (texts, spent) => this.#embed(texts, spent),
                storeCall: (operation, fn) => this.#storeCall(operation, fn),
                report: (error, context) => this.#report(error, entryId === undefined ? context : { ...context, entryId }),
              },
              { scope, messages, metadata: options.metadata, timestamp: options.timestamp, usage },
            )
          : await this.#planVerbatim(scope, messages, options, usage);
      failed = false;
      return plan;
    } finally {
      this.#reportUsage(usage, { scope: { ...scope }, failed, ...(entryId === undefined ? {} : { entryId }) });
    }
  }

  async #planVerbatim(scope: ValidScope, messages: Message[], options: z.infer<typeof addSchema>, usage: Usage): Promise<Plan> {
    const { store } = await this.#ready();
    const plan = emptyPlan(usage);
    const now = new Date().toISOString();
    const createdAt = options.timestamp ?? now;
    const fresh: { text: string; hash: string }[] = [];
    // A text repeated within one call is one memory and one result, whether it is new or stored already.
    const seen = new Set<string>();
    for (const message of messages) {
      if (message.role === "system") continue;
      const text = normaliseText(message.content);
      const hash = textHash(text);
      if (seen.has(hash)) continue;
      seen.add(hash);
      const { records } = await this.#storeCall("duplicate check", () => store.list({ filter: { scope, hash }, limit: 50 }));
      const duplicate = records.find((record) => sameScope(record, scope));
      if (duplicate) plan.results.push({ id: duplicate.id, memory: duplicate.text, event: "NONE" });
      else fresh.push({ text, hash });
    }
    if (messages.every((m) => m.role === "system"))
      plan.warnings.push("Only system messages were given: system messages are never stored.");
    const vectors = await this.#embed(
      fresh.map((f) => f.text),
      plan.usage,
    );
    fresh.forEach(({ text, hash }, i) => {
      const record: MemoryRecord = {
        id: randomUUID(),
        text,
        hash,
        vector: vectors[i],
        ...scope,
        metadata: options.metadata ?? {},
        createdAt,
        updatedAt: createdAt,
      };
      planAdd(plan, record, now);
    });
    return plan;
  }

  /**
   * Applies a plan: store writes first (refused with a `WriteConflictError` when a memory it changes
   * is no longer as it was read), then history; undoes the writes when history fails.
   */
  async #apply(plan: Plan): Promise<void> {
    if (plan.upsert.length === 0 && plan.delete.length === 0 && plan.history.length === 0) return;
    const { store, jointWrite } = await this.#ready();
    const batch = { upsert: plan.upsert, delete: plan.delete, expect: plan.expect };
    // One transaction where the backend allows it: a crash never keeps the change without its history.
    if (jointWrite) return this.#storeCall("write", () => jointWrite(batch, plan.history));
    await this.#storeCall("write", () => store.write(batch));
    await this.#appendHistory(plan);
  }

  /** The history half of `#apply`. */
  async #appendHistory(plan: Plan): Promise<void> {
    const { store, history } = await this.#ready();
    try {
      await retry(() => this.#storeCall("history", () => history.append(plan.history)), {
        ...this.#retry,
        onRetry: (error, attempt) =>
          this.#report(asStoreError(error, "Writing history failed"), { operation: "history", attempt, willRetry: true }),
      });
    } catch (error) {
      try {
        await this.#storeCall("revert", () => store.write(plan.revert));
      } catch (revertError) {
        this.#report(asStoreError(revertError, "Undoing a write after a history failure failed"), {
          operation: "revert",
          willRetry: false,
        });
      }
      throw asStoreError(error, "Writing history failed; the change was undone");
    }
  }

  async #processEntry(entry: OutboxEntry, workerId: string): Promise<undefined | typeof leaseLost> {
    const scope = validateScope("enqueue", scopeOf(entry));
    const { outbox } = await this.#ready();
    return this.#locks.run(lockKeyOf(scope), async () => {
      const decide = async () => {
        const options = parse(addSchema, entry.options, "enqueue");
        const plan = await this.#plan(scope, [...entry.messages], options, entry.id);
        return (await this.#storeCall("outbox", () => outbox.savePlan(entry.id, workerId, serialisePlan(plan)))) ? plan : undefined;
      };
      const saved = entry.plan === undefined ? undefined : deserialisePlan(entry.plan);
      let plan = saved ?? (await decide());
      if (!plan) return leaseLost;
      if (saved && (await this.#wasApplied(saved, scope))) {
        // A worker stopped after writing it all: only the outbox was not told.
      } else {
        try {
          await this.#apply(plan);
        } catch (error) {
          if (!WriteConflictError.isInstance(error)) throw error;
          if (saved && (await this.#storeHolds(saved, scope))) await this.#appendHistory(saved);
          else {
            // Decided against memories that changed since (another call updated, deleted or purged
            // one): decide again against what is stored now. A second conflict fails the attempt.
            if (!(await this.#storeCall("outbox", () => outbox.discardPlan(entry.id, workerId)))) return leaseLost;
            plan = await decide();
            if (!plan) return leaseLost;
            await this.#apply(plan);
          }
        }
      }
      if (!(await this.#storeCall("outbox", () => outbox.complete(entry.id, workerId)))) return leaseLost;
    });
  }

  /** True when the history of a saved plan is written: the plan was applied whole (history is written last). */
  async #wasApplied(plan: Plan, scope: Scope): Promise<boolean> {
    const first = plan.history[0];
    if (!first) return true;
    const { history } = await this.#ready();
    const entries = await this.#storeCall("history", () => history.list(first.memoryId, scope));
    return entries.some((entry) => entry.id === first.id);
  }

  /** True when the store holds what a plan writes: its upserts as planned, its deletes gone. */
  async #storeHolds(plan: Plan, scope: Scope): Promise<boolean> {
    const { store } = await this.#ready();
    const ids = [...plan.upsert.map((record) => record.id), ...plan.delete];
    const stored = new Map((await this.#storeCall("get", () => store.get(ids, { scope }))).map((record) => [record.id, record]));
    return (
      plan.upsert.every((record) => {
        const current = stored.get(record.id);
        return current !== undefined && current.hash === record.hash && current.updatedAt === record.updatedAt;
      }) && plan.delete.every((id) => !stored.has(id))
    );
  }

  #report(error: EngramError, context: ErrorContext): void {
    try {
      this.#onError(error, context);
    } catch (hookError) {
      console.error("[engram] onError threw:", hookError);
    }
  }

  #reportUsage(usage: Usage, context: UsageContext): void {
    const hook = this.#options.onUsage;
    if (!hook) return;
    try {
      hook({ ...usage }, context);
    } catch (hookError) {
      console.error("[engram] onUsage threw:", hookError);
    }
  }
}

function asEmbeddingError(error: unknown): EngramError {
  if (isUserError(error) || EmbeddingError.isInstance(error) || TimeoutError.isInstance(error)) return error as EngramError;
  return new EmbeddingError({ message: `The embedder failed: ${error instanceof Error ? error.message : String(error)}`, cause: error });
}

/** Runs `fn` again, three times in all at most, while its write is refused because what it read changed meanwhile. */
async function onConflict<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!WriteConflictError.isInstance(error) || attempt >= 3) throw error;
    }
  }
}
