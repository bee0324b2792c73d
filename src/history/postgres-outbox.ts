import type { LazyPool, PostgresClient } from "../internal/postgres.js";
import { lockKeyOf, type Scope, scopeKeys } from "../scope.js";
import { scopeColumns, scopeOfRow } from "../store-kit/scopes.js";
import type { Message, NewOutboxEntry, Outbox, OutboxClaim, OutboxEntry, OutboxStatus } from "./outbox.js";

/** Namespace of our advisory locks (the first key of the two-key form), so they never meet an app's own. */
const LOCK_NAMESPACE = 0x656e6772; // "engr"

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

function toOutboxEntry(row: OutboxRow): OutboxEntry {
  return {
    id: row.id,
    messages: row.messages == null ? [] : (JSON.parse(row.messages) as Message[]),
    ...scopeOfRow(row),
    options: JSON.parse(row.options),
    status: row.status,
    attempts: row.attempts,
    ...(row.last_error != null && { lastError: row.last_error }),
    ...(row.plan != null && { plan: row.plan }),
    createdAt: row.created_at.toISOString(),
    nextAttemptAt: row.next_attempt_at.toISOString(),
  };
}

/** Scope conditions (AND of the given ids; none given = every scope), appending values to `params`. */
export function scopeWhere(scope: Scope | undefined, params: unknown[]): string {
  const parts: string[] = [];
  for (const key of scopeKeys) {
    const value = scope?.[key];
    if (value === undefined) continue;
    params.push(value);
    parts.push(`${scopeColumns[key]} = $${params.length}`);
  }
  return parts.length ? parts.join(" AND ") : "TRUE";
}

/** Creates the outbox table `o` and its indexes, inside the caller's schema transaction. */
export async function createOutboxTable(client: PostgresClient, o: string): Promise<void> {
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
}

/**
 * The outbox half of `postgresHistory`: the `<prefix>outbox` table, created by the subclass's
 * `ready()` (with `createOutboxTable`). Workers in any process claim with `FOR UPDATE SKIP LOCKED`
 * and a transaction-scoped advisory lock per lock key; leases use the database clock.
 */
export abstract class PostgresOutbox implements Outbox {
  constructor(
    protected readonly pool: LazyPool,
    /** The outbox table. */
    protected readonly outbox: string,
    /** The clock of leases and retry times; without it, the database's (`now()`), shared by every app server. */
    private readonly clock?: () => number,
  ) {}

