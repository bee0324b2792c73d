import type { EngramError } from "./errors.js";
import { getLogger } from "./logger.js";
import type { ErrorContext } from "./types.js";

const logger = getLogger("engram:memory");

/** The default `onError`: one `[engram]` line per failure on stderr, saying what happens next; `DEBUG=engram*` adds the error in full. */
export function defaultOnError(error: EngramError, context: ErrorContext): void {
  const where = context.entryId ? ` (turn ${context.entryId})` : "";
  const next =
    context.willRetry === false
      ? " Giving up: the turn stays in the outbox, see memory.pending()."
      : context.willRetry
        ? " Will retry."
        : "";
  const message = /[.!?]$/.test(error.message) ? error.message : `${error.message}.`;
  logger.error(`${context.operation}${where}: ${error.name}: ${message}${next}`);
  logger.debug("%O", error);
}

/** Calls an app's hook; a hook that throws is logged, never rethrown into Engram's work. */
export function callHook<Args extends unknown[]>(name: string, hook: ((...args: Args) => void) | undefined, ...args: Args): void {
  if (!hook) return;
  try {
    hook(...args);
  } catch (hookError) {
    logger.error(`${name} threw:`, hookError);
  }
}
