import { isDeepStrictEqual } from "node:util";
import { type BatchTurn, mergePlans, planVerbatimBatch } from "./add-many.js";
import { applyPlan, onConflict } from "./apply-plan.js";
import {
  type AddManyItem,
  type AddManyOptions,
  type AddOptions,
  addManySchema,
  addSchema,
  type DeleteOptions,
  type DeleteResult,
  deleteSchema,
  type EnqueueManyItem,
  type EnqueueManyOptions,
  type EnqueueOptions,
  enqueueManyItemSchema,
  enqueueManySchema,
  enqueueSchema,
  flushSchema,
  type GetAllOptions,
  getAllSchema,
  MAX_ENQUEUE_MANY,
  type SearchOptions,
  searchSchema,
  storedTurnSchema,
  turnSchema,
  type UpdateChange,
  updateChangeSchema,
} from "./call-options.js";
import { type Components, createComponents } from "./components.js";
import {
  type ConsolidateOptions,
  type ConsolidateResult,
  type ConsolidationSettings,
  consolidateSchema,
  planConsolidation,
} from "./consolidate.js";
import { decideAdd, extractionSettings, type TurnOptions } from "./decide.js";
import { ConfigError, type EngramError, InvalidInputError, isUserError, MemoryNotFoundError, TimeoutError } from "./errors.js";
import type { ExtractionSettings } from "./extraction/plan-extraction.js";
import { deleteScope, purgeMemory } from "./forget.js";
import { type MemoryGraphApi, memoryGraphApi } from "./graph/graph-api.js";
import { graphSearch } from "./graph/graph-search.js";
import type { StoredRelation } from "./graph/graph-store.js";
import { type HistoryEventEntry, isHistoryScannable, isHistoryScopeEnumerable } from "./history/history-log.js";
import type { Message } from "./history/outbox.js";
import { abortable, defaultRetry, KeyedMutex, type RetryOptions, withDeadline } from "./internal/async.js";
import { normaliseText, textHash } from "./internal/hash.js";
import { textProblem } from "./internal/plain-data.js";
import { lifecycleOf, resolveExpiry, sourceTurn, stampPlan, withLifecycle } from "./lifecycle.js";
import { liveStore } from "./live-store.js";
import { toItem } from "./memory-item.js";
import { defaultTimeouts, type MemoryOptions, memoryOptionsSchema, type Timeouts } from "./memory-options.js";
import { callerMetadata, originOf, withOrigin } from "./memory-origin.js";
import { type Plan, PlanBuilder, versionOf } from "./plan.js";
import {
  applyUpdate,
  checkBudget,
  currentProfile,
  defaultProfileMaxTokens,
  isProfileId,
  type Profile,
  type ProfileUpdate,
  profileEntries,
  profilePrefix,
  profileRecords,
  writeProfile,
} from "./profile.js";
import { callHook, defaultOnError } from "./report.js";
import { rankedSearch } from "./retrieval/rank.js";
import { ScopeIndexCache } from "./retrieval/scope-index.js";
import { type ReviewItem, type ReviewOptions, reviewItemOf, reviewOptionsSchema, reviewScopes } from "./review.js";
import { defaultRuntime, isoNow, type Runtime } from "./runtime.js";
import { lockKeyOf, type Scope, type ValidScope, validateScope } from "./scope.js";
import { isScopeEnumerable, type MemoryRecord, type ScopeCount, type VectorStore } from "./stores/vector-store.js";
import { everyScope, Sweeper, type SweepResult, sweepOptionsSchema, sweepScopes } from "./sweep.js";
import { usageAttributes } from "./telemetry/attributes.js";
import { noTracing } from "./telemetry/tracing.js";
import type { AddResult, ErrorContext, HistoryRecord, MemoryItem, PendingTurn } from "./types.js";
import { parse, parseAllScopes, parseId, parseMessages, parseScoped, parseScopeOrAll, parseText } from "./validation.js";
import { defaultWriteBehind } from "./write-behind/worker.js";
import { type FlushResult, WriteBehind } from "./write-behind/write-behind.js";

export type {
  AddManyItem,
  AddManyOptions,
  AddOptions,
  DeleteOptions,
  DeleteResult,
  EnqueueManyItem,
  EnqueueManyOptions,
  EnqueueOptions,
  GetAllOptions,
  SearchOptions,
  UpdateChange,
} from "./call-options.js";
export type { ConsolidateOptions, ConsolidateResult, ConsolidationCluster } from "./consolidate.js";
export type { MemoryOptions, Timeouts } from "./memory-options.js";
export { defaultTimeouts } from "./memory-options.js";
export type { Profile, ProfileUpdate } from "./profile.js";
export type { ReviewItem, ReviewOptions, ReviewSource } from "./review.js";
export type { SweepResult } from "./sweep.js";
export type { FlushResult } from "./write-behind/write-behind.js";

const PAGE = 500;

const resultOf = (plan: Plan): AddResult => ({
  results: plan.results,
  usage: plan.usage,
  ...(plan.warnings.length ? { warnings: plan.warnings } : {}),
  ...(plan.profile ? { profile: plan.profile } : {}),
});
/** Verbatim adds of an `addMany` written per transaction (and embedded per call). */
const ADD_BATCH = 100;

/** A verbatim add of a batch, with when its memories expire (null: never). */
type ExpiringTurn = BatchTurn & { expiresAt: string | null };

/**
 * Long-term memory for an LLM app, scoped by user, agent and run.
 *
 * Every call needs a scope (at least one of `userId`, `agentId`, `runId`); there is no global
 * namespace. With no options it is embedded and offline: a local embedding model and one SQLite
 * file under `./.engram`. Nothing is opened, loaded or started until the first call.
 *
 * @example
 * const memory = new Memory();
 * await memory.add("I prefer Postgres", { userId: "alice" });
 * const { results } = await memory.search("which database?", { userId: "alice" });
 */
