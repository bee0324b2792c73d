const marker = "engram.error";
const symbol = Symbol.for(marker);

/**
 * Base class of every error Engram throws.
 *
 * Use `EngramError.isInstance(error)` (or a subclass's `isInstance`) rather than `instanceof`:
 * it also recognises errors thrown by another copy of the package.
 */
export class EngramError extends Error {
  /** Stable machine-readable code, e.g. `"MISSING_SCOPE"`. */
  readonly code: string;

  constructor({ code, message, cause }: { code: string; message: string; cause?: unknown }) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.code = code;
    Object.defineProperty(this, symbol, { value: true });
  }

  /** True for errors of this class or a subclass (on EngramError, any Engram error), from any copy of the package. */
  static isInstance(error: unknown): error is EngramError {
    if (!EngramError.hasMarker(error)) return false;
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class the check is called on.
    const name = this.name;
    if (name === EngramError.name || (error as Error).name === name) return true;
    // A subclass from another copy of the package: its prototype chain has a class of this name.
    for (let proto = Object.getPrototypeOf(error); proto && proto !== Error.prototype; proto = Object.getPrototypeOf(proto)) {
      if ((proto as { constructor?: { name?: string } }).constructor?.name === name) return true;
    }
    return false;
  }

  protected static hasMarker(error: unknown): boolean {
    return error != null && typeof error === "object" && (error as Record<symbol, unknown>)[symbol] === true;
  }
}

/** A call was made without any scope id (`userId`, `agentId` or `runId`). */
export class MissingScopeError extends EngramError {
  /** The call that was refused, e.g. `"search"`. */
  readonly call: string;
  constructor({ call, message }: { call: string; message?: string }) {
    super({
      code: "MISSING_SCOPE",
      message:
        message ??
        `${call}() needs a scope: pass at least one non-empty id of userId, agentId or runId, e.g. { userId: "alice" }. Engram has no global namespace.`,
    });
    this.call = call;
  }
}

/** A scope was given but is malformed: an unknown key, an empty or oversized id, a non-string id. */
export class InvalidScopeError extends EngramError {
  /** The offending key as given by the caller, e.g. `"user_id"`. */
  readonly key: string;
  constructor({ key, message }: { key: string; message: string }) {
    super({ code: "INVALID_SCOPE", message });
    this.key = key;
  }
}

/** Bad input to a call: empty text, a limit out of range, an unknown option, … Nothing was stored. */
export class InvalidInputError extends EngramError {
  /** Path of the offending field, e.g. `"options.limit"`. */
  readonly field: string | undefined;
  constructor({ message, field, cause }: { message: string; field?: string; cause?: unknown }) {
    super({ code: "INVALID_INPUT", message, cause });
    this.field = field;
  }
}

/** No memory with this id exists within the given scope (a memory outside the scope is reported the same way). */
export class MemoryNotFoundError extends EngramError {
  readonly memoryId: string;
  constructor({ memoryId }: { memoryId: string }) {
    super({
      code: "MEMORY_NOT_FOUND",
      message: `No memory "${memoryId}" in this scope. Check the id, and that the scope ids are the ones the memory was stored with.`,
    });
    this.memoryId = memoryId;
  }
}

/** Engram was configured wrongly: a bad option, a missing optional dependency, a data dir made for another embedder. */
export class ConfigError extends EngramError {
  constructor({ message, cause }: { message: string; cause?: unknown }) {
    super({ code: "CONFIG", message, cause });
  }
}

/** The extraction model failed or returned output that could not be used, after retries. Nothing was applied. */
export class ExtractionError extends EngramError {
  /** The model's raw text output, when there was one. */
  readonly rawOutput: string | undefined;
  constructor({ message, cause, rawOutput }: { message: string; cause?: unknown; rawOutput?: string }) {
    super({ code: "EXTRACTION", message, cause });
    this.rawOutput = rawOutput;
  }
}

