import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { Worker } from "node:worker_threads";
import { ConfigError, CorruptionError, StoreError } from "../errors.js";
import { loadNodeSqlite } from "./node-sqlite.js";

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
   * last user releases the file. While such a background retry is pending, a call tries once and
   * leaves the rest to it.
   */
  checkpoint(options?: { waitMs?: number }): Promise<void>;
  /**
   * Runs a synchronous SQLite operation, turning its failures into Engram errors: corruption into
   * `CorruptionError` (and from then on every write to the file is refused), anything else into
   * `StoreError`.
   */
  guard<T>(what: string, fn: () => T): T;
  /** Set once the file is known to be damaged: writes are refused, reads go on where they can. */
  readonly damaged: boolean;
  release(): void;
}

interface Shared {
  db: DatabaseSync;
  statements: Map<string, StatementSync>;
  users: number;
  closed: boolean;
  /** Set while a checkpoint is owed: erased text may still be in the WAL or the main file. */
  owed: NodeJS.Timeout | undefined;
  /** The integrity check run in a worker thread when an existing file is opened. */
  check: Worker | undefined;
}

/** Files seen damaged in this process, with what SQLite said: writes to them stay refused until it restarts. */
const damaged = new Map<string, string>();

const open = new Map<string, Shared>();

const busyTimeoutMs = 10_000;
/** How long a checkpoint waits for readers of older snapshots before finishing in the background. */
const checkpointWaitMs = 10_000;
const backgroundRetryMs = 250;
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_READONLY = 8;
const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

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

function isCorruption(error: unknown): boolean {
  const code = sqliteCode(error);
  if (code === SQLITE_CORRUPT || code === SQLITE_NOTADB) return true;
  // sqlite-vec reports its shadow tables disagreeing with each other (a chunk, a row or a blob that
  // a damaged page lost) in words of its own: with Engram's triggers keeping them in step, only damage does that.
  return (
    error instanceof Error &&
    /Internal sqlite-vec error|blob for main\.memory_vectors_|opening blob failed|shadow table/.test(`${error.message} ${detailOf(error)}`)
  );
}

/** The first problems `PRAGMA quick_check` finds, or undefined when it finds none (or cannot run at all). */
function quickCheckProblems(db: DatabaseSync): string | undefined {
  try {
    const problems = db
      .prepare("PRAGMA quick_check(5)")
      .all()
      .map((row) => String(Object.values(row)[0]))
      .filter((line) => line !== "ok");
    return problems.length ? problems.join("; ") : undefined;
  } catch (error) {
    return isCorruption(error) ? detailOf(error) : undefined;
  }
}

/** What SQLite said, without the generic prefix node:sqlite may add. */
function detailOf(error: unknown): string {
  const errstr = error instanceof Error ? (error as { errstr?: unknown }).errstr : undefined;
  return typeof errstr === "string" ? errstr : error instanceof Error ? error.message : String(error);
}

/**
 * Records that `path` is damaged and makes its connection refuse writes (`query_only`: SQLite
 * itself rejects every statement that would write, whichever code path runs it).
 */
function markDamaged(path: string, detail: string, db?: DatabaseSync): void {
  if (path !== ":memory:" && !damaged.has(path)) damaged.set(path, detail);
  try {
    db?.exec("PRAGMA query_only = ON");
  } catch {
    // The connection is unusable anyway; reads through it fail on their own.
  }
}

/**
 * quick_check of an existing file in a worker thread, off the event loop (about 0.4 s for 100,000
 * memories): a file damaged where no read has reached yet is refused writes too. Nothing waits for
 * it; only problems it reports change anything.
 */
const checkSource = `
  const { parentPort, workerData } = require("node:worker_threads");
  const emitWarning = process.emitWarning;
  process.emitWarning = () => {};
  const { DatabaseSync } = require("node:sqlite");
  process.emitWarning = emitWarning;
  let problems = [];
  try {
    const db = new DatabaseSync(workerData, { readOnly: true });
    try {
      db.exec("PRAGMA busy_timeout = 10000");
      problems = db.prepare("PRAGMA quick_check(20)").all().map((row) => String(Object.values(row)[0])).filter((line) => line !== "ok");
    } finally {
      db.close();
    }
  } catch (error) {
    const code = typeof error.errcode === "number" ? error.errcode & 0xff : 0;
    if (code === 11 || code === 26) problems = [error.errstr || error.message];
  }
  parentPort.postMessage(problems);
`;

