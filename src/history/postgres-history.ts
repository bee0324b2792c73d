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
import type { Scope } from "../scope.js";
import { scopeOfRow } from "../store-kit/scopes.js";
import { parseConfig } from "../validation.js";
import type { HistoryEntry, HistoryLog, HistoryScopeEnumerable } from "./history-log.js";
import type { Outbox } from "./outbox.js";
import { createOutboxTable, PostgresOutbox, scopeWhere } from "./postgres-outbox.js";

export type { PostgresPool } from "../internal/postgres.js";

export interface PostgresHistoryOptions {
  /** A postgres:// URL; the store opens (and closes) its own pool. Give this or `pool`. */
  connectionString?: string;
  /** A pool your app owns (`new pg.Pool(…)`); the store never ends it. Give this or `connectionString`. */
  pool?: PostgresPool;
  /** Prefix of the two tables, `<prefix>history` and `<prefix>outbox`. @default "engram_" */
  tablePrefix?: string;
  /**
   * The clock of leases and retry times, in epoch milliseconds, for tests that drive a fake one.
   * @default the database clock (`now()`), which every app server shares
   */
  now?: () => number;
}

const optionsSchema = z
  .strictObject({
    ...connectionOptions,
    tablePrefix: z.string().regex(tableNamePattern, tableNameMessage.replace("table", "tablePrefix")).optional(),
    now: z.custom<() => number>((value) => typeof value === "function", "now must be a function returning epoch milliseconds").optional(),
  })
  .refine(exactlyOneConnection, exactlyOneConnectionMessage);

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

function toHistoryEntry(row: HistoryRow): HistoryEntry {
  return {
    id: row.id,
    memoryId: row.memory_id,
    event: row.event,
    previousValue: row.previous_value,
    newValue: row.new_value,
    ...scopeOfRow(row),
    createdAt: row.created_at,
  };
}

/** The change log; the outbox half is `PostgresOutbox`, on the same pool. */
class PostgresHistory extends PostgresOutbox implements HistoryLog, HistoryScopeEnumerable {
  readonly #history: string;
  readonly #erased: string;
  #schema: Promise<void> | undefined;

  constructor(options: z.infer<typeof optionsSchema>) {
    const prefix = options.tablePrefix ?? "engram_";
    super(new LazyPool(options), `${prefix}outbox`, options.now);
    this.#history = `${prefix}history`;
    this.#erased = `${prefix}history_erased`;
  }

  protected override ready(): Promise<void> {
    this.#schema ??= this.pool
      .transaction("schema creation", async (client) => {
        const h = this.#history;
        const o = this.outbox;
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
        await createOutboxTable(client, o);
      })
      .catch((error) => {
        this.#schema = undefined;
        throw error;
      });
    return this.#schema;
  }

  async init(): Promise<void> {
    await this.ready();
  }

  async append(entries: readonly HistoryEntry[]): Promise<void> {
    await this.ready();
    if (entries.length === 0) return;
    await this.pool.transaction("history append", async (client) => {
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
    await this.ready();
    const params: unknown[] = [memoryId];
    const condition = scopeWhere(scope, params);
    const { rows } = await this.pool.query<HistoryRow>(
      "history list",
      `SELECT * FROM ${this.#history} WHERE memory_id = $1 AND ${condition} ORDER BY created_at, seq`,
      params,
    );
    return rows.map(toHistoryEntry);
  }

  async entryScopes(prefix: string, scope: Scope): Promise<Scope[]> {
    await this.ready();
    const params: unknown[] = [prefix];
    const condition = scopeWhere(scope, params);
    const { rows } = await this.pool.query<HistoryRow>(
      "history entryScopes",
      `SELECT DISTINCT user_id, agent_id, run_id FROM ${this.#history} WHERE left(memory_id, length($1)) = $1 AND ${condition}`,
      params,
    );
    return rows.map(scopeOfRow);
  }

  async purge(target: { memoryIds: readonly string[] } | { scope: Scope }): Promise<void> {
    await this.ready();
    const erase = (condition: string) =>
      `UPDATE ${this.#history} SET previous_value = NULL, new_value = NULL
       WHERE ${condition} AND (previous_value IS NOT NULL OR new_value IS NOT NULL)`;
    let erased: number;
    if ("memoryIds" in target) {
      const ids = [...target.memoryIds];
      erased = await this.pool.transaction("history purge", async (client) => {
        await this.#lockMemories(client, ids, "exclusive");
        await client.query(`INSERT INTO ${this.#erased} (memory_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, [ids]);
        return (await client.query(erase("memory_id = ANY($1::text[])"), [ids])).rowCount ?? 0;
      });
    } else {
      const params: unknown[] = [];
      erased = (await this.pool.query("history purge", erase(scopeWhere(target.scope, params)), params)).rowCount;
    }
    if (erased > 0) await this.vacuum(this.#history);
  }

  async reset(): Promise<void> {
    await this.ready();
    // TRUNCATE leaves no dead row versions behind, unlike DELETE.
    await this.pool.query("reset", `TRUNCATE ${this.#history}, ${this.#erased}, ${this.outbox}`);
  }

  async close(): Promise<void> {
    await this.pool.end();
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
export function postgresHistory(options: PostgresHistoryOptions): HistoryLog & HistoryScopeEnumerable & Outbox {
  return new PostgresHistory(parseConfig(optionsSchema, options, "postgresHistory"));
}

export { type PostgresGraphOptions, postgresGraph } from "../graph/postgres-graph.js";
