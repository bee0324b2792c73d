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
  /** Moves WAL content into the main file and empties the WAL (after erasing text). */
  checkpoint(): void;
  release(): void;
}

interface Shared {
  db: DatabaseSync;
  statements: Map<string, StatementSync>;
  users: number;
}

const open = new Map<string, Shared>();

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
          PRAGMA busy_timeout = 10000;
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
      shared = { db, statements: new Map(), users: 0 };
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
    checkpoint() {
      current.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    },
    release() {
      if (released) return;
      released = true;
      current.users--;
      if (current.users === 0) {
        open.delete(path);
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
