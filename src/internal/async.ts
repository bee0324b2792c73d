import { TimeoutError } from "../errors.js";

export interface RetryOptions {
  /** Retries after the first attempt. @default 2 */
  retries: number;
  /** Delay before the first retry; doubles each time, with jitter. @default 250 */
  minDelayMs: number;
  /** @default 4000 */
  maxDelayMs: number;
}

export const defaultRetry: RetryOptions = { retries: 2, minDelayMs: 250, maxDelayMs: 4000 };

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Exponential backoff with ±25 % jitter. */
export function backoffDelay(attempt: number, { minDelayMs, maxDelayMs }: Pick<RetryOptions, "minDelayMs" | "maxDelayMs">): number {
  const base = Math.min(maxDelayMs, minDelayMs * 2 ** attempt);
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/**
 * Runs `fn`, retrying with backoff while `shouldRetry(error)` holds. `onRetry` sees every failure
 * that will be retried; the last failure is thrown.
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions & { shouldRetry?: (error: unknown) => boolean; onRetry?: (error: unknown, attempt: number) => void },
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= options.retries || (options.shouldRetry && !options.shouldRetry(error))) throw error;
      options.onRetry?.(error, attempt);
      await sleep(backoffDelay(attempt, options));
    }
  }
}

/** Runs tasks one at a time per key, in call order; different keys run concurrently. */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const current = previous.then(task, task);
    const tail = current.catch(() => {});
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return current;
  }
}

/**
 * Runs `fn` with a deadline: when it has not settled after `timeoutMs`, its signal is aborted and
 * the returned promise rejects with a `TimeoutError`, whatever `fn` does next (a call that ignores
 * its signal is abandoned, never awaited). `Infinity` means no deadline.
 */
export function withDeadline<T>(operation: string, timeoutMs: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  if (!Number.isFinite(timeoutMs)) return Promise.resolve().then(() => fn(controller.signal));
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      const error = new TimeoutError({
        operation,
        timeoutMs,
        message: `${operation} did not answer within ${timeoutMs} ms`,
      });
      controller.abort(error);
      reject(error);
    }, timeoutMs);
    Promise.resolve()
      .then(() => fn(controller.signal))
      .then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
  });
}

/**
 * Stops waiting for `promise` when `signal` aborts: rejects with the signal's reason (what
 * `fetch` and the AI SDK do), while the work itself ends as it will. Without a signal, `promise`.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
