import { resolve } from "node:path";
import type { HistoryEntry, HistoryLog } from "../history/history-log.js";
import type { VectorStore, WriteBatch } from "../stores/vector-store.js";
import type { SqliteHandle } from "./sqlite.js";

/**
 * The SQLite store and history of one file write a change and its history entries in ONE
 * transaction, so that a crash (or a torn write-ahead log) can never keep one without the other.
 * Each exposes its half under this symbol; `jointWriter` pairs them when they share a file.
 */
export const sqliteParts = Symbol.for("engram.sqliteParts");

interface Part {
  /** The database file, resolved (":memory:" files are never shared). */
  readonly path: string;
  open(): Promise<SqliteHandle>;
}

export interface StorePart extends Part {
  /** Checks and applies a batch inside the caller's transaction. */
  writeIn(handle: SqliteHandle, batch: WriteBatch): void;
  /** What follows the transaction (erasing from the write-ahead log). */
  afterWrite(handle: SqliteHandle, batch: WriteBatch): Promise<void>;
}

export interface HistoryPart extends Part {
  /** Appends entries inside the caller's transaction. */
  appendIn(handle: SqliteHandle, entries: readonly HistoryEntry[]): void;
}

export const sqlitePath = (file: string) => (file === ":memory:" ? file : resolve(file));

/** A writer of a batch and its history in one transaction, when the store and history share one SQLite file. */
export function jointWriter(
  store: VectorStore,
  history: HistoryLog,
): ((batch: WriteBatch, entries: readonly HistoryEntry[]) => Promise<void>) | undefined {
  const storePart = (store as unknown as { [sqliteParts]?: StorePart })[sqliteParts];
  const historyPart = (history as unknown as { [sqliteParts]?: HistoryPart })[sqliteParts];
  if (!storePart || !historyPart || storePart.path !== historyPart.path || storePart.path === ":memory:") return undefined;
  return async (batch, entries) => {
    const [handle] = await Promise.all([storePart.open(), historyPart.open()]);
    handle.guard("write", () =>
      handle.transaction(() => {
        storePart.writeIn(handle, batch);
        historyPart.appendIn(handle, entries);
      }),
    );
    await storePart.afterWrite(handle, batch);
  };
}
