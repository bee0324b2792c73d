import { z } from "zod";
import {
  connectionOptions,
  exactlyOneConnection,
  exactlyOneConnectionMessage,
  LazyPool,
  type PostgresClient,
  type PostgresPool,
  tableNameMessage,
  tableNamePattern,
} from "../internal/postgres.js";
import { lockKeyOf, type Scope, scopeKeys } from "../scope.js";
import { parseConfig } from "../validation.js";
import type { HistoryEntry, HistoryStore, Message, NewOutboxEntry, OutboxEntry, OutboxStatus } from "./history-store.js";

export type { PostgresPool } from "../internal/postgres.js";

export interface PostgresHistoryOptions {
  /** A postgres:// URL; the store opens (and closes) its own pool. Give this or `pool`. */
  connectionString?: string;
  /** A pool your app owns (`new pg.Pool(…)`); the store never ends it. Give this or `connectionString`. */
  pool?: PostgresPool;
  /** Prefix of the two tables, `<prefix>history` and `<prefix>outbox`. @default "engram_" */
  tablePrefix?: string;
}

const optionsSchema = z
  .strictObject({
    ...connectionOptions,
    tablePrefix: z.string().regex(tableNamePattern, tableNameMessage.replace("table", "tablePrefix")).optional(),
  })
  .refine(exactlyOneConnection, exactlyOneConnectionMessage);

const columns = { userId: "user_id", agentId: "agent_id", runId: "run_id" } as const;

/** Namespace of our advisory locks (the first key of the two-key form), so they never meet an app's own. */
const LOCK_NAMESPACE = 0x656e6772; // "engr"
/** Namespace of the per-memory locks that order history appends against purges. */
const MEMORY_LOCK_NAMESPACE = 0x656e6768; // "engh"

interface HistoryRow {
  id: string;
  memory_id: string;
  event: HistoryEntry["event"];
  previous_value: string | null;
  new_value: string | null;
  user_id: string | null;
  agent_id: string | null;
  run_id: string | null;
  created_at: string;
}

interface OutboxRow {
  id: string;
  messages: string | null;
  user_id: string | null;
  agent_id: string | null;
  run_id: string | null;
  options: string;
  status: OutboxStatus;
  attempts: number;
  last_error: string | null;
  plan: string | null;
  created_at: Date;
  next_attempt_at: Date;
}

function withScope<T extends object>(target: T, row: { user_id: string | null; agent_id: string | null; run_id: string | null }): T {
  const scoped = target as Record<string, unknown>;
  if (row.user_id != null) scoped.userId = row.user_id;
  if (row.agent_id != null) scoped.agentId = row.agent_id;
  if (row.run_id != null) scoped.runId = row.run_id;
  return target;
}

function toHistoryEntry(row: HistoryRow): HistoryEntry {
  return withScope(
    {
      id: row.id,
      memoryId: row.memory_id,
      event: row.event,
      previousValue: row.previous_value,
      newValue: row.new_value,
      createdAt: row.created_at,
    },
    row,
  );
}

function toOutboxEntry(row: OutboxRow): OutboxEntry {
  const entry: Record<string, unknown> = {
    id: row.id,
    messages: row.messages == null ? [] : (JSON.parse(row.messages) as Message[]),
    options: JSON.parse(row.options),
    status: row.status,
    attempts: row.attempts,
    createdAt: row.created_at.toISOString(),
    nextAttemptAt: row.next_attempt_at.toISOString(),
  };
  if (row.last_error != null) entry.lastError = row.last_error;
  if (row.plan != null) entry.plan = row.plan;
  return withScope(entry as unknown as OutboxEntry, row);
}

/** Scope conditions (AND of the given ids; none given = every scope), appending values to `params`. */
function scopeWhere(scope: Scope | undefined, params: unknown[], alias = ""): string {
  const parts: string[] = [];
  for (const key of scopeKeys) {
    const value = scope?.[key];
    if (value === undefined) continue;
    params.push(value);
    parts.push(`${alias}${columns[key]} = $${params.length}`);
  }
  return parts.length ? parts.join(" AND ") : "TRUE";
}

class PostgresHistory implements HistoryStore {
  readonly #pool: LazyPool;
  readonly #history: string;
  readonly #outbox: string;
  readonly #erased: string;
  #schema: Promise<void> | undefined;

