import type { SQLInputValue } from "node:sqlite";
import type { SqliteHandle } from "../internal/sqlite.js";
import { lockKeyOf, type Scope, scopeKeys } from "../scope.js";
import { scopeColumns, scopeOfRow } from "../store-kit/scopes.js";
import type { Message, NewOutboxEntry, Outbox, OutboxClaim, OutboxEntry, OutboxStatus } from "./outbox.js";

export const outboxSchema = `
  CREATE TABLE IF NOT EXISTS memory_outbox (
    id TEXT PRIMARY KEY,
    messages TEXT,
    user_id TEXT,
    agent_id TEXT,
    run_id TEXT,
    lock_key TEXT NOT NULL,
    options TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    plan TEXT,
    worker_id TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS memory_outbox_due ON memory_outbox (status, next_attempt_at);
  CREATE INDEX IF NOT EXISTS memory_outbox_by_lock ON memory_outbox (lock_key, status);
  CREATE INDEX IF NOT EXISTS memory_outbox_by_user ON memory_outbox (user_id, agent_id, run_id);
  CREATE INDEX IF NOT EXISTS memory_outbox_by_agent ON memory_outbox (agent_id, run_id);
  CREATE INDEX IF NOT EXISTS memory_outbox_by_run ON memory_outbox (run_id);
`;

export type Row = Record<string, SQLInputValue>;

/** Scope conditions (AND of the given ids; none given = every scope) and their parameters. */
export function scopeWhere(scope: Scope | undefined): { sql: string; params: string[] } {
  const parts: string[] = [];
  const params: string[] = [];
  for (const key of scopeKeys) {
    const value = scope?.[key];
    if (value === undefined) continue;
    parts.push(`${scopeColumns[key]} = ?`);
    params.push(value);
  }
  return { sql: parts.length ? parts.join(" AND ") : "1 = 1", params };
}

function toOutboxEntry(row: Row): OutboxEntry {
  return {
    id: row.id as string,
    messages: row.messages == null ? [] : (JSON.parse(row.messages as string) as Message[]),
    ...scopeOfRow(row),
    options: JSON.parse(row.options as string),
    status: row.status as OutboxStatus,
    attempts: Number(row.attempts),
    ...(row.last_error != null && { lastError: row.last_error as string }),
    ...(row.plan != null && { plan: row.plan as string }),
    createdAt: row.created_at as string,
    nextAttemptAt: new Date(Number(row.next_attempt_at)).toISOString(),
  };
}

/**
 * The outbox half of `sqliteHistory`: the `memory_outbox` table of the file, on the connection its
 * subclass opens (with `outboxSchema` applied). Claims are single atomic statements, so processes
 * sharing the file never claim one entry twice.
 */
export abstract class SqliteOutbox implements Outbox {
  /** @param now the clock of leases and retry times (tests pass a fake one). */
  constructor(protected readonly now: () => number = Date.now) {}

  protected abstract open(): Promise<SqliteHandle>;
  abstract init(): Promise<void>;
  abstract reset(): Promise<void>;
  abstract close(): Promise<void>;

  async enqueue({ id, messages, scope, options }: NewOutboxEntry) {
    const handle = await this.open();
    return handle.guard("enqueue", () => {
      const result = handle
        .statement(`
          INSERT INTO memory_outbox (id, messages, user_id, agent_id, run_id, lock_key, options, status, next_attempt_at, created_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (id) DO NOTHING`)
        .run(
          id,
          JSON.stringify(messages),
          scope.userId ?? null,
          scope.agentId ?? null,
          scope.runId ?? null,
          lockKeyOf(scope),
          JSON.stringify(options),
          this.now(),
          new Date(this.now()).toISOString(),
        );
      return Number(result.changes) === 1;
    });
  }

  async claim({ workerId, limit, leaseMs, perKey = 1 }: OutboxClaim): Promise<OutboxEntry[]> {
    const handle = await this.open();
    const now = this.now();
    return handle.guard("claim", () => {
      const rows = handle
        .statement(`
          WITH due AS (
            SELECT id, lock_key, created_at, rowid AS position,
              ROW_NUMBER() OVER (PARTITION BY lock_key ORDER BY created_at, rowid) AS place
            FROM memory_outbox o
            WHERE ((status = 'pending' AND next_attempt_at <= :now) OR (status = 'processing' AND lease_until < :now))
              AND NOT EXISTS (
                SELECT 1 FROM memory_outbox busy
                WHERE busy.lock_key = o.lock_key AND busy.status = 'processing' AND busy.lease_until >= :now)
          ),
          keys AS (SELECT lock_key FROM due WHERE place = 1 ORDER BY created_at, position LIMIT :limit)
          UPDATE memory_outbox SET
            attempts = attempts + (CASE WHEN status = 'processing' THEN 1 ELSE 0 END),
            last_error = (CASE WHEN status = 'processing' THEN 'the worker processing it stopped before finishing' ELSE last_error END),
            status = 'processing', worker_id = :worker, lease_until = :lease
          WHERE id IN (SELECT id FROM due WHERE place <= :perKey AND lock_key IN (SELECT lock_key FROM keys))
          RETURNING *, rowid AS position`)
        .all({ worker: workerId, lease: now + leaseMs, now, limit, perKey: Math.max(1, Math.floor(perKey)) }) as Row[];
      return rows
        .sort((a, b) => (a.created_at as string).localeCompare(b.created_at as string) || Number(a.position) - Number(b.position))
        .map(toOutboxEntry);
    });
  }