export class Memory {
  readonly #options: MemoryOptions;
  readonly #retry: RetryOptions;
  readonly #timeouts: Timeouts;
  readonly #runtime: Runtime;
  readonly #maxLength: number;
  readonly #keywordWeight: number;
  readonly #scopeIndexes: ScopeIndexCache;
  readonly #extraction: ExtractionSettings | undefined;
  readonly #locks = new KeyedMutex();
  readonly #writeBehind: WriteBehind;
  readonly #sweeper: Sweeper | undefined;
  /** Each store as readers see it: expired memories left out (`liveStore`). */
  readonly #liveStores = new WeakMap<VectorStore, VectorStore>();
  // Enqueues not yet in the outbox: flush() waits for them too, so a flush right after a reply
  // (whose adapter queued the turn without waiting) covers that turn.
  readonly #enqueuing = new Set<Promise<unknown>>();
  #components: Promise<Components> | undefined;
  #closed: Promise<void> | undefined;
  /** Set once `close` has let the turns in progress finish: from then on nothing reaches the stores. */
  #shutDown = false;
  /** Graph memory (`new Memory({ graph: true })`): relations and neighbors of the entities each scope's memories name. */
  readonly graph: MemoryGraphApi = memoryGraphApi(
    () => this.#ready(),
    () => this.#assertOpen(),
  );

  constructor(options: MemoryOptions = {}) {
    this.#options = parse(memoryOptionsSchema, options ?? {}, "new Memory");
    this.#retry = { ...defaultRetry, ...this.#options.retry };
    this.#timeouts = { ...defaultTimeouts, ...this.#options.timeouts };
    this.#runtime = { ...defaultRuntime, ...this.#options._internal };
    this.#maxLength = this.#options.maxMessageLength ?? 32_000;
    this.#keywordWeight = this.#options.keywordWeight ?? 0.3;
    this.#extraction = extractionSettings(this.#options, this.#maxLength);
    this.#scopeIndexes = new ScopeIndexCache({ now: () => this.#runtime.now() });
    const { enabled = this.#options.ttl !== undefined, intervalMs = 3_600_000, purge = false } = this.#options.sweep ?? {};
    this.#sweeper = enabled
      ? new Sweeper(
          async () => this.#sweep(await this.#ready(), undefined, purge),
          intervalMs,
          (error, context) => this.#report(error, context),
        )
      : undefined;
    this.#writeBehind = new WriteBehind(
      () => this.#ready().then((components) => components.outbox),
      {
        decide: (scope, messages, stored, entryId) => this.#decide(scope, messages, parse(storedTurnSchema, stored, "enqueue"), entryId),
        isVerbatim: (stored) => {
          const options = storedTurnSchema.safeParse(stored);
          return options.success && options.data.infer === false && options.data.turns === undefined;
        },
        decideMany: (turns) =>
          this.#decideMany(turns.map((turn) => ({ ...turn, options: parse(storedTurnSchema, turn.options, "enqueue") }))),
        writer: () => this.#ready(),
        lock: (scope, fn) =>
          this.#locks.run(lockKeyOf(scope), async () => {
            // Built already: the worker starts once the components are.
            const tracing = (await this.#components)?.tracing ?? noTracing;
            return tracing.span("engram.write_behind.turn", tracing.scope(scope), () => fn());
          }),
      },
      { ...defaultWriteBehind, ...this.#options.writeBehind },
      (error, context) => this.#report(error, context),
      this.#runtime,
    );
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
    const components = await this.#ready();
    const { signal, ...turnOptions } = parsed;
    return this.#add(components, scope, turn, this.#expiring("add", scope, turnOptions), signal);
  }

  /**
   * Many adds, with the result of each, as if `add` ran on each item in order (bursts continue
   * across items, a text stored already is NONE, every change has its history). Verbatim items
   * are embedded and written in batches of 100: one embedding call and one transaction each.
   * Items for extraction (`infer`) run one by one, in their place.
   *
   * Every item is checked before anything is written: one bad item refuses the whole call with an
   * `InvalidInputError` whose `field` is its index (`items[3]`) and whose `cause` is the error
   * `add` would have thrown. When a batch fails to write, the call rejects with that failure and
   * the batches before it stay stored.
   *
   * @example
   * await memory.addMany(turns.map((turn) => ({ messages: turn.messages, userId: turn.user, timestamp: turn.at })));
   */
  async addMany(items: readonly AddManyItem[], options: AddManyOptions = {}): Promise<{ results: AddResult[] }> {
    const { signal } = parse(addManySchema, options ?? {}, "addMany");
    const turns = this.#parseBatch(items);
    this.#assertOpen();
    const components = await this.#ready();
    const results: AddResult[] = [];
    let batch: ExpiringTurn[] = [];
    const writeBatch = async () => {
      if (batch.length === 0) return;
      const turnsOfBatch = batch;
      batch = [];
      results.push(...(await abortable(this.#addBatch(components, turnsOfBatch, signal), signal)));
    };
    for (const { scope, messages, options: turnOptions } of turns) {
      signal?.throwIfAborted();
      if (turnOptions.infer ?? this.#extraction !== undefined) {
        await writeBatch();
        results.push(await this.#add(components, scope, messages, turnOptions, signal));
        continue;
      }
      batch.push({
        scope,
        messages,
        metadata: turnOptions.metadata,
        timestamp: turnOptions.timestamp,
        expiresAt: turnOptions.expiresAt ?? null,
      });
      if (batch.length >= ADD_BATCH) await writeBatch();
    }
    await writeBatch();
    return { results };
  }

  async #add(components: Components, scope: ValidScope, turn: Message[], turnOptions: TurnOptions, signal: AbortSignal | undefined) {
    const adding = components.tracing.span(
      "engram.add",
      { ...components.tracing.scope(scope), "engram.add.messages": turn.length },
      async (record) => {
        const result = await this.#addLocked(components, scope, turn, turnOptions, signal);
        record(usageAttributes(result));
        return result;
      },
    );
    return abortable(adding, signal);
  }

  #addLocked(components: Components, scope: ValidScope, turn: Message[], turnOptions: TurnOptions, signal: AbortSignal | undefined) {
    return this.#locks.run(lockKeyOf(scope), async () => {
      // A memory the plan changes may be changed by another call (another process) meanwhile: the
      // store refuses the write, and the add is decided again against what is stored now.
      const plan = await onConflict(async () => {
        const plan = await this.#decide(scope, turn, turnOptions);
        signal?.throwIfAborted();
        await applyPlan(components, plan);
        return plan;
      });
      return resultOf(plan);
    });
  }

