import { EmbeddingError, type EngramError, isRetryable, isUserError, TimeoutError } from "../errors.js";
import { type RetryOptions, retry, withDeadline } from "../internal/async.js";
import type { Usage } from "../types.js";
import type { Embedder } from "./embedder.js";

/** What one embedding call carries besides its texts. */
export interface EmbedCall {
  /** Aborted when the caller stops waiting. */
  signal?: AbortSignal;
  /** Counted into by `countEmbeddingCalls`. */
  usage?: Usage;
  /**
   * Set on a search's query embedding (to its scope): `cacheQueryEmbeddings` keeps the vector under
   * this key, the model id and the text. Calls without it are never cached.
   */
  cacheKey?: string;
}

type Embed = (texts: string[], call: EmbedCall) => Promise<Float32Array[]>;

/**
 * A layer around an embedder's `embed`, as AI SDK middleware wraps a model: it may act before,
 * after or around `next`, which is the rest of the stack.
 */
export interface EmbedderMiddleware {
  wrapEmbed(options: { next: Embed; texts: string[]; call: EmbedCall; embedder: Embedder }): Promise<Float32Array[]>;
}

/** An embedder whose calls take an `EmbedCall` (usage counting, abort signal). */
export interface WrappedEmbedder extends Embedder {
  embed(texts: string[], call?: EmbedCall): Promise<Float32Array[]>;
}

/** Stacks middleware around an embedder, the first the outermost. Built once, when a `Memory` is. */
export function wrapEmbedder(embedder: Embedder, middleware: readonly EmbedderMiddleware[]): WrappedEmbedder {
  const inner: Embed = (texts, call) => embedder.embed(texts, { signal: call.signal });
  const embed = middleware.reduceRight<Embed>((next, layer) => (texts, call) => layer.wrapEmbed({ next, texts, call, embedder }), inner);
  return {
    dimension: embedder.dimension,
    modelId: embedder.modelId,
    embed: (texts, call = {}) => (texts.length === 0 ? Promise.resolve([]) : embed(texts, call)),
  };
}

/**
 * Keeps the vectors of the last `size` distinct queries (one text, `cacheKey` set), so a query
 * asked again skips the embedder. Keyed by the scope as well as the model and the text: one
 * scope's searches can never make another's faster (no timing oracle across scopes). Callers get
 * copies, so a caller changing a vector changes nothing here.
 */
export function cacheQueryEmbeddings({ size }: { size: number }): EmbedderMiddleware {
  const cache = new Map<string, Float32Array>();
  return {
    async wrapEmbed({ next, texts, call, embedder }) {
      const [text] = texts;
      if (call.cacheKey === undefined || texts.length !== 1 || text === undefined || size <= 0) return next(texts, call);
      const key = JSON.stringify([embedder.modelId ?? null, call.cacheKey, text]);
      const cached = cache.get(key);
      if (cached) {
        cache.delete(key);
        cache.set(key, cached);
        return [cached.slice()];
      }
      const result = await next(texts, call);
      const [vector] = result;
      if (vector instanceof Float32Array) {
        cache.delete(key);
        cache.set(key, vector.slice());
        if (cache.size > size) cache.delete(cache.keys().next().value as string);
      }
      return result;
    },
  };
}

/** Retries failed calls with backoff; the last failure is thrown as an `EmbeddingError` (or the typed error it was). */
export function retryEmbeddings(options: RetryOptions & { report: (error: EngramError, attempt: number) => void }): EmbedderMiddleware {
  return {
    wrapEmbed: ({ next, texts, call }) =>
      retry(() => next(texts, call), {
        ...options,
        shouldRetry: isRetryable,
        onRetry: (error, attempt) => options.report(asEmbeddingError(error), attempt),
      }).catch((error: unknown) => {
        throw asEmbeddingError(error);
      }),
  };
}

/** Counts every call that reaches the embedder into the call's `usage`. */
export function countEmbeddingCalls(): EmbedderMiddleware {
  return {
    wrapEmbed: ({ next, texts, call }) => {
      if (call.usage) call.usage.embeddingCalls++;
      return next(texts, call);
    },
  };
}

/** Fails a call that does not answer within `timeoutMs` with a `TimeoutError`, aborting its signal. */
export function embedDeadline(timeoutMs: number): EmbedderMiddleware {
  return {
    wrapEmbed: ({ next, texts, call }) =>
      withDeadline("The embedder", timeoutMs, (deadline) =>
        next(texts, { ...call, signal: call.signal ? AbortSignal.any([call.signal, deadline]) : deadline }),
      ),
  };
}

/** Refuses a result that is not one finite Float32Array of the embedder's dimension per text. */
export function validateVectors(): EmbedderMiddleware {
  return {
    async wrapEmbed({ next, texts, call, embedder }) {
      const result = await next(texts, call);
      if (!Array.isArray(result) || result.length !== texts.length) {
        throw new EmbeddingError({
          message: `The embedder returned ${Array.isArray(result) ? result.length : "no"} vectors for ${texts.length} texts`,
        });
      }
      const dimension = embedder.dimension ?? result[0]?.length;
      for (const vector of result) {
        if (!(vector instanceof Float32Array) || vector.length !== dimension || vector.some((v) => !Number.isFinite(v))) {
          throw new EmbeddingError({ message: `The embedder returned a vector that is not a Float32Array of ${dimension} finite numbers` });
        }
      }
      return result;
    },
  };
}

/** An embedder failure as Engram reports it: typed errors pass as they are, anything else becomes an `EmbeddingError`. */
export function asEmbeddingError(error: unknown): EngramError {
  if (EmbeddingError.isInstance(error) || TimeoutError.isInstance(error) || isUserError(error)) {
    return error as EngramError;
  }
  return new EmbeddingError({ message: `The embedder failed: ${error instanceof Error ? error.message : String(error)}`, cause: error });
}
