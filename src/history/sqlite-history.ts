import { openSqlite, type SqliteHandle } from "../internal/sqlite.js";
import { type HistoryPart, sqliteParts, sqlitePath } from "../internal/sqlite-joint.js";
import type { Scope } from "../scope.js";
import { scopeOfRow } from "../store-kit/scopes.js";
import type { HistoryEntry, HistoryEventEntry, HistoryLog, HistoryScannable, HistoryScopeEnumerable } from "./history-log.js";
import type { Outbox } from "./outbox.js";
import { outboxSchema, type Row, SqliteOutbox, scopeWhere } from "./sqlite-outbox.js";

export interface SqliteHistoryOptions {
  /** Path of the database file (the default store shares it); `":memory:"` for a throwaway one. */
  path: string;
  /** The clock of leases and retry times, in epoch milliseconds (tests pass a fake one). @default Date.now */
  now?: () => number;
}

const schema = `
  CREATE TABLE IF NOT EXISTS memory_history (
    id TEXT PRIMARY KEY,
    memory_id TEXT NOT NULL,
    event TEXT NOT NULL,
    previous_value TEXT,
    new_value TEXT,
    user_id TEXT,
    agent_id TEXT,
    run_id TEXT,
    created_at TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS memory_history_by_memory ON memory_history (memory_id, created_at);
  CREATE INDEX IF NOT EXISTS memory_history_by_user ON memory_history (user_id, agent_id, run_id);
  CREATE INDEX IF NOT EXISTS memory_history_by_agent ON memory_history (agent_id, run_id);
  CREATE INDEX IF NOT EXISTS memory_history_by_run ON memory_history (run_id);
  -- Memories purged by id: entries appended for them later are kept without text.
  CREATE TABLE IF NOT EXISTS memory_history_erased (memory_id TEXT PRIMARY KEY);
  ${outboxSchema}
`;

function toHistoryEntry(row: Row): HistoryEntry {
  return {
    id: row.id as string,
    memoryId: row.memory_id as string,
    event: row.event as HistoryEntry["event"],
    previousValue: (row.previous_value as string | null) ?? null,
    newValue: (row.new_value as string | null) ?? null,
    ...scopeOfRow(row),
    createdAt: row.created_at as string,
  };
}

/** The change log of the file; the outbox half is `SqliteOutbox`, on the same connection. */
class SqliteHistory extends SqliteOutbox implements HistoryLog, HistoryScopeEnumerable, HistoryScannable {
  #handle: Promise<SqliteHandle> | undefined;

  constructor(
    private readonly path: string,
    now?: () => number,
  ) {
    super(now);
  }

  protected override open(): Promise<SqliteHandle> {
    if (this.#handle) return this.#handle;
    const opening = openSqlite(this.path).then((handle) => {
      try {
        handle.guard("schema creation", () => handle.db.exec(schema));
      } catch (error) {
        handle.release();
        throw error;
      }
      return handle;
    });
    this.#handle = opening;
    // A failed open is tried again by the next call.
    opening.catch(() => {
      if (this.#handle === opening) this.#handle = undefined;
    });
    return opening;
  }

  async init(): Promise<void> {
    await this.open();
  }

  async append(entries: readonly HistoryEntry[]): Promise<void> {
    const handle = await this.open();
    handle.guard("history append", () => handle.transaction(() => this.#appendIn(handle, entries)));
  }

  get [sqliteParts](): HistoryPart {
    return { path: sqlitePath(this.path), open: () => this.open(), appendIn: (handle, entries) => this.#appendIn(handle, entries) };
  }

  #appendIn(handle: SqliteHandle, entries: readonly HistoryEntry[]): void {
    const insert = handle.statement(`
      INSERT INTO memory_history (id, memory_id, event, previous_value, new_value, user_id, agent_id, run_id, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`);
    const erased = handle.statement("SELECT 1 AS erased FROM memory_history_erased WHERE memory_id = ?");
    for (const entry of entries) {
      const textless = erased.get(entry.memoryId) !== undefined;
      insert.run(
        entry.id,
        entry.memoryId,
        entry.event,
        textless ? null : entry.previousValue,
        textless ? null : entry.newValue,
        entry.userId ?? null,
        entry.agentId ?? null,
        entry.runId ?? null,
        entry.createdAt,
      );
    }
  }

  async list(memoryId: string, scope: Scope): Promise<HistoryEntry[]> {
    const handle = await this.open();
    const condition = scopeWhere(scope);
    return handle.guard("history list", () =>
      (
        handle
          .statement(`SELECT * FROM memory_history WHERE memory_id = ? AND ${condition.sql} ORDER BY created_at, rowid`)
          .all(memoryId, ...condition.params) as Row[]
      ).map(toHistoryEntry),
    );
  }

  async entryScopes(prefix: string, scope: Scope): Promise<Scope[]> {
    const handle = await this.open();
    const condition = scopeWhere(scope);
    return handle.guard("history entryScopes", () =>
      (
        handle
          .statement(
            `SELECT DISTINCT user_id, agent_id, run_id FROM memory_history WHERE substr(memory_id, 1, length(?)) = ? AND ${condition.sql}`,
          )
          .all(prefix, prefix, ...condition.params) as Row[]
      ).map(scopeOfRow),
    );
  }

  async events({ scope, limit }: { scope?: Scope; limit: number }): Promise<HistoryEventEntry[]> {
    const handle = await this.open();
    const condition = scopeWhere(scope);
    return handle.guard("history events", () =>
      (
        handle
          .statement(
            `SELECT memory_id, event, created_at, user_id, agent_id, run_id FROM memory_history WHERE ${condition.sql} ORDER BY created_at DESC, rowid DESC LIMIT ?`,
          )
          .all(...condition.params, limit) as Row[]
      )
        .reverse()
        .map((row) => ({
          memoryId: row.memory_id as string,
          event: row.event as HistoryEntry["event"],
          ...scopeOfRow(row),
          createdAt: row.created_at as string,
        })),
    );
  }

  async purge(target: { memoryIds: readonly string[] } | { scope: Scope }): Promise<void> {
    const handle = await this.open();
    handle.guard("history purge", () => {
      handle.transaction(() => {
        if ("memoryIds" in target) {
          const erase = handle.statement("UPDATE memory_history SET previous_value = NULL, new_value = NULL WHERE memory_id = ?");
          const remember = handle.statement("INSERT OR IGNORE INTO memory_history_erased (memory_id) VALUES (?)");
          for (const id of target.memoryIds) {
            erase.run(id);
            remember.run(id);
          }
        } else {
          const condition = scopeWhere(target.scope);
          handle
            .statement(`UPDATE memory_history SET previous_value = NULL, new_value = NULL WHERE ${condition.sql}`)
            .run(...condition.params);
        }
      });
    });
    await handle.checkpoint();
  }

  async reset(): Promise<void> {
    const handle = await this.open();
    handle.guard("reset", () => {
      handle.transaction(() => {
        handle.statement("DELETE FROM memory_history").run();
        handle.statement("DELETE FROM memory_history_erased").run();
        handle.statement("DELETE FROM memory_outbox").run();
      });
    });
    await handle.checkpoint();
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle) (await handle.catch(() => undefined))?.release();
  }
}

/**
 * History and write-behind outbox in a SQLite file (the embedded default; it shares the file of
 * `sqliteStore`). Safe for several processes on one machine: claims are single atomic statements.
 */
export function sqliteHistory({ path, now }: SqliteHistoryOptions): HistoryLog & HistoryScopeEnumerable & Outbox {
  return new SqliteHistory(path, now);
}
