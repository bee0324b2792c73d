import { createHash } from "node:crypto";
import { asStoreError } from "../../src/errors.js";
import {
  ConfigError,
  type EngramError,
  type MemoryItem,
  type Profile,
  renderMemoryBlock,
  type Scope,
  stripMemoryBlocks,
  TimeoutError,
} from "../../src/index.js";
import { getLogger } from "../../src/logger.js";
import { loadO200kCounter } from "./block-tokens.js";
import { withDeadline } from "./deadline.js";
import type { ResolvedAdapterOptions } from "./options.js";
import { recallScope } from "./scope.js";
import { TurnCache } from "./turn-cache.js";

const logger = getLogger("engram:adapter");

/** What was recalled for a turn: the memories and the block rendered from them (undefined when none). */
export interface Recall {
  items: MemoryItem[];
  block: string | undefined;
}

const none: Recall = { items: [], block: undefined };

/** Longest message text queued (the Memory default maximum): a very long reply is kept in part rather than refused whole. */
const maxQueuedLength = 32_000;
const clip = (text: string) => (text.length > maxQueuedLength ? `${text.slice(0, maxQueuedLength - 1)}…` : text);

/**
 * A stable id from a scope and what identifies something within it: a turn's recall key (the
 * conversation up to the latest user message, which the steps of a tool loop share, so they
 * search once) or a write's idempotency key.
 */
export function turnKey(scope: Scope, conversation: unknown): string {
  return createHash("sha256")
    .update(JSON.stringify([scope.userId ?? null, scope.agentId ?? null, scope.runId ?? null, conversation]))
    .digest("hex");
}

/** The search of one turn, shared by its steps. */
interface TurnSearch {
  promise: Promise<Recall>;
  /** Set once the search has answered: a step after a late answer takes it at once. */
  answer?: Recall;
  /** Set once a step has waited its full deadline for this search. */
  late?: boolean;
}

/**
 * The adapter-independent part of wrapping a model call: recall before it (once per turn, with a
 * deadline and the fail-open policy), remember after it (queued, never awaited by the reply).
 */
export class TurnMemory {
  readonly #cache = new TurnCache<TurnSearch>();
  /** Counts the block's tokens when it has a budget: the app's counter, else o200k (loaded from the start). */
  readonly #countTokens: Promise<(text: string) => number> | undefined;

  constructor(readonly options: ResolvedAdapterOptions) {
    if (options.maxTokens !== undefined) {
      this.#countTokens = options.countTokens ? Promise.resolve(options.countTokens) : loadO200kCounter();
      // A missing tokenizer is reported by the first recall that needs it.
      this.#countTokens.catch(() => {});
    }
  }

  /**
   * Searches memories for the turn's user message, waiting at most `recallTimeoutMs`. With
   * `failOpen`, a failed or late search is reported to `onError` (a late one as a TimeoutError)
   * and the call goes on without memories; without it, the error is thrown.
   *
   * Steps of one turn share the search. When it answers after a step's deadline, a later step of
   * the turn takes the answer; while it has not answered, later steps go on without memories at
   * once (failing open) rather than wait again. A failed search is forgotten: the next step searches anew.
   */
  async recall({
    scope,
    query,
    key,
    signal,
  }: {
    scope: Scope;
    query: string | undefined;
    key: string;
    signal?: AbortSignal;
  }): Promise<Recall> {
    const text = query === undefined ? "" : stripMemoryBlocks(query);
    if (text.trim() === "" && !this.#readsProfile) return none;
    const { failOpen, recallTimeoutMs } = this.options;
    const search = this.#cache.get(key, () => this.#search(key, scope, text, signal));
    if (search.answer) return search.answer;
    if (search.late && failOpen) return none;
    try {
      return await withDeadline(search.promise, recallTimeoutMs, () => {
        search.late = true;
        return new TimeoutError({
          operation: "search",
          timeoutMs: recallTimeoutMs,
          message:
            `Searching memories took longer than recallTimeoutMs (${recallTimeoutMs} ms). Check that the embedder and the vector ` +
            "store answer, or raise recallTimeoutMs. The first search after start loads the embedding model: await warmUp(memory) before serving.",
        });
      });
    } catch (error) {
      // The call itself was aborted: nothing to report, and nothing to go on with.
      if (signal?.aborted) throw signal.reason;
      const failure = asStoreError(error, "Memory search failed");
      if (!failOpen) throw failure;
      this.report(failure, "recall");
      return none;
    }
  }

  get #readsProfile(): boolean {
    return this.options.profile && typeof this.options.memory.profile === "function";
  }

