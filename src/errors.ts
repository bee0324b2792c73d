/** The marker an error class stamps on its instances: `Symbol.for("engram.error.<Class>")`. */
const markerOf = (name: string) => Symbol.for(`engram.error.${name}`);

/** What every error class declares about itself, once, instead of callers keeping lists of classes. */
interface ErrorKind {
  /** Stable machine-readable code, e.g. `"MISSING_SCOPE"`. */
  code: string;
  /** Another attempt may succeed (a dependency failed); false for mistakes and permanent conditions. */
  isRetryable: boolean;
  /** Caused by the caller (bad input, configuration): fix the call, do not alert. */
  isUserError: boolean;
}

/**
 * Base class of every error Engram throws.
 *
 * Use `EngramError.isInstance(error)` (or a subclass's `isInstance`) rather than `instanceof`:
 * it also recognises errors thrown by another copy of the package. Each class stamps its own marker
 * (a registered symbol named after the class, fixed in the source, so minified builds keep it) on
 * its instances and those of its subclasses.
 */
export class EngramError extends Error {
  /** The name of this class's marker; every subclass declares its own. */
  static readonly marker: string = "EngramError";
  /** Stable machine-readable code, e.g. `"MISSING_SCOPE"`. */
  readonly code: string;
  /**
   * True when trying again may succeed: a dependency (embedder, model, store) failed or was slow,
   * or a write lost a race. False for the caller's mistakes and for permanent conditions (a
   * damaged database).
   */
  readonly isRetryable: boolean;
  /** True when the caller caused it (missing scope, bad input, configuration): fix the call. */
  readonly isUserError: boolean;

  constructor({ code, message, cause, isRetryable, isUserError }: ErrorKind & { message: string; cause?: unknown }) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.code = code;
    this.isRetryable = isRetryable;
    this.isUserError = isUserError;
    for (let type = new.target as unknown; type && Object.hasOwn(type, "marker"); type = Object.getPrototypeOf(type)) {
      Object.defineProperty(this, markerOf((type as typeof EngramError).marker), { value: true });
    }
  }

  /** True for errors of this class or a subclass (on EngramError, any Engram error), from any copy of the package. */
  static isInstance(error: unknown): error is EngramError {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class the check is called on.
    const marker = markerOf(this.marker);
    return error != null && typeof error === "object" && (error as Record<symbol, unknown>)[marker] === true;
  }
}

const user = { isRetryable: false, isUserError: true } as const;
const system = { isRetryable: true, isUserError: false } as const;

/** A call was made without any scope id (`userId`, `agentId` or `runId`). */
export class MissingScopeError extends EngramError {
  static override readonly marker: string = "MissingScopeError";
  /** The call that was refused, e.g. `"search"`. */
  readonly call: string;
  constructor({ call, message }: { call: string; message?: string }) {
    super({
      code: "MISSING_SCOPE",
      ...user,
      message:
        message ??
        `${call}() needs a scope: pass at least one non-empty id of userId, agentId or runId, e.g. { userId: "alice" }. Engram has no global namespace.`,
    });
    this.call = call;
  }
}

/** A scope was given but is malformed: an unknown key, an empty or oversized id, a non-string id. */
export class InvalidScopeError extends EngramError {
  static override readonly marker: string = "InvalidScopeError";
  /** The offending key as given by the caller, e.g. `"user_id"`. */
  readonly key: string;
  constructor({ key, message }: { key: string; message: string }) {
    super({ code: "INVALID_SCOPE", message, ...user });
    this.key = key;
  }
}

/** Bad input to a call: empty text, a limit out of range, an unknown option, … Nothing was stored. */
export class InvalidInputError extends EngramError {
  static override readonly marker: string = "InvalidInputError";
  /** Path of the offending field, e.g. `"options.limit"`. */
  readonly field: string | undefined;
  constructor({ message, field, cause }: { message: string; field?: string; cause?: unknown }) {
    super({ code: "INVALID_INPUT", message, cause, ...user });
    this.field = field;
  }
}

