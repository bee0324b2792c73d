import { asStoreError } from "../errors.js";
import { withDeadline } from "../internal/async.js";

/** Runs one store call with the store deadline, failing only with Engram errors. */
export function guardedCall<T>(operation: string, timeoutMs: number, fn: () => T | Promise<T>): Promise<T> {
  return withDeadline(`The store (${operation})`, timeoutMs, async () => fn()).catch((error: unknown) => {
    throw asStoreError(error, `The store's ${operation}() failed`);
  });
}

/**
 * The same object with every method guarded: each call has a deadline (`TimeoutError` past it)
 * and fails only with Engram errors (a driver's own error becomes a `StoreError` naming the
 * method). Methods the object lacks stay absent, so optional capabilities are still detected.
 * Symbol-keyed members (internal capabilities) pass through unwrapped.
 */
function guarded<T extends object>(target: T, { timeoutMs }: { timeoutMs: number }): T {
  const methods = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(object, property) {
      const value = Reflect.get(object, property, object);
      if (typeof property === "symbol" || typeof value !== "function" || property === "close") {
        return typeof value === "function" ? value.bind(object) : value;
      }
      let method = methods.get(property);
      if (!method) {
        method = (...args: unknown[]) =>
          guardedCall(property, timeoutMs, () => (value as (...a: unknown[]) => unknown).apply(object, args));
        methods.set(property, method);
      }
      return method;
    },
  });
}

/**
 * A store (vector store, history log, outbox) whose every call has the store deadline and fails
 * only with Engram errors. Wrapped once, when a `Memory` is built.
 */
export const guardStore = <T extends object>(store: T, options: { timeoutMs: number }): T => guarded(store, options);