  /** Verbatim adds planned together, embedded in one call and written in one transaction, under the lock of every scope they touch. */
  async #addBatch(components: Components, turns: ExpiringTurn[], signal: AbortSignal | undefined): Promise<AddResult[]> {
    // Locks taken in one order: two batches never wait for each other.
    const keys = [...new Set(turns.map((turn) => lockKeyOf(turn.scope)))].sort();
    const locked = keys.reduceRight<() => Promise<Plan[]>>(
      (inner, key) => () => this.#locks.run(key, inner),
      () =>
        onConflict(async () => {
          const plans = await planVerbatimBatch(
            { store: this.#live(components), embedder: components.embedder, runtime: this.#runtime, dimension: components.dimension },
            turns,
          );
          for (const [i, plan] of plans.entries()) stampPlan(plan, { expiresAt: (turns[i] as ExpiringTurn).expiresAt });
          signal?.throwIfAborted();
          await applyPlan(components, mergePlans(plans));
          return plans;
        }),
    );
    const plans = await locked();
    return plans.map((plan, i) => {
      callHook("onUsage", this.#options.onUsage, { ...plan.usage }, { scope: { ...(turns[i] as BatchTurn).scope }, failed: false });
      return resultOf(plan);
    });
  }

  /** Every item of an `addMany` checked as `add` checks its arguments; the first bad one is named by its index. */
  #parseBatch(items: unknown): { scope: ValidScope; messages: Message[]; options: TurnOptions }[] {
    if (!Array.isArray(items)) {
      throw new InvalidInputError({
        message: "addMany(): items must be an array of { messages, userId | agentId | runId, ... }.",
        field: "items",
      });
    }
    return items.map((item: unknown, index) => {
      try {
        if (item === null || typeof item !== "object" || Array.isArray(item)) {
          throw new InvalidInputError({
            message: "addMany(): each item must be an object { messages, userId | agentId | runId, ... }.",
            field: "messages",
          });
        }
        if (!Object.hasOwn(item, "messages")) {
          throw new InvalidInputError({ message: "addMany(): the item has no messages.", field: "messages" });
        }
        const { messages, ...options } = item as { messages: unknown };
        const { scope, options: parsed } = parseScoped("addMany", options, turnSchema);
        const turn = parseMessages("addMany", messages, this.#maxLength);
        if (parsed.infer === true && this.#extraction === undefined) {
          throw new ConfigError({ message: "addMany(): an item with infer: true needs an extraction model: new Memory({ llm })." });
        }
        return { scope, messages: turn, options: this.#expiring("addMany", scope, parsed) };
      } catch (error) {
        if (!isUserError(error)) throw error;
        throw new InvalidInputError({
          message: `addMany(): items[${index}]: ${(error as Error).message.replace(/^addMany\(\): /, "")} Nothing was stored.`,
          field: `items[${index}]`,
          cause: error,
        });
      }
    });
  }

  /**
   * Search inside the scope. Every memory of the scope is scored by a learned ranker over
   * semantic similarity, keyword (BM25) relevance, the memories said around it, the speaker, the
   * nouns and the dates the query names (docs/retrieval.md); `score` is its probability, in [0, 1],
   * that the memory holds what the query asks. Best first. Without `threshold`, a calibrated
   * cut-off returns only the results close to the best, and nothing when the query is about
   * nothing the scope holds; `threshold: 0` returns the best `limit` whatever their score.
   */
  async search(query: string, options: SearchOptions): Promise<{ results: MemoryItem[]; relations?: StoredRelation[] }> {
    this.#assertOpen();
    const { scope, options: parsed } = parseScoped("search", options, searchSchema);
    const text = parseText("search", "query", query, this.#maxLength);
    const { limit = 10, threshold, maxTokens, explain, filters, signal, graph } = parsed;
    const components = await abortable(this.#ready(), signal);
    if (graph && !components.graph) {
      throw new ConfigError({ message: "search(): graph: true needs graph memory: create the Memory with new Memory({ graph: true })." });
    }
    const request = {
      text,
      scope,
      limit,
      keywordWeight: this.#keywordWeight,
      ...(threshold === undefined ? {} : { threshold }),
      ...(maxTokens === undefined ? {} : { maxTokens }),
      ...(filters ? { metadata: filters } : {}),
      ...(explain ? { explain } : {}),
      ...(signal ? { signal } : {}),
    };
    // The query's vector is cached per scope (cacheQueryEmbeddings).
    const cacheKey = JSON.stringify([scope.userId ?? null, scope.agentId ?? null, scope.runId ?? null]);
    const embedder: typeof components.embedder = {
      ...components.embedder,
      embed: (texts, call) => components.embedder.embed(texts, { ...call, cacheKey }),
    };
    const services = { ...components, store: this.#live(components), embedder, cache: this.#scopeIndexes };
    const { hits, relations } = await components.tracing.span(
      "engram.search",
      { ...components.tracing.scope(scope), "engram.search.limit": limit },
      async (record) => {
        const ranked = await abortable(rankedSearch(services, request), signal);
        const found =
          graph && components.graph
            ? await abortable(
                graphSearch(components.graph, { text, scope, limit }, ranked, () =>
                  rankedSearch(services, { ...request, threshold: 0, limit: 100, maxTokens: undefined }),
                ),
                signal,
              )
            : { hits: ranked, relations: undefined };
        record({ "engram.search.results": found.hits.length });
        return found;
      },
    );
    const results = hits.map((hit) => {
      const item = toItem(hit.record, hit.score);
      if (hit.explain) item.explain = hit.explain;
      return item;
    });
    return relations ? { results, relations } : { results };
  }

  /** The memory with this id, or null when there is none inside `scope`. */
  async get(memoryId: string, scope: Scope): Promise<MemoryItem | null> {
    this.#assertOpen();
    const valid = validateScope("get", scope);
    const id = parseId("get", memoryId);
    const [record] = await this.#live(await this.#ready()).get([id], { scope: valid });
    return record ? toItem(record) : null;
  }

  /** Memories inside the scope, oldest first. */
  async getAll(options: GetAllOptions): Promise<{ results: MemoryItem[] }> {
    this.#assertOpen();
    const { scope, options: parsed } = parseScoped("getAll", options, getAllSchema);
    const store = this.#live(await this.#ready());
    const { records } = await store.list({ filter: { scope, metadata: parsed.filters }, limit: parsed.limit ?? 100 });
    return { results: records.map((record) => toItem(record)) };
  }

  /** Every memory inside the scope, page by page, oldest first: for exports and migrations. */
  async *iterate(options: Scope & { filters?: GetAllOptions["filters"] }): AsyncGenerator<MemoryItem> {
    this.#assertOpen();
    const { scope, options: parsed } = parseScoped("iterate", options, getAllSchema.omit({ limit: true }));
    const store = this.#live(await this.#ready());
    let cursor: string | undefined;
    do {
      const page = await store.list({ filter: { scope, metadata: parsed.filters }, limit: PAGE, cursor });
      for (const record of page.records) yield toItem(record);
      cursor = page.cursor;
    } while (cursor);
  }

  /**
   * Changes a memory's text (re-embedded; the previous text is kept in its history), its metadata
   * (replaced as a whole), or both: `update(id, "new text", scope)` or
   * `update(id, { text?, metadata? }, scope)`.
   */
  async update(memoryId: string, change: string | UpdateChange, scope: Scope): Promise<MemoryItem> {
    const valid = validateScope("update", scope);
    const id = parseId("update", memoryId);
    const given =
      change !== null && typeof change === "object" && !Array.isArray(change)
        ? parse(updateChangeSchema, change, "update")
        : { text: change as unknown };
    if (given.text === undefined && given.metadata === undefined && given.expiresAt === undefined && given.ttl === undefined) {
      throw new InvalidInputError({
        message: "update(): pass the new text, or { text?, metadata?, expiresAt? | ttl? } with at least one of them.",
        field: "change",
      });
    }
    const newExpiry =
      given.expiresAt === undefined && given.ttl === undefined
        ? undefined
        : resolveExpiry("update", { expiresAt: given.expiresAt, ttl: given.ttl }, valid, undefined, () => this.#runtime.now());
    const newText = given.text === undefined ? undefined : normaliseText(parseText("update", "text", given.text, this.#maxLength));
    const newMetadata = given.metadata;
    this.#assertOpen();
    const hash = newText === undefined ? undefined : textHash(newText);
    const components = await this.#ready();
    return this.#locks.run(lockKeyOf(valid), () =>
      // Changed by another call while the text was embedded: read it again (a purged or deleted
      // memory is then not found) and update what is stored now.
      onConflict(async () => {
        const existing = await this.#find(components, id, valid);
        const textChanges = hash !== undefined && hash !== existing.hash;
        // The caller's metadata is compared and replaced; the origin Engram keeps beside it stays.
        const metadataChanges = newMetadata !== undefined && !isDeepStrictEqual(newMetadata, callerMetadata(existing.metadata));
        const origin = originOf(existing.metadata);
        // The expiry stays unless the change names a new one; a review mark goes with the text it was for.
        const { expiresAt, reviewedAt, ...lifecycle } = lifecycleOf(existing.metadata);
        const expiryChanges = newExpiry !== undefined && newExpiry !== (expiresAt ?? null);
        if (!textChanges && !metadataChanges && !expiryChanges) return toItem(existing);
        const expiry = newExpiry === undefined ? expiresAt : (newExpiry ?? undefined);
        const metadata = withLifecycle(metadataChanges ? (origin ? withOrigin(newMetadata, origin) : newMetadata) : existing.metadata, {
          ...lifecycle,
          ...(expiry === undefined ? {} : { expiresAt: expiry }),
          ...(reviewedAt === undefined || textChanges ? {} : { reviewedAt }),
        });
        const vector = textChanges ? ((await components.embedder.embed([newText as string])) as [Float32Array])[0] : existing.vector;
        const updated: MemoryRecord = {
          ...existing,
          ...(textChanges ? { text: newText as string, hash: hash as string, vector } : {}),
          metadata,
          // Always a new version, even within the millisecond of the last write: copies of the memory
          // kept by version (the search index) must see a changed expiry or metadata.
          updatedAt: new Date(Math.max(this.#runtime.now(), Date.parse(existing.updatedAt) + 1)).toISOString(),
        };
        await applyPlan(components, new PlanBuilder(this.#runtime).update(existing, updated).plan);
        return toItem(updated);
      }),
    );
  }

  /**
   * Deletes a memory and says what it deleted. Its previous text stays in its history (readable
   * with the memory's scope) unless `purge` is set: then the text is erased from the memory, its
   * history, pending turns and the database file. A memory deleted earlier can still be purged.
   */
  async delete(memoryId: string, options: DeleteOptions): Promise<DeleteResult> {
    const { scope, options: parsed } = parseScoped("delete", options, deleteSchema);
    const id = parseId("delete", memoryId);
    this.#assertOpen();
    // A profile is changed through setProfile only: a purge by id would erase its later texts too.
    if (isProfileId(id)) throw new MemoryNotFoundError({ memoryId: id });
    const components = await this.#ready();
    return this.#locks.run(lockKeyOf(scope), async () => {
      if (parsed.purge) {
        const existing = await purgeMemory(components, this.#runtime, id, scope);
        return { id, memory: existing?.text ?? null, purged: true };
      }
      return onConflict(async () => {
        const existing = await this.#find(components, id, scope);
        await applyPlan(components, new PlanBuilder(this.#runtime).remove(existing).plan);
        return { id, memory: existing.text, purged: false };
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
    const components = await this.#ready();
    return this.#locks.run(lockKeyOf(scope), async () => ({
      deleted: await deleteScope(components, this.#runtime, scope, parsed.purge === true),
    }));
  }

  /** Every change of a memory, oldest first. Stays readable with the memory's scope after a delete. */
  async history(memoryId: string, scope: Scope): Promise<HistoryRecord[]> {
    this.#assertOpen();
    const valid = validateScope("history", scope);
    const id = parseId("history", memoryId);
    if (isProfileId(id)) throw new MemoryNotFoundError({ memoryId: id });
    const entries = await (await this.#ready()).history.list(id, valid);
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
   * Merges near-duplicate memories of the scope: memories of one exact scope and one speaker whose
   * embeddings are close (cosine ≥ `similarity`) AND that share keywords (≥ `keywordOverlap`), every
   * two members of a cluster alike. Each cluster becomes one memory: with an `llm`, one model call
   * per cluster writes the merged fact; without one, the most recently changed text is kept
   * verbatim (nothing invented). The others are deleted; every original text stays in history as a
   * MERGE entry on the memory it was and on the one it was merged into. `dryRun` only finds the
   * clusters. All clusters are applied together, or none.
   *
   * @throws ExtractionError when the model's merged text cannot be had; nothing changes.
   */
  async consolidate(scope: Scope, options: ConsolidateOptions = {}): Promise<ConsolidateResult> {
    const valid = validateScope("consolidate", scope);
    const parsed = parse(consolidateSchema, options ?? {}, "consolidate");
    this.#assertOpen();
    const components = await this.#ready();
    const settings = {
      runtime: this.#runtime,
      maxLength: this.#maxLength,
      report: this.#reportHook,
      ...(this.#extraction ? { model: this.#extraction.model, call: this.#extraction.call } : {}),
    };
    const attributes = { ...components.tracing.scope(valid), "engram.consolidate.dry_run": parsed.dryRun === true };
    return components.tracing.span("engram.consolidate", attributes, async (record) => {
      const result = await this.#consolidateLocked(components, valid, settings, parsed);
      record({
        "engram.consolidate.memories": result.memories,
        "engram.consolidate.clusters": result.clusters.length,
        "engram.consolidate.merged": result.merged,
        ...usageAttributes(result),
      });
      return result;
    });
  }

  #consolidateLocked(components: Components, valid: ValidScope, settings: ConsolidationSettings, parsed: ConsolidateOptions) {
    return this.#locks.run(lockKeyOf(valid), () =>
      onConflict(async () => {
        const { result, plan } = await planConsolidation(settings, components, valid, parsed);
        if (plan) await applyPlan(components, plan);
        if (result.usage.llmCalls > 0)
          callHook("onUsage", this.#options.onUsage, { ...result.usage }, { scope: { ...valid }, failed: false });
        return result;
      }),
    );
  }

  /**
   * The profile of exactly this scope, or null when it has none: a few facts that matter to every
   * reply (a name, a diet, a language), which the framework adapters inject into every call. A
   * profile belongs to one scope: `{ userId }` and `{ userId, agentId }` have one each, and a call
   * reads its own only, never a wider or a narrower one.
   */
  async profile(scope: Scope): Promise<Profile | null> {
    this.#assertOpen();
    const valid = validateScope("profile", scope);
    return currentProfile(await profileEntries((await this.#ready()).history, valid));
  }

  /**
   * Sets the profile of exactly this scope: a string replaces it, an object of fields changes only
   * those `key: value` lines (a null value removes its line), null or "" clears it. Every change is
   * kept in `profileHistory`; `deleteAll({ ...scope, purge: true })` erases its text with the rest.
   *
   * @throws InvalidInputError when the profile would exceed `profile.maxTokens` (default 300); nothing changes.
   */
  async setProfile(scope: Scope, update: ProfileUpdate): Promise<Profile | null> {
    const valid = validateScope("setProfile", scope);
    this.#assertOpen();
    const { history } = await this.#ready();
    return this.#locks.run(lockKeyOf(valid), async () => {
      const entries = await profileEntries(history, valid);
      const next = applyUpdate("setProfile", currentProfile(entries)?.text, update);
      if (next !== undefined) {
        const problem = textProblem(next);
        if (problem) throw new InvalidInputError({ message: `setProfile(): the profile ${problem}.`, field: "profile" });
        checkBudget("setProfile", next, this.#options.profile?.maxTokens ?? defaultProfileMaxTokens);
      }
      return writeProfile(history, this.#runtime, valid, entries, next);
    });
  }

  /** Every change of this scope's profile, oldest first (empty when it never had one). */
  async profileHistory(scope: Scope): Promise<HistoryRecord[]> {
    this.#assertOpen();
    const valid = validateScope("profileHistory", scope);
    return profileRecords(await profileEntries((await this.#ready()).history, valid));
  }

  /**
   * The scopes inside `scope` (AND of its ids) that have or had a profile, each exact; `{ allScopes:
   * true }` lists every scope's. For operator tools such as `engram export`: read each with
   * `profile`. Needs a history log that lists scopes (`HistoryScopeEnumerable`: the SQLite,
   * PostgreSQL and in-memory ones).
   */
  async profileScopes(scope: Scope | { allScopes: true }): Promise<Scope[]> {
    this.#assertOpen();
    const valid = parseScopeOrAll("profileScopes", scope);
    const { history } = await this.#ready();
    if (!isHistoryScopeEnumerable(history)) {
      throw new ConfigError({
        message:
          "This history store cannot list its scopes (it does not implement HistoryScopeEnumerable): read profiles scope by scope instead.",
      });
    }
    return history.entryScopes(profilePrefix, valid ?? {});
  }

  /**
   * Queues a turn to be remembered and returns at once: the turn is written durably to the outbox
   * first, then a worker runs `add` on it, with retries. The reply path never waits for the model
   * or the embedder. Input is validated now: bad input is refused here and nothing is queued.
   */
  async enqueue(messages: string | Message[], options: EnqueueOptions): Promise<{ id: string; queued: boolean }> {
    const queued = this.#enqueue(messages, options);
    this.#enqueuing.add(queued);
    try {
      return await queued;
    } finally {
      this.#enqueuing.delete(queued);
    }
  }

  async #enqueue(messages: string | Message[], options: EnqueueOptions): Promise<{ id: string; queued: boolean }> {
    const { scope, options: parsed } = parseScoped("enqueue", options, enqueueSchema);
    const turn = parseMessages("enqueue", messages, this.#maxLength);
    this.#assertOpen();
    await this.#ready();
    const { idempotencyKey, ...given } = parsed;
    // The expiry is fixed now, from the call's time and this Memory's defaults, not when a worker runs the turn.
    const addOptions = this.#expiring("enqueue", scope, given);
    // Decided now, not by whichever process's worker runs the turn: a worker without an llm must
    // not store verbatim a turn queued for extraction (it fails it, to be retried elsewhere).
    addOptions.infer ??= this.#extraction !== undefined;
    return this.#writeBehind.enqueue(scope, turn, addOptions, idempotencyKey);
  }

  /**
   * Queues several verbatim adds of one scope (at most 100) as ONE durable outbox entry: the
   * worker writes them as `addMany` does (one embedding call, one transaction, the same memories
   * as the adds one after another) and exactly once, as it writes an `enqueue`d turn. The whole
   * entry is refused when an item is bad (`items[i]` named), and nothing is queued. Never extracts:
   * the adds are stored verbatim, also on a Memory with an `llm`.
   *
   * @example
   * await memory.enqueueMany(
   *   lines.map((line) => ({ messages: [{ role: "user", name: line.speaker, content: line.text }], timestamp: line.at })),
   *   { userId: "alice", idempotencyKey: "chat-export-2026-03:page-1" },
   * );
   */
  async enqueueMany(items: readonly EnqueueManyItem[], options: EnqueueManyOptions): Promise<{ id: string; queued: boolean }> {
    const queued = this.#enqueueMany(items, options);
    this.#enqueuing.add(queued);
    try {
      return await queued;
    } finally {
      this.#enqueuing.delete(queued);
    }
  }

  async #enqueueMany(items: unknown, options: EnqueueManyOptions): Promise<{ id: string; queued: boolean }> {
    const { scope, options: parsed } = parseScoped("enqueueMany", options, enqueueManySchema);
    if (!Array.isArray(items) || items.length === 0 || items.length > MAX_ENQUEUE_MANY) {
      throw new InvalidInputError({
        message: `enqueueMany(): items must be an array of 1 to ${MAX_ENQUEUE_MANY} { messages, timestamp?, metadata? }; split a longer list into several entries.`,
        field: "items",
      });
    }
    const messages: Message[] = [];
    const turns = items.map((item: unknown, index) => {
      try {
        if (item === null || typeof item !== "object" || Array.isArray(item) || !Object.hasOwn(item, "messages")) {
          throw new InvalidInputError({
            message: "enqueueMany(): each item must be an object { messages, timestamp?, metadata? }.",
            field: "messages",
          });
        }
        const { messages: given, ...rest } = item as { messages: unknown };
        const turn = parse(enqueueManyItemSchema, rest, "enqueueMany");
        const parsedMessages = parseMessages("enqueueMany", given, this.#maxLength);
        messages.push(...parsedMessages);
        return { count: parsedMessages.length, ...turn };
      } catch (error) {
        if (!isUserError(error)) throw error;
        throw new InvalidInputError({
          message: `enqueueMany(): items[${index}]: ${(error as Error).message.replace(/^enqueueMany\(\): /, "")} Nothing was queued.`,
          field: `items[${index}]`,
          cause: error,
        });
      }
    });
    this.#assertOpen();
    await this.#ready();
    return this.#writeBehind.enqueue(scope, messages, { infer: false, turns }, parsed.idempotencyKey);
  }

  /**
   * Resolves when every turn enqueued (or requeued by `retryFailed`) through this instance so far,
   * an `enqueue` not yet resolved included, has been processed, or has failed every attempt. For tests, scripts and serverless `waitUntil`.
   */
  async flush(options: { timeoutMs?: number } = {}): Promise<FlushResult> {
    const { timeoutMs = Number.POSITIVE_INFINITY } = parse(flushSchema, options, "flush");
    this.#assertOpen();
    await this.#ready();
    if (this.#enqueuing.size === 0) return this.#writeBehind.flush(timeoutMs);
    const started = this.#runtime.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<void>((resolve) => {
      if (Number.isFinite(timeoutMs)) timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.allSettled(this.#enqueuing), expired]);
    clearTimeout(timer);
    return this.#writeBehind.flush(Math.max(0, timeoutMs - (this.#runtime.now() - started)));
  }

  /** Turns in the outbox that are not done: waiting, in progress, or failed every attempt. */
  async pending(scope: Scope | { allScopes: true }): Promise<PendingTurn[]> {
    this.#assertOpen();
    const valid = parseScopeOrAll("pending", scope);
    await this.#ready();
    return this.#writeBehind.pending(valid);
  }

  /** Puts turns that failed every attempt back in the queue. */
  async retryFailed(scope: Scope | { allScopes: true }): Promise<{ requeued: number }> {
    this.#assertOpen();
    const valid = parseScopeOrAll("retryFailed", scope);
    await this.#ready();
    return this.#writeBehind.retryFailed(valid);
  }

  /**
   * Deletes the memories of the scope (or of every scope, with `{ allScopes: true }`) that have
   * expired. Expired memories are never returned from the instant they expire, swept or not: a
   * sweep frees their space. Each keeps its text in history (a DELETE entry), unless `purge` (or
   * the Memory's `sweep.purge`) erases it there too. A background sweep of every scope runs on its
   * own when `ttl` is set (`sweep` option). Every scope needs a store that can list its scopes.
   */
  async sweep(target: Scope | { allScopes: true }, options: { purge?: boolean } = {}): Promise<SweepResult> {
    this.#assertOpen();
    const valid = parseScopeOrAll("sweep", target);
    const { purge = this.#options.sweep?.purge ?? false } = parse(sweepOptionsSchema, options ?? {}, "sweep");
    return this.#sweep(await this.#ready(), valid, purge);
  }

  /**
   * The newest memories of the scope (or of every scope, for an operator: `{ allScopes: true }`)
   * added or changed since `since` (default the last 7 days), newest first, each with where it came
   * from (the message it is, or the extraction model and the turn it read) and its history: for a
   * person to check a sample for invented facts. Expired memories are not listed.
   */
  async review(target: Scope | { allScopes: true }, options: ReviewOptions = {}): Promise<{ results: ReviewItem[] }> {
    this.#assertOpen();
    const valid = parseScopeOrAll("review", target);
    const parsed = parse(reviewOptionsSchema, options ?? {}, "review");
    const components = await this.#ready();
    const scopes = valid ? [valid] : await everyScope(components.store, "review()");
    const reader = { store: this.#live(components), history: components.history };
    return { results: await reviewScopes(reader, this.#runtime, scopes, parsed, valid === undefined) };
  }

  /**
   * Marks a memory as checked by a person (`reviewedAt` in `review`). The mark is kept with the
   * memory, not in its history (which records its texts); a later change of its text clears it.
   * Rejecting a memory is `delete`.
   */
  async markReviewed(memoryId: string, scope: Scope): Promise<ReviewItem> {
    const valid = validateScope("markReviewed", scope);
    const id = parseId("markReviewed", memoryId);
    this.#assertOpen();
    const components = await this.#ready();
    const marked = await this.#locks.run(lockKeyOf(valid), () =>
      onConflict(async () => {
        const existing = await this.#find(components, id, valid);
        const lifecycle = { ...lifecycleOf(existing.metadata), reviewedAt: isoNow(this.#runtime) };
        const record: MemoryRecord = { ...existing, metadata: withLifecycle(existing.metadata, lifecycle) };
        await components.store.write({ upsert: [record], expect: [{ id, version: versionOf(existing) }] });
        return record;
      }),
    );
    return reviewItemOf(components.history, marked);
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
    return store.scopes();
  }

  /**
   * The latest changes (ADD / UPDATE / DELETE: which memory, when, in which scope; no text) of a
   * scope, or of every scope with the explicit `{ allScopes: true }`, oldest first. Deleted
   * memories' changes included: for operator tools such as the inspector's plots. Needs a history
   * log with the `HistoryScannable` capability (the SQLite and in-memory ones have it).
   */
  async changes(scope: Scope | { allScopes: true }, { limit = 10_000 }: { limit?: number } = {}): Promise<HistoryEventEntry[]> {
    this.#assertOpen();
    const valid = parseScopeOrAll("changes", scope);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1_000_000) {
      throw new InvalidInputError({ message: "changes(): limit must be a whole number from 1 to 1000000.", field: "limit" });
    }
    const { history } = await this.#ready();
    if (!isHistoryScannable(history)) {
      throw new ConfigError({
        message:
          "This history log cannot list a scope's changes (it does not implement HistoryScannable): read them memory by memory with history().",
      });
    }
    // The profile keeps its versions in the same log: they are no memory's changes, so a page with
    // profile entries among the latest is read again, larger, until `limit` memory changes are in.
    for (let asked = limit; ; asked *= 2) {
      const events = await history.events({ ...(valid ? { scope: valid } : {}), limit: asked });
      const changes = events.filter((entry) => !isProfileId(entry.memoryId));
      if (changes.length >= limit || events.length < asked) return changes.slice(Math.max(0, changes.length - limit));
    }
  }

  /** Deletes every memory, history entry and queued turn of EVERY scope. Irreversible. */
  async reset(): Promise<void> {
    this.#assertOpen();
    const components = await this.#ready();
    await components.reset();
    this.#scopeIndexes.clear();
    // A reset store forgets its dimension: prepare it again.
    await components.store.init({ dimension: components.dimension, modelId: components.embedder.modelId });
    this.#writeBehind.forget();
  }

  /**
   * Stops the write-behind worker and closes the stores. Calls are refused from now on, but the
   * turns being processed finish first (they still use the stores), within `timeouts.closeMs`: a
   * turn still in progress then stays in the outbox, and the next worker takes it over once its
   * lease ends.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const deadline = this.#runtime.now() + this.#timeouts.closeMs;
      const left = () => Math.max(1, deadline - this.#runtime.now());
      const hung = (error: unknown) => {
        if (TimeoutError.isInstance(error)) this.#report(error, { operation: "close", willRetry: false });
      };
      await withDeadline("close: waiting for the sweep in progress", left(), async () => this.#sweeper?.stop()).catch(hung);
      await withDeadline("close: waiting for the turns in progress", left(), () => this.#writeBehind.stop()).catch(hung);
      this.#writeBehind.abandon();
      this.#shutDown = true;
      const components = await withDeadline("close: opening the stores", left(), async () => this.#components).catch(() => undefined);
      if (components) {
        await withDeadline("close: closing the stores", left(), () => components.close()).catch(hung);
      }
    })();
    return this.#closed;
  }

  /**
   * Opens the stores and starts the write-behind worker now, instead of with the first call: for a
   * process that only works the outbox (turns enqueued by other processes, or left by one that
   * stopped). Resolves when it is ready.
   */
  async start(): Promise<void> {
    this.#assertOpen();
    await this.#ready();
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────────

  #assertOpen(): void {
    if (this.#closed) throw new ConfigError({ message: "This Memory is closed. Create a new one." });
  }

  /** The components, built on the first call (which also starts the write-behind worker). */
  #ready(): Promise<Components> {
    if (this.#shutDown) return Promise.reject(new ConfigError({ message: "This Memory is closed. Create a new one." }));
    this.#components ??= createComponents({
      options: this.#options,
      retry: this.#retry,
      timeouts: this.#timeouts,
      report: (error, context) => this.#report(error, context),
      runtime: this.#runtime,
    }).then(
      (components) => {
        this.#writeBehind.start();
        this.#sweeper?.start();
        return components;
      },
      (error: unknown) => {
        this.#components = undefined;
        throw error;
      },
    );
    return this.#components;
  }

  /** The store as readers see it: a memory is gone from the instant it expires. */
  #live(components: Components): VectorStore {
    let live = this.#liveStores.get(components.store);
    if (!live) {
      live = liveStore(components.store, () => this.#runtime.now());
      this.#liveStores.set(components.store, live);
    }
    return live;
  }

  /** The turn's options with its expiry fixed now (`expiresAt`, null for never) in place of `ttl`. */
  #expiring<T extends TurnOptions>(call: string, scope: ValidScope, { ttl, expiresAt, ...options }: T): Omit<T, "ttl"> {
    return { ...options, expiresAt: resolveExpiry(call, { expiresAt, ttl }, scope, this.#options.ttl, () => this.#runtime.now()) } as Omit<
      T,
      "ttl"
    >;
  }

  async #sweep(components: Components, scope: ValidScope | undefined, purge: boolean): Promise<SweepResult> {
    const scopes = scope ? [scope] : await everyScope(components.store, "sweep()");
    const settings = { runtime: this.#runtime, lock: <T>(key: string, fn: () => Promise<T>) => this.#locks.run(key, fn) };
    return sweepScopes(components, settings, scopes, { purge, exact: scope === undefined });
  }

  /** The memory with this id inside `scope`, with its vector (an expired memory is not found). */
  async #find(components: Components, id: string, scope: Scope): Promise<MemoryRecord & { vector: Float32Array }> {
    const [record] = await this.#live(components).get([id], { scope });
    if (!record) throw new MemoryNotFoundError({ memoryId: id });
    if (!record.vector)
      throw new ConfigError({
        message: "The vector store returned a record without its vector from get(): it breaks the VectorStore contract.",
      });
    return record as MemoryRecord & { vector: Float32Array };
  }

  /** Decides what an add does, without changing anything (see `decideAdd`). */
  async #decide(scope: ValidScope, messages: Message[], options: TurnOptions, entryId?: string): Promise<Plan> {
    const settings = { extraction: this.#extraction, runtime: this.#runtime, onUsage: this.#options.onUsage, report: this.#reportHook };
    const components = await this.#ready();
    const plan = await decideAdd(settings, { ...components, store: this.#live(components) }, { scope, messages, options, entryId });
    // Queued turns carry the expiry fixed when they were queued; one queued before expiry existed gets the defaults now.
    const expiresAt =
      options.expiresAt !== undefined
        ? options.expiresAt
        : resolveExpiry("add", { ttl: options.ttl }, scope, this.#options.ttl, () => this.#runtime.now());
    const model = this.#extraction?.model;
    const extracted = model !== undefined && (options.infer ?? true);
    const source = extracted
      ? { model: typeof model === "string" ? model : `${model.provider}/${model.modelId}`, turn: sourceTurn(messages) }
      : undefined;
    return stampPlan(plan, { expiresAt, ...(source ? { source } : {}) });
  }

  /** Decides queued verbatim turns together (see `planVerbatimBatch`), one plan per turn, each applicable on its own. */
  async #decideMany(turns: { scope: ValidScope; messages: Message[]; options: TurnOptions; entryId: string }[]): Promise<Plan[]> {
    const components = await this.#ready();
    const plans = await planVerbatimBatch(
      { store: this.#live(components), embedder: components.embedder, runtime: this.#runtime, dimension: components.dimension },
      turns.map(({ scope, messages, options }) => ({ scope, messages, metadata: options.metadata, timestamp: options.timestamp })),
      { eachApplicable: true },
    );
    return plans.map((plan, i) => {
      const { scope, options, entryId } = turns[i] as (typeof turns)[number];
      callHook("onUsage", this.#options.onUsage, { ...plan.usage }, { scope: { ...scope }, failed: false, entryId });
      // As #decide: the expiry fixed when the turn was queued, or the defaults for one queued before expiry existed.
      const expiresAt =
        options.expiresAt !== undefined
          ? options.expiresAt
          : resolveExpiry("add", { ttl: options.ttl }, scope, this.#options.ttl, () => this.#runtime.now());
      return stampPlan(plan, { expiresAt });
    });
  }

  #report(error: EngramError, context: ErrorContext): void {
    callHook("onError", this.#options.onError ?? defaultOnError, error, context);
  }

  readonly #reportHook = (error: EngramError, context: ErrorContext) => this.#report(error, context);
}