/** No memory with this id exists within the given scope (a memory outside the scope is reported the same way). */
export class MemoryNotFoundError extends EngramError {
  static override readonly marker: string = "MemoryNotFoundError";
  readonly memoryId: string;
  constructor({ memoryId }: { memoryId: string }) {
    super({
      code: "MEMORY_NOT_FOUND",
      ...user,
      message: `No memory "${memoryId}" in this scope. Check the id, and that the scope ids are the ones the memory was stored with.`,
    });
    this.memoryId = memoryId;
  }
}

/** Engram was configured wrongly: a bad option, a missing optional dependency, a data dir made for another embedder. */
export class ConfigError extends EngramError {
  static override readonly marker: string = "ConfigError";
  constructor({ message, cause }: { message: string; cause?: unknown }) {
    super({ code: "CONFIG", message, cause, ...user });
  }
}

/** The extraction model failed or returned output that could not be used, after retries. Nothing was applied. */
export class ExtractionError extends EngramError {
  static override readonly marker: string = "ExtractionError";
  /** The model's raw text output, when there was one. */
  readonly rawOutput: string | undefined;
  constructor({ message, cause, rawOutput }: { message: string; cause?: unknown; rawOutput?: string }) {
    super({ code: "EXTRACTION", message, cause, ...system });
    this.rawOutput = rawOutput;
  }
}

/** The embedder failed after retries, or returned vectors of the wrong shape. */
export class EmbeddingError extends EngramError {
  static override readonly marker: string = "EmbeddingError";
  constructor({ message, cause }: { message: string; cause?: unknown }) {
    super({ code: "EMBEDDING", message, cause, ...system });
  }
}

/** A vector store or history store operation failed. */
export class StoreError extends EngramError {
  static override readonly marker: string = "StoreError";
  /** @param kind for subclasses only. */
  constructor({ message, cause }: { message: string; cause?: unknown }, kind: ErrorKind = { code: "STORE", ...system }) {
    super({ ...kind, message, cause });
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
  static override readonly marker: string = "CorruptionError";
  /** The damaged database file. */
  readonly path: string;
  constructor({ path, detail, cause }: { path: string; detail: string; cause?: unknown }) {
    super(
      {
        message: `The database ${path} is damaged (${detail}). Engram refuses to write to it until the process restarts. Stop every process using it, keep a copy of the file, run \`engram check --data-dir <its directory>\` for details, export what is still readable (\`engram export --all-scopes\`), then restore a backup or import the export into a new data dir (docs/operations.md).`,
        cause,
      },
      { code: "STORE_CORRUPT", isRetryable: false, isUserError: false },
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
  static override readonly marker: string = "TimeoutError";
  /** What timed out, e.g. `"The embedder"`, `"The store (search)"`, `"search"`. */
  readonly operation: string;
  /** The deadline that passed, in milliseconds. */
  readonly timeoutMs: number;
  constructor({ message, operation, timeoutMs, cause }: { message: string; operation: string; timeoutMs: number; cause?: unknown }) {
    super({ code: "TIMEOUT", message, cause, ...system });
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
  static override readonly marker: string = "WriteConflictError";
  /** The memories whose state differed from what the write expected. */
  readonly memoryIds: readonly string[];
  constructor({ memoryIds, message }: { memoryIds: readonly string[]; message?: string }) {
    super({
      code: "WRITE_CONFLICT",
      ...system,
      message:
        message ??
        `The write was refused: ${memoryIds.length === 1 ? `memory ${memoryIds[0]} was` : `memories ${memoryIds.join(", ")} were`} changed, deleted or purged by another call since it was read. Read it again and retry.`,
    });
    this.memoryIds = memoryIds;
  }
}

/** Errors caused by the caller; everything else Engram throws is a system error worth retrying or alerting on. */
export function isUserError(error: unknown): boolean {
  return EngramError.isInstance(error) && error.isUserError;
}

/**
 * Whether trying again may succeed: an Engram error says so itself; any other error (a transport
 * failure from a dependency) is taken as retryable unless it says otherwise (`isRetryable: false`,
 * as AI SDK errors do).
 */
export function isRetryable(error: unknown): boolean {
  if (EngramError.isInstance(error)) return error.isRetryable;
  return (error as { isRetryable?: unknown } | null)?.isRetryable !== false;
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