/** The embedder failed after retries, or returned vectors of the wrong shape. */
export class EmbeddingError extends EngramError {
  constructor({ message, cause }: { message: string; cause?: unknown }) {
    super({ code: "EMBEDDING", message, cause });
  }
}

/** A vector store or history store operation failed. */
export class StoreError extends EngramError {
  /** @param code for subclasses only. */
  constructor({ message, cause }: { message: string; cause?: unknown }, code = "STORE") {
    super({ code, message, cause });
  }
}

/**
 * The database file is damaged (SQLite reported it corrupt, or not a database at all). Reads that
 * reach damaged pages fail with it, and from the first time it is seen every write to the file is
 * refused for the rest of the process, so nothing more is written into a damaged file. Recover as
 * docs/operations.md describes: stop the writers, keep a copy of the file, run `engram check`,
 * export what is readable, then restore a backup or import the export into a new data dir.
 */
export class CorruptionError extends StoreError {
  /** The damaged database file. */
  readonly path: string;
  constructor({ path, detail, cause }: { path: string; detail: string; cause?: unknown }) {
    super(
      {
        message: `The database ${path} is damaged (${detail}). Engram refuses to write to it until the process restarts. Stop every process using it, keep a copy of the file, run \`engram check --data-dir <its directory>\` for details, export what is still readable (\`engram export --all-scopes\`), then restore a backup or import the export into a new data dir (docs/operations.md).`,
        cause,
      },
      "STORE_CORRUPT",
    );
    this.path = path;
  }
}

/**
 * A call out of Engram (the embedder, the extraction model, a store), or an adapter's search before
 * a model call, did not answer within its deadline. Engram stops waiting for it; what it started may
 * still finish in the background. A write-behind turn that timed out stays in the outbox and is
 * retried.
 */
export class TimeoutError extends EngramError {
  /** What timed out, e.g. `"The embedder"`, `"The store (search)"`, `"search"`. */
  readonly operation: string;
  /** The deadline that passed, in milliseconds. */
  readonly timeoutMs: number;
  constructor({ message, operation, timeoutMs, cause }: { message: string; operation: string; timeoutMs: number; cause?: unknown }) {
    super({ code: "TIMEOUT", message, cause });
    this.operation = operation;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A write was refused because what it was decided against changed in the meantime: the memory
 * was updated, deleted or purged by another call (possibly in another process). Nothing was
 * written. The write-behind decides such a turn again against the current memories.
 */
export class WriteConflictError extends EngramError {
  /** The memories whose state differed from what the write expected. */
  readonly memoryIds: readonly string[];
  constructor({ memoryIds, message }: { memoryIds: readonly string[]; message?: string }) {
    super({
      code: "WRITE_CONFLICT",
      message:
        message ??
        `The write was refused: ${memoryIds.length === 1 ? `memory ${memoryIds[0]} was` : `memories ${memoryIds.join(", ")} were`} changed, deleted or purged by another call since it was read. Read it again and retry.`,
    });
    this.memoryIds = memoryIds;
  }
}

/** Errors caused by the caller; everything else Engram throws is a system error worth retrying or alerting on. */
export function isUserError(error: unknown): boolean {
  return (
    MissingScopeError.isInstance(error) ||
    InvalidScopeError.isInstance(error) ||
    InvalidInputError.isInstance(error) ||
    MemoryNotFoundError.isInstance(error) ||
    ConfigError.isInstance(error)
  );
}

/**
 * An Engram error as it is; anything else (a driver's error, a bug) as a `StoreError` whose message
 * is `context` followed by what it said, keeping it as the cause.
 *
 * @example
 * catch (error) { throw asStoreError(error, "PostgreSQL search failed"); }
 */
export function asStoreError(error: unknown, context: string): EngramError {
  if (EngramError.isInstance(error)) return error;
  return new StoreError({ message: `${context}: ${error instanceof Error ? error.message : String(error)}`, cause: error });
}