  /** The current time in SQL: the database clock, or the given clock's time as the next parameter. */
  #now(params: unknown[]): string {
    if (!this.clock) return "now()";
    params.push(new Date(this.clock()));
    return `$${params.length}::timestamptz`;
  }

  /** Creates the tables on first use. */
  protected abstract ready(): Promise<void>;
  abstract init(): Promise<void>;
  abstract reset(): Promise<void>;
  abstract close(): Promise<void>;

  /** Erased text lingers in dead row versions until VACUUM reclaims them. */
  protected async vacuum(table: string): Promise<void> {
    await this.pool.query("vacuum", `VACUUM ${table}`);
  }

  async enqueue({ id, messages, scope, options }: NewOutboxEntry) {
    await this.ready();
    const params: unknown[] = [
      id,
      JSON.stringify(messages),
      scope.userId ?? null,
      scope.agentId ?? null,
      scope.runId ?? null,
      lockKeyOf(scope),
      JSON.stringify(options),
    ];
    const now = this.clock ? this.#now(params) : "clock_timestamp()";
    const { rowCount } = await this.pool.query(
      "enqueue",
      `INSERT INTO ${this.outbox} (id, messages, user_id, agent_id, run_id, lock_key, options, status, next_attempt_at, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', ${now}, ${now}) ON CONFLICT (id) DO NOTHING`,
      params,
    );
    return rowCount === 1;
  }

  async claim({ workerId, limit, leaseMs, perKey = 1 }: OutboxClaim): Promise<OutboxEntry[]> {
    await this.ready();
    const claimed: OutboxEntry[] = [];
    const keys = new Set<string>();
    // A round can lose candidates to workers claiming at the same moment; a few more rounds take
    // what those workers left.
    for (let round = 0; round < 3 && keys.size < limit; round++) {
      const { entries, contested } = await this.#claimRound(workerId, limit - keys.size, leaseMs, Math.max(1, Math.floor(perKey)));
      claimed.push(...entries);
      for (const entry of entries) keys.add(lockKeyOf(entry));
      if (!contested) break;
    }
    return claimed;
  }

  async #claimRound(
    workerId: string,
    limit: number,
    leaseMs: number,
    perKey: number,
  ): Promise<{ entries: OutboxEntry[]; contested: boolean }> {
    const o = this.outbox;
    const due = (now: string) => `((status = 'pending' AND next_attempt_at <= ${now}) OR (status = 'processing' AND lease_until < ${now}))`;
    const busy = (alias: string, now: string) =>
      `EXISTS (SELECT 1 FROM ${o} busy WHERE busy.lock_key = ${alias}.lock_key AND busy.id <> ${alias}.id
         AND busy.status = 'processing' AND busy.lease_until >= ${now})`;
    const candidateParams: unknown[] = [limit, perKey];
    const candidateNow = this.#now(candidateParams);
    return this.pool.transaction("claim", async (client) => {
      // 1. The oldest due entries (up to perKey) of the `limit` lock keys with no live lease whose
      //    oldest due entry is oldest, row-locked; rows another worker is claiming right now are skipped.
      const { rows: locking } = await client.query(
        `SELECT id, lock_key, place FROM (
           SELECT id, lock_key, created_at, seq,
             ROW_NUMBER() OVER (PARTITION BY lock_key ORDER BY created_at, seq) AS place
           FROM ${o} c WHERE ${due(candidateNow)} AND NOT ${busy("c", candidateNow)}) ranked
         WHERE place <= $2 AND lock_key IN (
           SELECT lock_key FROM (
             SELECT DISTINCT ON (lock_key) lock_key, created_at, seq FROM ${o} c
             WHERE ${due(candidateNow)} AND NOT ${busy("c", candidateNow)}
             ORDER BY lock_key, created_at, seq) oldest
           ORDER BY created_at, seq LIMIT $1)
         ORDER BY created_at, seq`,
        candidateParams,
      );
      if (locking.length === 0) return { entries: [], contested: false };
      const { rows: free } = await client.query(`SELECT id FROM ${o} WHERE id = ANY($1::text[]) FOR UPDATE SKIP LOCKED`, [
        locking.map((row: { id: string }) => row.id),
      ]);
      // Of each key, its oldest entries up to the first one another worker holds: never a later
      // entry of a key without the ones before it.
      const lockedIds = new Set(free.map((row: { id: string }) => row.id));
      const open = new Map<string, boolean>();
      const candidates = (locking as { id: string; lock_key: string; place: string }[]).filter((row) => {
        const ok = (Number(row.place) === 1 || open.get(row.lock_key) === true) && lockedIds.has(row.id);
        open.set(row.lock_key, ok);
        return ok;
      });
      if (candidates.length === 0) return { entries: [], contested: true };
      // 2. One worker at a time per lock key, across processes: a transaction-scoped advisory lock.
      const { rows: locked } = await client.query(
        `SELECT key FROM unnest($1::text[]) AS key WHERE pg_try_advisory_xact_lock(${LOCK_NAMESPACE}, hashtext(key))`,
        [[...new Set(candidates.map((row) => row.lock_key))]],
      );
      const keys = new Set(locked.map((row: { key: string }) => row.key));
      const ids = candidates.filter((row) => keys.has(row.lock_key)).map((row) => row.id);
      if (ids.length === 0) return { entries: [], contested: true };
      // 3. Checked again with a fresh snapshot, now that the key locks are held: a worker that
      //    claimed the same key after step 1 has committed by now and is seen here.
      const claimParams: unknown[] = [ids, workerId, leaseMs];
      const claimNow = this.#now(claimParams);
      const { rows } = await client.query(
        `UPDATE ${o} AS entry SET
           attempts = attempts + (CASE WHEN status = 'processing' THEN 1 ELSE 0 END),
           last_error = (CASE WHEN status = 'processing' THEN 'the worker processing it stopped before finishing' ELSE last_error END),
           status = 'processing', worker_id = $2, lease_until = ${claimNow} + $3 * interval '1 millisecond'
         WHERE id = ANY($1::text[]) AND ${due(claimNow)} AND NOT ${busy("entry", claimNow)}
         RETURNING *`,
        claimParams,
      );
      const entries = (rows as (OutboxRow & { seq: string })[])
        .sort((a, b) => a.created_at.getTime() - b.created_at.getTime() || Number(a.seq) - Number(b.seq))
        .map(toOutboxEntry);
      return { entries, contested: entries.length < candidates.length };
    });
  }

  async #update(what: string, sql: string, params: unknown[]): Promise<boolean> {
    await this.ready();
    const { rowCount } = await this.pool.query(what, sql, params);
    return rowCount === 1;
  }

  renew(id: string, workerId: string, leaseMs: number): Promise<boolean> {
    const params: unknown[] = [id, workerId, leaseMs];
    const now = this.#now(params);
    return this.#update(
      "outbox renew",
      `UPDATE ${this.outbox} SET lease_until = ${now} + $3 * interval '1 millisecond'
       WHERE id = $1 AND worker_id = $2 AND status = 'processing'`,
      params,
    );
  }

  savePlan(id: string, workerId: string, plan: string): Promise<boolean> {
    return this.#update(
      "outbox plan",
      `UPDATE ${this.outbox} SET plan = $3 WHERE id = $1 AND worker_id = $2 AND status = 'processing' AND plan IS NULL`,
      [id, workerId, plan],
    );
  }

  async discardPlan(id: string, workerId: string): Promise<boolean> {
    const discarded = await this.#update(
      "outbox plan",
      `UPDATE ${this.outbox} SET plan = NULL WHERE id = $1 AND worker_id = $2 AND status = 'processing'`,
      [id, workerId],
    );
    // A discarded plan may hold the text of a memory purged since it was saved: no dead row keeps it.
    if (discarded) await this.vacuum(this.outbox);
    return discarded;
  }

  complete(id: string, workerId: string): Promise<boolean> {
    return this.#update(
      "outbox complete",
      `UPDATE ${this.outbox} SET status = 'done', messages = NULL, plan = NULL, options = '{}', last_error = NULL, lease_until = NULL
       WHERE id = $1 AND worker_id = $2 AND status = 'processing'`,
      [id, workerId],
    );
  }

  fail(id: string, workerId: string, { error, retryAt }: { error: string; retryAt?: Date }): Promise<boolean> {
    const params: unknown[] = [id, workerId, retryAt ? "pending" : "failed", error, retryAt ?? null];
    const now = this.#now(params);
    return this.#update(
      "outbox fail",
      `UPDATE ${this.outbox} SET status = $3, attempts = attempts + 1, last_error = $4,
         next_attempt_at = COALESCE($5::timestamptz, ${now}), lease_until = NULL
       WHERE id = $1 AND worker_id = $2 AND status = 'processing'`,
      params,
    );
  }

  async statuses(ids: readonly string[]): Promise<Map<string, OutboxStatus>> {
    await this.ready();
    const { rows } = await this.pool.query<{ id: string; status: OutboxStatus }>(
      "outbox status",
      `SELECT id, status FROM ${this.outbox} WHERE id = ANY($1::text[])`,
      [[...ids]],
    );
    return new Map(rows.map((row) => [row.id, row.status]));
  }

  async pending(scope?: Scope): Promise<OutboxEntry[]> {
    await this.ready();
    const params: unknown[] = [];
    const condition = scopeWhere(scope, params);
    const { rows } = await this.pool.query<OutboxRow>(
      "outbox list",
      `SELECT * FROM ${this.outbox} WHERE status <> 'done' AND ${condition} ORDER BY created_at, seq`,
      params,
    );
    return rows.map(toOutboxEntry);
  }

  async retryFailed(scope?: Scope): Promise<number> {
    await this.ready();
    const params: unknown[] = [];
    const condition = scopeWhere(scope, params);
    const now = this.#now(params);
    const { rowCount } = await this.pool.query(
      "outbox retry",
      `UPDATE ${this.outbox} SET status = 'pending', next_attempt_at = ${now} WHERE status = 'failed' AND ${condition}`,
      params,
    );
    return rowCount;
  }

  async purgePending({ scope, containing }: { scope: Scope; containing?: string }): Promise<number> {
    await this.ready();
    const params: unknown[] = [];
    const condition = scopeWhere(scope, params);
    let sql: string;
    if (containing === undefined) {
      // Forgetting a whole scope also drops the traces of turns already done.
      sql = `DELETE FROM ${this.outbox} WHERE ${condition}`;
    } else {
      // Match message contents only: the JSON around them (keys, roles) is not the user's text.
      params.push(containing);
      sql = `DELETE FROM ${this.outbox} WHERE status <> 'done' AND ${condition}
        AND EXISTS (SELECT 1 FROM jsonb_array_elements(messages::jsonb) AS message
                    WHERE strpos(message ->> 'content', $${params.length}) > 0)`;
    }
    const { rowCount } = await this.pool.query("outbox purge", sql, params);
    let forgotten = 0;
    if (containing !== undefined) {
      // Plans are JSON: the text appears in them escaped as JSON escapes it.
      const planParams: unknown[] = [];
      const planCondition = scopeWhere(scope, planParams);
      planParams.push(JSON.stringify(containing).slice(1, -1));
      forgotten = (
        await this.pool.query(
          "outbox purge",
          `UPDATE ${this.outbox} SET plan = NULL WHERE plan IS NOT NULL AND ${planCondition} AND strpos(plan, $${planParams.length}) > 0`,
          planParams,
        )
      ).rowCount;
    }
    if (rowCount + forgotten > 0) await this.vacuum(this.outbox);
    return rowCount;
  }

  async pruneDone(olderThan: Date): Promise<number> {
    await this.ready();
    const { rowCount } = await this.pool.query("outbox prune", `DELETE FROM ${this.outbox} WHERE status = 'done' AND created_at < $1`, [
      olderThan,
    ]);
    return rowCount;
  }
}