  constructor(options: z.infer<typeof optionsSchema>) {
    this.#pool = new LazyPool(options);
    const prefix = options.tablePrefix ?? "engram_";
    this.#history = `${prefix}history`;
    this.#outbox = `${prefix}outbox`;
    this.#erased = `${prefix}history_erased`;
  }

  #ready(): Promise<void> {
    this.#schema ??= this.#pool
      .transaction("schema creation", async (client) => {
        const h = this.#history;
        const o = this.#outbox;
        await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`engram schema ${h} ${o}`]);
        await client.query(`
          CREATE TABLE IF NOT EXISTS ${h} (
            id text PRIMARY KEY,
            seq bigserial,
            memory_id text NOT NULL,
            event text NOT NULL,
            previous_value text,
            new_value text,
            user_id text,
            agent_id text,
            run_id text,
            created_at text COLLATE "C" NOT NULL
          )`);
        await client.query(`CREATE INDEX IF NOT EXISTS ${h}_by_memory ON ${h} (memory_id, created_at, seq)`);
        await client.query(`CREATE INDEX IF NOT EXISTS ${h}_by_user ON ${h} (user_id, agent_id, run_id)`);
        await client.query(`CREATE INDEX IF NOT EXISTS ${h}_by_agent ON ${h} (agent_id, run_id)`);
        await client.query(`CREATE INDEX IF NOT EXISTS ${h}_by_run ON ${h} (run_id)`);
        // Memories purged by id: entries appended for them later are kept without text.
        await client.query(`CREATE TABLE IF NOT EXISTS ${this.#erased} (memory_id text PRIMARY KEY)`);
        await client.query(`
          CREATE TABLE IF NOT EXISTS ${o} (
            id text PRIMARY KEY,
            seq bigserial,
            messages text,
            user_id text,
            agent_id text,
            run_id text,
            lock_key text NOT NULL,
            options text NOT NULL,
            status text NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            last_error text,
            plan text,
            worker_id text,
            lease_until timestamptz,
            next_attempt_at timestamptz NOT NULL,
            created_at timestamptz NOT NULL
          )`);
        await client.query(`CREATE INDEX IF NOT EXISTS ${o}_due ON ${o} (status, next_attempt_at)`);
        await client.query(`CREATE INDEX IF NOT EXISTS ${o}_by_lock ON ${o} (lock_key, status)`);
        await client.query(`CREATE INDEX IF NOT EXISTS ${o}_by_user ON ${o} (user_id, agent_id, run_id)`);
        await client.query(`CREATE INDEX IF NOT EXISTS ${o}_by_agent ON ${o} (agent_id, run_id)`);
        await client.query(`CREATE INDEX IF NOT EXISTS ${o}_by_run ON ${o} (run_id)`);
      })
      .catch((error) => {
        this.#schema = undefined;
        throw error;
      });
    return this.#schema;
  }

  async init(): Promise<void> {
    await this.#ready();
  }

  async append(entries: readonly HistoryEntry[]): Promise<void> {
    await this.#ready();
    if (entries.length === 0) return;
    await this.#pool.transaction("history append", async (client) => {
      // Shared per-memory locks: a purge of one of these memories (exclusive lock) either commits
      // before this insert, which then sees it erased, or waits until the entries are in and erases them.
      await this.#lockMemories(
        client,
        entries.map((entry) => entry.memoryId),
        "shared",
      );
      await client.query(
        `INSERT INTO ${this.#history} (id, memory_id, event, previous_value, new_value, user_id, agent_id, run_id, created_at)
         SELECT entry.id, entry.memory_id, entry.event,
           CASE WHEN erased.memory_id IS NULL THEN entry.previous_value END,
           CASE WHEN erased.memory_id IS NULL THEN entry.new_value END,
           entry.user_id, entry.agent_id, entry.run_id, entry.created_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
           WITH ORDINALITY AS entry(id, memory_id, event, previous_value, new_value, user_id, agent_id, run_id, created_at, position)
         LEFT JOIN ${this.#erased} erased ON erased.memory_id = entry.memory_id
         ORDER BY entry.position
         ON CONFLICT (id) DO NOTHING`,
        [
          entries.map((e) => e.id),
          entries.map((e) => e.memoryId),
          entries.map((e) => e.event),
          entries.map((e) => e.previousValue),
          entries.map((e) => e.newValue),
          entries.map((e) => e.userId ?? null),
          entries.map((e) => e.agentId ?? null),
          entries.map((e) => e.runId ?? null),
          entries.map((e) => e.createdAt),
        ],
      );
    });
  }

  /** Takes the per-memory advisory locks of `memoryIds` for the transaction, in one order (no deadlocks). */
  async #lockMemories(client: PostgresClient, memoryIds: readonly string[], mode: "shared" | "exclusive"): Promise<void> {
    const lock = mode === "shared" ? "pg_advisory_xact_lock_shared" : "pg_advisory_xact_lock";
    await client.query(
      `SELECT ${lock}(${MEMORY_LOCK_NAMESPACE}, key) FROM (SELECT DISTINCT hashtext(id) AS key FROM unnest($1::text[]) AS id) keys ORDER BY key`,
      [[...new Set(memoryIds)]],
    );
  }

  async list(memoryId: string, scope: Scope): Promise<HistoryEntry[]> {
    await this.#ready();
    const params: unknown[] = [memoryId];
    const condition = scopeWhere(scope, params);
    const { rows } = await this.#pool.query<HistoryRow>(
      "history list",
      `SELECT * FROM ${this.#history} WHERE memory_id = $1 AND ${condition} ORDER BY created_at, seq`,
      params,
    );
    return rows.map(toHistoryEntry);
  }

  async purge(target: { memoryIds: readonly string[] } | { scope: Scope }): Promise<void> {
    await this.#ready();
    const erase = (condition: string) =>
      `UPDATE ${this.#history} SET previous_value = NULL, new_value = NULL
       WHERE ${condition} AND (previous_value IS NOT NULL OR new_value IS NOT NULL)`;
    let erased: number;
    if ("memoryIds" in target) {
      const ids = [...target.memoryIds];
      erased = await this.#pool.transaction("history purge", async (client) => {
        await this.#lockMemories(client, ids, "exclusive");
        await client.query(`INSERT INTO ${this.#erased} (memory_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, [ids]);
        return (await client.query(erase("memory_id = ANY($1::text[])"), [ids])).rowCount ?? 0;
      });
    } else {
      const params: unknown[] = [];
      erased = (await this.#pool.query("history purge", erase(scopeWhere(target.scope, params)), params)).rowCount;
    }
    if (erased > 0) await this.#vacuum(this.#history);
  }

  async enqueue({ id, messages, scope, options }: NewOutboxEntry) {
    await this.#ready();
    const { rowCount } = await this.#pool.query(
      "enqueue",
      `INSERT INTO ${this.#outbox} (id, messages, user_id, agent_id, run_id, lock_key, options, status, next_attempt_at, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', clock_timestamp(), clock_timestamp()) ON CONFLICT (id) DO NOTHING`,
      [
        id,
        JSON.stringify(messages),
        scope.userId ?? null,
        scope.agentId ?? null,
        scope.runId ?? null,
        lockKeyOf(scope),
        JSON.stringify(options),
      ],
    );
    return rowCount === 1;
  }

  async claim({ workerId, limit, leaseMs }: { workerId: string; limit: number; leaseMs: number }): Promise<OutboxEntry[]> {
    await this.#ready();
    const claimed: OutboxEntry[] = [];
    // A round can lose candidates to workers claiming at the same moment; a few more rounds take
    // what those workers left.
    for (let round = 0; round < 3 && claimed.length < limit; round++) {
      const { entries, contested } = await this.#claimRound(workerId, limit - claimed.length, leaseMs);
      claimed.push(...entries);
      if (!contested) break;
    }
    return claimed.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async #claimRound(workerId: string, limit: number, leaseMs: number): Promise<{ entries: OutboxEntry[]; contested: boolean }> {
    const o = this.#outbox;
    const due = `((status = 'pending' AND next_attempt_at <= now()) OR (status = 'processing' AND lease_until < now()))`;
    const busy = (alias: string) =>
      `EXISTS (SELECT 1 FROM ${o} busy WHERE busy.lock_key = ${alias}.lock_key AND busy.id <> ${alias}.id
         AND busy.status = 'processing' AND busy.lease_until >= now())`;
    return this.#pool.transaction("claim", async (client) => {
      // 1. The oldest due entry of each lock key with no live lease, row-locked; rows another
      //    worker is claiming right now are skipped.
      const { rows: candidates } = await client.query(
        `SELECT id, lock_key FROM ${o} WHERE id IN (
           SELECT DISTINCT ON (lock_key) id FROM ${o} c
           WHERE ${due} AND NOT ${busy("c")}
           ORDER BY lock_key, created_at, seq)
         ORDER BY created_at, seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      if (candidates.length === 0) return { entries: [], contested: false };
      // 2. One worker at a time per lock key, across processes: a transaction-scoped advisory lock.
      const { rows: locked } = await client.query(
        `SELECT key FROM unnest($1::text[]) AS key WHERE pg_try_advisory_xact_lock(${LOCK_NAMESPACE}, hashtext(key))`,
        [candidates.map((row: { lock_key: string }) => row.lock_key)],
      );
      const keys = new Set(locked.map((row: { key: string }) => row.key));
      const ids = candidates.filter((row: { lock_key: string }) => keys.has(row.lock_key)).map((row: { id: string }) => row.id);
      if (ids.length === 0) return { entries: [], contested: true };
      // 3. Checked again with a fresh snapshot, now that the key locks are held: a worker that
      //    claimed the same key after step 1 has committed by now and is seen here.
      const { rows } = await client.query(
        `UPDATE ${o} AS entry SET
           attempts = attempts + (CASE WHEN status = 'processing' THEN 1 ELSE 0 END),
           last_error = (CASE WHEN status = 'processing' THEN 'the worker processing it stopped before finishing' ELSE last_error END),
           status = 'processing', worker_id = $2, lease_until = now() + $3 * interval '1 millisecond'
         WHERE id = ANY($1::text[]) AND ${due} AND NOT ${busy("entry")}
         RETURNING *`,
        [ids, workerId, leaseMs],
      );
      const entries = (rows as (OutboxRow & { seq: string })[])
        .sort((a, b) => a.created_at.getTime() - b.created_at.getTime() || Number(a.seq) - Number(b.seq))
        .map(toOutboxEntry);
      return { entries, contested: entries.length < candidates.length };
    });
  }

  async #update(what: string, sql: string, params: unknown[]): Promise<boolean> {
    await this.#ready();
    const { rowCount } = await this.#pool.query(what, sql, params);
    return rowCount === 1;
  }

  renew(id: string, workerId: string, leaseMs: number): Promise<boolean> {
    return this.#update(
      "outbox renew",
      `UPDATE ${this.#outbox} SET lease_until = now() + $3 * interval '1 millisecond'
       WHERE id = $1 AND worker_id = $2 AND status = 'processing'`,
      [id, workerId, leaseMs],
    );
  }

  savePlan(id: string, workerId: string, plan: string): Promise<boolean> {
    return this.#update(
      "outbox plan",
      `UPDATE ${this.#outbox} SET plan = $3 WHERE id = $1 AND worker_id = $2 AND status = 'processing' AND plan IS NULL`,
      [id, workerId, plan],
    );
  }

  async discardPlan(id: string, workerId: string): Promise<boolean> {
    const discarded = await this.#update(
      "outbox plan",
      `UPDATE ${this.#outbox} SET plan = NULL WHERE id = $1 AND worker_id = $2 AND status = 'processing'`,
      [id, workerId],
    );
    // A discarded plan may hold the text of a memory purged since it was saved: no dead row keeps it.
    if (discarded) await this.#vacuum(this.#outbox);
    return discarded;
  }

  complete(id: string, workerId: string): Promise<boolean> {
    return this.#update(
      "outbox complete",
      `UPDATE ${this.#outbox} SET status = 'done', messages = NULL, plan = NULL, options = '{}', last_error = NULL, lease_until = NULL
       WHERE id = $1 AND worker_id = $2 AND status = 'processing'`,
      [id, workerId],
    );
  }

  fail(id: string, workerId: string, { error, retryAt }: { error: string; retryAt?: Date }): Promise<boolean> {
    return this.#update(
      "outbox fail",
      `UPDATE ${this.#outbox} SET status = $3, attempts = attempts + 1, last_error = $4,
         next_attempt_at = COALESCE($5::timestamptz, now()), lease_until = NULL
       WHERE id = $1 AND worker_id = $2 AND status = 'processing'`,
      [id, workerId, retryAt ? "pending" : "failed", error, retryAt ?? null],
    );
  }

  async statuses(ids: readonly string[]): Promise<Map<string, OutboxStatus>> {
    await this.#ready();
    const { rows } = await this.#pool.query<{ id: string; status: OutboxStatus }>(
      "outbox status",
      `SELECT id, status FROM ${this.#outbox} WHERE id = ANY($1::text[])`,
      [[...ids]],
    );
    return new Map(rows.map((row) => [row.id, row.status]));
  }

  async pending(scope?: Scope): Promise<OutboxEntry[]> {
    await this.#ready();
    const params: unknown[] = [];
    const condition = scopeWhere(scope, params);
    const { rows } = await this.#pool.query<OutboxRow>(
      "outbox list",
      `SELECT * FROM ${this.#outbox} WHERE status <> 'done' AND ${condition} ORDER BY created_at, seq`,
      params,
    );
    return rows.map(toOutboxEntry);
  }

  async retryFailed(scope?: Scope): Promise<number> {
    await this.#ready();
    const params: unknown[] = [];
    const condition = scopeWhere(scope, params);
    const { rowCount } = await this.#pool.query(
      "outbox retry",
      `UPDATE ${this.#outbox} SET status = 'pending', next_attempt_at = now() WHERE status = 'failed' AND ${condition}`,
      params,
    );
    return rowCount;
  }

  async purgePending({ scope, containing }: { scope: Scope; containing?: string }): Promise<number> {
    await this.#ready();
    const params: unknown[] = [];
    const condition = scopeWhere(scope, params);
    let sql: string;
    if (containing === undefined) {
      // Forgetting a whole scope also drops the traces of turns already done.
      sql = `DELETE FROM ${this.#outbox} WHERE ${condition}`;
    } else {
      // Match message contents only: the JSON around them (keys, roles) is not the user's text.
      params.push(containing);
      sql = `DELETE FROM ${this.#outbox} WHERE status <> 'done' AND ${condition}
        AND EXISTS (SELECT 1 FROM jsonb_array_elements(messages::jsonb) AS message
                    WHERE strpos(message ->> 'content', $${params.length}) > 0)`;
    }
    const { rowCount } = await this.#pool.query("outbox purge", sql, params);
    let forgotten = 0;
    if (containing !== undefined) {
      // Plans are JSON: the text appears in them escaped as JSON escapes it.
      const planParams: unknown[] = [];
      const planCondition = scopeWhere(scope, planParams);
      planParams.push(JSON.stringify(containing).slice(1, -1));
      forgotten = (
        await this.#pool.query(
          "outbox purge",
          `UPDATE ${this.#outbox} SET plan = NULL WHERE plan IS NOT NULL AND ${planCondition} AND strpos(plan, $${planParams.length}) > 0`,
          planParams,
        )
      ).rowCount;
    }
    if (rowCount + forgotten > 0) await this.#vacuum(this.#outbox);
    return rowCount;
  }

  async pruneDone(olderThan: Date): Promise<number> {
    await this.#ready();
    const { rowCount } = await this.#pool.query("outbox prune", `DELETE FROM ${this.#outbox} WHERE status = 'done' AND created_at < $1`, [
      olderThan,
    ]);
    return rowCount;
  }

  async reset(): Promise<void> {
    await this.#ready();
    // TRUNCATE leaves no dead row versions behind, unlike DELETE.
    await this.#pool.query("reset", `TRUNCATE ${this.#history}, ${this.#erased}, ${this.#outbox}`);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  /** Erased text lingers in dead row versions until VACUUM reclaims them. */
  async #vacuum(table: string): Promise<void> {
    await this.#pool.query("vacuum", `VACUUM ${table}`);
  }
}

/**
 * History and the write-behind outbox in PostgreSQL, shared by every app server connected to the
 * database: workers in any process claim turns with `FOR UPDATE SKIP LOCKED`, and a
 * transaction-scoped advisory lock per lock key (one user, else agent, else run) keeps two workers
 * from processing turns of the same key at once. Leases use the database clock. Tables are created
 * on first use; `pg` is loaded on first use.
 *
 * @example
 * const memory = new Memory({
 *   vectorStore: pgvectorStore({ connectionString: process.env.DATABASE_URL }),
 *   historyStore: postgresHistory({ connectionString: process.env.DATABASE_URL }),
 * });
 */
export function postgresHistory(options: PostgresHistoryOptions): HistoryStore {
  return new PostgresHistory(parseConfig(optionsSchema, options, "postgresHistory"));
}