function startCheck(shared: Shared, path: string): void {
  const worker = new Worker(checkSource, { eval: true, workerData: path });
  worker.unref();
  shared.check = worker;
  worker.once("message", (problems: string[]) => {
    if (problems.length > 0) markDamaged(path, problems.slice(0, 3).join("; "), shared.closed ? undefined : shared.db);
  });
  const done = () => {
    if (shared.check === worker) shared.check = undefined;
  };
  worker.once("exit", done);
  worker.once("error", done);
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

/** How many times opening a file is tried again when another process holds a lock the busy handler does not wait for. */
const OPEN_RETRIES = 5;

export async function openSqlite(file: string): Promise<SqliteHandle> {
  const path = file === ":memory:" ? file : resolve(file);
  let shared = open.get(path);
  if (!shared) {
    const { DatabaseSync } = loadNodeSqlite();
    const sqliteVec = await import("sqlite-vec");
    // Another caller may have opened it while we awaited the imports.
    shared = open.get(path);
    if (!shared) {
      if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
      const existing = path !== ":memory:" && existsSync(path) && statSync(path).size > 0;
      let db: DatabaseSync | undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          db = new DatabaseSync(path, { allowExtension: true });
          sqliteVec.load(db);
          // The busy timeout comes first: switching a new file to WAL takes a lock that another
          // process opening the same file at the same moment may hold.
          // 8 KiB pages hold three rows with a 512-d vector where 4 KiB pages hold one: a scope's rows
          // are read in a third of the pages (applies to new files only). A 32 MB page cache keeps
          // the scopes in use in memory. The first GiB of the file is read through a memory map: a
          // search's reads of rows spread over the file cost no system call each (its pages are the
          // OS's file cache, counted in RSS once touched).
          db.exec(`
            PRAGMA busy_timeout = ${busyTimeoutMs};
            PRAGMA page_size = 8192;
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            PRAGMA cache_size = -32000;
            PRAGMA mmap_size = 1073741824;
            PRAGMA secure_delete = ON;
            PRAGMA foreign_keys = ON;
          `);
          if (damaged.has(path)) db.exec("PRAGMA query_only = ON");
        } catch (cause) {
          try {
            db?.close();
          } catch {
            // Not open: nothing to close.
          }
          if (isCorruption(cause)) {
            markDamaged(path, detailOf(cause));
            throw new CorruptionError({ path, detail: detailOf(cause), cause });
          }
          const code = sqliteCode(cause);
          if ((code === SQLITE_BUSY || code === SQLITE_LOCKED) && attempt < OPEN_RETRIES) {
            // Switching a new file to WAL can meet another process's lock without waiting in the busy
            // handler: a short backoff, then open again.
            await new Promise((wake) => setTimeout(wake, 50 * 2 ** attempt + Math.random() * 50));
            continue;
          }
          if (code === SQLITE_BUSY || code === SQLITE_LOCKED) {
            // Another process held the file past the busy timeout: a passing condition, not a setup mistake.
            throw new StoreError({
              message: `Cannot open the SQLite database at ${path}: ${(cause as Error).message}. Another process kept it locked for longer than the busy timeout (10 s); try again.`,
              cause,
            });
          }
          throw new ConfigError({
            message: `Cannot open the SQLite database at ${path}: ${(cause as Error).message}. Check that the directory is writable and that Node.js is >= 22.13.`,
            cause,
          });
        }
        break;
      }
      // Another caller of this process may have opened the file while this one waited to retry.
      const raced = open.get(path);
      if (raced) {
        db.close();
        shared = raced;
      } else {
        shared = { db, statements: new Map(), users: 0, closed: false, owed: undefined, check: undefined };
        if (path !== ":memory:") open.set(path, shared);
        if (existing && !damaged.has(path)) startCheck(shared, path);
      }
    }
  }
  shared.users++;
  const current = shared;
  let released = false;
  const refuseWrites = () => {
    const detail = damaged.get(path);
    if (detail !== undefined) throw new CorruptionError({ path, detail });
  };
  const guard = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (error) {
      if (isCorruption(error)) {
        markDamaged(path, detailOf(error), current.db);
        throw new CorruptionError({ path, detail: detailOf(error), cause: error });
      }
      if (sqliteCode(error) === SQLITE_READONLY && damaged.has(path)) {
        throw new CorruptionError({ path, detail: damaged.get(path) as string, cause: error });
      }
      if (error instanceof Error && (error as { code?: unknown }).code === "ERR_SQLITE_ERROR") {
        // An error SQLite does not call corruption may still come from a damaged page (the vector
        // index's own errors do): the file is checked before the error is called anything else.
        const problems = path === ":memory:" ? undefined : quickCheckProblems(current.db);
        if (problems !== undefined) {
          markDamaged(path, problems, current.db);
          throw new CorruptionError({ path, detail: problems, cause: error });
        }
        throw new StoreError({ message: `SQLite ${what} failed: ${error.message}`, cause: error });
      }
      throw error;
    }
  };
  return {
    path,
    db: current.db,
    get damaged() {
      return damaged.has(path);
    },
    guard,
    statement(sql) {
      let statement = current.statements.get(sql);
      if (!statement) {
        statement = current.db.prepare(sql);
        current.statements.set(sql, statement);
      }
      return statement;
    },
    transaction(fn) {
      refuseWrites();
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
      // While an earlier checkpoint is still owed, the reader it waited for is likely still there:
      // one try, then the background retries cover this one too (a call waits once, not per step).
      const deadline = current.owed ? Date.now() : Date.now() + waitMs;
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
        void current.check?.terminate();
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

/**
 * Checks the whole file (`PRAGMA integrity_check`: every page, index and the keyword index) on a
 * read-only connection of its own, so it works on a file too damaged to open as a store. Takes
 * about 1.5 s per 100,000 memories and blocks while it runs: for operator tools, not for apps.
 */
export async function checkSqliteFile(file: string): Promise<{ ok: boolean; problems: string[] }> {
  const { DatabaseSync } = loadNodeSqlite();
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(resolve(file), { readOnly: true });
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    const rows = db.prepare("PRAGMA integrity_check(100)").all() as Record<string, unknown>[];
    const problems = rows.map((row) => String(Object.values(row)[0])).filter((line) => line !== "ok");
    return { ok: problems.length === 0, problems };
  } catch (error) {
    if (isCorruption(error)) return { ok: false, problems: [detailOf(error)] };
    throw new StoreError({ message: `Cannot check the SQLite database at ${file}: ${detailOf(error)}`, cause: error });
  } finally {
    db?.close();
  }
}
