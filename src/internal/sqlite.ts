import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { ConfigError, StoreError } from "../errors.js";

/** One shared connection per database file in this process, counted by its users. */
export interface SqliteHandle {
  readonly path: string;
  readonly db: DatabaseSync;
  /** A cached prepared statement. */
  statement(sql: string): StatementSync;
  /** Runs `fn` inside `BEGIN IMMEDIATE … COMMIT`, rolling back when it throws. `fn` must not await. */
  transaction<T>(fn: () => T): T;
  /**
   * Moves WAL content into the main file and empties the WAL, so erased text leaves both files.
   * Never blocks the event loop: while another connection (any process) reads an older snapshot,
   * the checkpoint cannot complete, and it is retried with backoff for up to `waitMs`. Past that it
   * resolves anyway and keeps retrying in the background (unref'd timers), and once more when the
   * last user releases the file.
   */
  checkpoint(options?: { waitMs?: number }): Promise<void>;
  release(): void;
}

interface Shared {
  db: DatabaseSync;
  statements: Map<string, StatementSync>;
  users: number;
  closed: boolean;
  /** Set while a checkpoint is owed: erased text may still be in the WAL or the main file. */
  owed: NodeJS.Timeout | undefined;
}

const open = new Map<string, Shared>();

const busyTimeoutMs = 10_000;
/** How long a checkpoint waits for readers of older snapshots before finishing in the background. */
const checkpointWaitMs = 10_000;
const backgroundRetryMs = 250;
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One attempt at a truncating checkpoint, without waiting: true when it completed. The busy
 * handler is off just around the call (node:sqlite is synchronous, nothing else runs on the
 * connection meanwhile): with it on, a reader of an older snapshot would stall the whole event
 * loop for the busy timeout.
 */
function tryCheckpoint(db: DatabaseSync): boolean {
  db.exec("PRAGMA busy_timeout = 0");
  try {
    const result = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number } | undefined;
    return Number(result?.busy ?? 0) === 0;
  } catch (error) {
    const code = sqliteCode(error);
    if (code === SQLITE_BUSY || code === SQLITE_LOCKED) return false;
    throw error;
  } finally {
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
  }
}

/** Primary SQLite result code of a node:sqlite error (extended codes carry it in the low byte), or undefined. */
function sqliteCode(error: unknown): number | undefined {
  const code = error instanceof Error ? (error as { errcode?: unknown }).errcode : undefined;
  return typeof code === "number" ? code & 0xff : undefined;
}

/** Retries an owed checkpoint until it completes or the file is closed, without keeping the process alive. */
function owe(shared: Shared): void {
  if (shared.owed || shared.closed) return;
  shared.owed = setTimeout(() => {
    shared.owed = undefined;
    if (shared.closed) return;
    let done = false;
    try {
      done = tryCheckpoint(shared.db);
    } catch {
      // A failing checkpoint (e.g. a disk error) is retried like a busy one.
    }
    if (!done) owe(shared);
  }, backgroundRetryMs);
  shared.owed.unref();
}

export async function openSqlite(file: string): Promise<SqliteHandle> {
  const path = file === ":memory:" ? file : resolve(file);
  let shared = open.get(path);
  if (!shared) {
    const [{ DatabaseSync }, sqliteVec] = await Promise.all([
      import("node:sqlite").catch((cause) => {
        throw new ConfigError({
          message: `The embedded store needs the built-in node:sqlite module of Node.js >= 22.13 (this is ${process.version}). Upgrade Node.js, or pass a vectorStore and historyStore.`,
          cause,
        });
      }),
      import("sqlite-vec"),
    ]);
    // Another caller may have opened it while we awaited the imports.
    shared = open.get(path);
    if (!shared) {
      if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
      let db: DatabaseSync;
      try {
        db = new DatabaseSync(path, { allowExtension: true });
        sqliteVec.load(db);
        // The busy timeout comes first: switching a new file to WAL takes a lock that another
        // process opening the same file at the same moment may hold.
        // 8 KiB pages hold three rows with a 512-d vector where 4 KiB pages hold one: a scope's rows
        // are read in a third of the pages (applies to new files only). A 32 MB page cache keeps
        // the scopes in use in memory.
        db.exec(`
          PRAGMA busy_timeout = ${busyTimeoutMs};
          PRAGMA page_size = 8192;
          PRAGMA journal_mode = WAL;
          PRAGMA synchronous = NORMAL;
          PRAGMA cache_size = -32000;
          PRAGMA secure_delete = ON;
          PRAGMA foreign_keys = ON;
        `);
      } catch (cause) {
        throw new ConfigError({
          message: `Cannot open the SQLite database at ${path}: ${(cause as Error).message}. Check that the directory is writable and that Node.js is >= 22.13.`,
          cause,
        });
      }
      shared = { db, statements: new Map(), users: 0, closed: false, owed: undefined };
      if (path !== ":memory:") open.set(path, shared);
    }
  }
  shared.users++;
  const current = shared;
  let released = false;
  return {
    path,
    db: current.db,
    statement(sql) {
      let statement = current.statements.get(sql);
      if (!statement) {
        statement = current.db.prepare(sql);
        current.statements.set(sql, statement);
      }
      return statement;
    },
    transaction(fn) {
      current.db.exec("BEGIN IMMEDIATE");
      try {
        const result = fn();
        current.db.exec("COMMIT");
        return result;
      } catch (error) {
        if (current.db.isTransaction) current.db.exec("ROLLBACK");
        throw error;
      }
    },
    async checkpoint({ waitMs = checkpointWaitMs } = {}) {
      const deadline = Date.now() + waitMs;
      for (let delay = 2; !current.closed; delay = Math.min(delay * 2, 100)) {
        if (guard("checkpoint", () => tryCheckpoint(current.db))) {
          clearTimeout(current.owed);
          current.owed = undefined;
          return;
        }
        const left = deadline - Date.now();
        if (left <= 0) return owe(current);
        await sleep(Math.min(delay, left));
      }
    },
    release() {
      if (released) return;
      released = true;
      current.users--;
      if (current.users === 0) {
        open.delete(path);
        current.closed = true;
        if (current.owed) {
          clearTimeout(current.owed);
          current.owed = undefined;
          try {
            tryCheckpoint(current.db);
          } catch {
            // Closing goes on: SQLite checkpoints again when the last connection to the file closes.
          }
        }
        current.statements.clear();
        current.db.close();
      }
    },
  };
}

/** Wraps a synchronous SQLite operation so failures surface as `StoreError` with the cause. */
export function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof Error && "code" in error && (error as { code?: unknown }).code === "ERR_SQLITE_ERROR") {
      throw new StoreError({ message: `SQLite ${what} failed: ${error.message}`, cause: error });
    }
    throw error;
  }
}