  /** The profile, or none when reading it fails and the call fails open: its memories are still injected. */
  async #profile(scope: Scope): Promise<Profile | null | undefined> {
    try {
      return await this.options.memory.profile?.(scope);
    } catch (error) {
      const failure = asStoreError(error, "Reading the profile failed");
      if (!this.options.failOpen) throw failure;
      this.report(failure, "recall");
      return undefined;
    }
  }

  #search(key: string, scope: Scope, text: string, signal: AbortSignal | undefined): TurnSearch {
    const { memory, limit, threshold, label, render, maxTokens, searchAcrossRuns } = this.options;
    const searched = recallScope(scope, searchAcrossRuns);
    const promise = (async () => {
      // The profile is read beside the search, from the same history store, once per turn.
      const [{ results }, profile] = await Promise.all([
        text.trim() === ""
          ? { results: [] }
          : memory.search(clip(text), {
              ...searched,
              limit,
              ...(threshold === undefined ? {} : { threshold }),
              ...(signal ? { signal } : {}),
            }),
        this.#readsProfile ? this.#profile(searched) : undefined,
      ]);
      const countTokens = await this.#countTokens;
      const budget = maxTokens !== undefined && countTokens ? { maxTokens, countTokens } : undefined;
      let block: string | undefined;
      try {
        block = renderMemoryBlock(results, { label, profile, ...(render ? { render } : {}), ...(budget ? { budget } : {}) });
      } catch (error) {
        throw new ConfigError({
          message: `Rendering the memory block failed (the render or countTokens option threw): ${error instanceof Error ? error.message : String(error)}`,
          cause: error,
        });
      }
      return { items: results, block };
    })();
    const search: TurnSearch = { promise };
    promise.then(
      (answer) => {
        search.answer = answer;
      },
      () => this.#cache.delete(key, search),
    );
    return search;
  }

  /**
   * Queues the finished turn (the user's message and the assistant's final text) for the durable
   * write-behind. Returns at once; failures go to `onError`.
   *
   * The write's idempotency key is `call` plus the two messages: the same call written twice with
   * the same reply (a retry, or two adapters covering one run) is queued once, while a repeated
   * identical question that got another reply is another turn, and is written too.
   *
   * @param key the turn's recall key (its cached search is forgotten).
   * @param call identifies the call the turn came from. @default key
   */
  remember({
    scope,
    user,
    assistant,
    key,
    call = key,
  }: {
    scope: Scope;
    user: string | undefined;
    assistant: string;
    key: string;
    call?: string;
  }): void {
    this.#cache.delete(key);
    if (!this.options.remember) return;
    const messages = [
      { role: "user" as const, content: clip(user === undefined ? "" : stripMemoryBlocks(user)) },
      { role: "assistant" as const, content: clip(stripMemoryBlocks(assistant)) },
    ].filter((message) => message.content.trim() !== "");
    if (!messages.some((message) => message.role === "user")) return;
    const idempotencyKey = turnKey(scope, ["write", call, messages]);
    // Profile edits from the turn go to the profile this adapter injects (the searched scope's).
    const acrossRuns = this.options.searchAcrossRuns && scope.userId !== undefined && scope.runId !== undefined;
    this.options.memory
      .enqueue(messages, { ...scope, idempotencyKey, ...(acrossRuns ? { profileAcrossRuns: true } : {}) })
      .catch((error: unknown) => this.report(asStoreError(error, "Queueing the turn failed"), "remember"));
  }

  /** Hands a failure to `onError` (a hook that throws is logged, never rethrown). */
  report(error: EngramError, operation: "recall" | "remember"): void {
    try {
      this.options.onError(error, { operation });
    } catch (hookError) {
      logger.error("onError threw:", hookError);
    }
  }
}