  async #update(sql: string, ...params: SQLInputValue[]): Promise<boolean> {
    const handle = await this.open();
    return handle.guard("outbox update", () => Number(handle.statement(sql).run(...params).changes) === 1);
  }

  renew(id: string, workerId: string, leaseMs: number): Promise<boolean> {
    return this.#update(
      "UPDATE memory_outbox SET lease_until = ? WHERE id = ? AND worker_id = ? AND status = 'processing'",
      this.now() + leaseMs,
      id,
      workerId,
    );
  }

  savePlan(id: string, workerId: string, plan: string): Promise<boolean> {
    return this.#update(
      "UPDATE memory_outbox SET plan = ? WHERE id = ? AND worker_id = ? AND status = 'processing' AND plan IS NULL",
      plan,
      id,
      workerId,
    );
  }

  async discardPlan(id: string, workerId: string): Promise<boolean> {
    const discarded = await this.#update(
      "UPDATE memory_outbox SET plan = NULL WHERE id = ? AND worker_id = ? AND status = 'processing'",
      id,
      workerId,
    );
    // A discarded plan may hold the text of a memory purged since it was saved: not in the log either.
    if (discarded) {
      const handle = await this.open();
      await handle.checkpoint();
    }
    return discarded;
  }

  complete(id: string, workerId: string): Promise<boolean> {
    return this.#update(
      `UPDATE memory_outbox SET status = 'done', messages = NULL, plan = NULL, options = '{}', last_error = NULL
       WHERE id = ? AND worker_id = ? AND status = 'processing'`,
      id,
      workerId,
    );
  }

  fail(id: string, workerId: string, { error, retryAt }: { error: string; retryAt?: Date }): Promise<boolean> {
    return this.#update(
      `UPDATE memory_outbox SET status = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ?, lease_until = 0
       WHERE id = ? AND worker_id = ? AND status = 'processing'`,
      retryAt ? "pending" : "failed",
      error,
      retryAt ? retryAt.getTime() : this.now(),
      id,
      workerId,
    );
  }

  async statuses(ids: readonly string[]): Promise<Map<string, OutboxStatus>> {
    const handle = await this.open();
    const statuses = new Map<string, OutboxStatus>();
    handle.guard("outbox status", () => {
      const statement = handle.statement("SELECT status FROM memory_outbox WHERE id = ?");
      for (const id of ids) {
        const row = statement.get(id) as Row | undefined;
        if (row) statuses.set(id, row.status as OutboxStatus);
      }
    });
    return statuses;
  }

  async pending(scope?: Scope): Promise<OutboxEntry[]> {
    const handle = await this.open();
    const condition = scopeWhere(scope);
    return handle.guard("outbox list", () =>
      (
        handle
          .statement(`SELECT * FROM memory_outbox WHERE status != 'done' AND ${condition.sql} ORDER BY created_at, rowid`)
          .all(...condition.params) as Row[]
      ).map(toOutboxEntry),
    );
  }

  async retryFailed(scope?: Scope): Promise<number> {
    const handle = await this.open();
    const condition = scopeWhere(scope);
    return handle.guard("outbox retry", () =>
      Number(
        handle
          .statement(`UPDATE memory_outbox SET status = 'pending', next_attempt_at = ? WHERE status = 'failed' AND ${condition.sql}`)
          .run(this.now(), ...condition.params).changes,
      ),
    );
  }

  async purgePending({ scope, containing }: { scope: Scope; containing?: string }): Promise<number> {
    const handle = await this.open();
    const condition = scopeWhere(scope);
    const removed = handle.guard("outbox purge", () =>
      containing === undefined
        ? // Forgetting a whole scope also drops the traces of turns already done.
          handle.statement(`DELETE FROM memory_outbox WHERE ${condition.sql}`).run(...condition.params)
        : handle
            .statement(
              // Match message contents only: the JSON around them (keys, roles) is not the user's text.
              `DELETE FROM memory_outbox WHERE status != 'done' AND ${condition.sql}
                 AND EXISTS (SELECT 1 FROM json_each(messages) WHERE instr(json_extract(value, '$.content'), ?) > 0)`,
            )
            .run(...condition.params, containing),
    );
    if (containing !== undefined) {
      // Plans are JSON: the text appears in them escaped as JSON escapes it.
      handle.guard("outbox purge", () =>
        handle
          .statement(`UPDATE memory_outbox SET plan = NULL WHERE plan IS NOT NULL AND ${condition.sql} AND instr(plan, ?) > 0`)
          .run(...condition.params, JSON.stringify(containing).slice(1, -1)),
      );
    }
    await handle.checkpoint();
    return Number(removed.changes);
  }

  async pruneDone(olderThan: Date): Promise<number> {
    const handle = await this.open();
    return handle.guard("outbox prune", () =>
      Number(handle.statement("DELETE FROM memory_outbox WHERE status = 'done' AND created_at < ?").run(olderThan.toISOString()).changes),
    );
  }
}
