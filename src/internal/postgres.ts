import { z } from "zod";
import { asStoreError, ConfigError, type EngramError } from "../errors.js";

/** The part of a `pg` client the PostgreSQL stores use (a `pg.PoolClient` is one). */
export interface PostgresClient {
  // biome-ignore lint/suspicious/noExplicitAny: rows are typed by each query's caller.
  query(text: string, values?: unknown[]): Promise<{ rows: any[]; rowCount: number | null }>;
  release(error?: Error | boolean): void;
}

/** The part of a `pg.Pool` the PostgreSQL stores use: pass your app's pool to share its connections. */
export interface PostgresPool {
  // biome-ignore lint/suspicious/noExplicitAny: rows are typed by each query's caller.
  query(text: string, values?: unknown[]): Promise<{ rows: any[]; rowCount: number | null }>;
  connect(): Promise<PostgresClient>;
  end(): Promise<void>;
}

/** Options shared by the PostgreSQL stores: exactly one of a connection string or a pool. */
export const connectionOptions = {
  connectionString: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "connectionString must be a postgres:// or postgresql:// URL")
    .optional(),
  pool: z
    .custom<PostgresPool>(
      (value) =>
        value != null &&
        typeof value === "object" &&
        typeof (value as PostgresPool).connect === "function" &&
        typeof (value as PostgresPool).query === "function",
      "pool must be a pg Pool",
    )
    .optional(),
};

export const exactlyOneConnection = (options: { connectionString?: string; pool?: PostgresPool }) =>
  (options.connectionString === undefined) !== (options.pool === undefined);

export const exactlyOneConnectionMessage = { message: "pass exactly one of connectionString or pool" };

/** Table names are interpolated into statements, so only plain lower-case identifiers are accepted. */
export const tableNamePattern = /^[a-z_][a-z0-9_]{0,47}$/;
export const tableNameMessage = "table must be 1-48 lower-case letters, digits and underscores, starting with a letter or underscore";

/** A pool opened on first use (so importing a store never loads `pg`) and ended on close unless the app owns it. */
export class LazyPool {
  #pool: Promise<PostgresPool> | undefined;

  constructor(private readonly source: { connectionString?: string; pool?: PostgresPool }) {}

  get(): Promise<PostgresPool> {
    this.#pool ??= (async () => {
      if (this.source.pool) return this.source.pool;
      const pg = await import("pg").catch((cause) => {
        throw new ConfigError({ message: "The PostgreSQL stores need the `pg` package: npm install pg", cause });
      });
      const Pool = pg.Pool ?? pg.default.Pool;
      const pool = new Pool({ connectionString: this.source.connectionString });
      // An idle client that loses its connection emits on the pool; the next query reconnects.
      pool.on("error", () => {});
      return pool as unknown as PostgresPool;
    })();
    return this.#pool;
  }

  // biome-ignore lint/suspicious/noExplicitAny: rows are typed by the caller.
  async query<R = any>(what: string, sql: string, params: unknown[] = []): Promise<{ rows: R[]; rowCount: number }> {
    const pool = await this.get();
    try {
      const result = await pool.query(sql, params);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    } catch (error) {
      throw storeError(what, error);
    }
  }

  /** Runs `fn` inside BEGIN … COMMIT on one connection, rolling back when it throws. */
  async transaction<T>(what: string, fn: (client: PostgresClient) => Promise<T>): Promise<T> {
    const pool = await this.get();
    let client: PostgresClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw storeError(what, error);
    }
    let broken = false;
    try {
      await client.query("BEGIN");
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {
        broken = true;
      });
      throw storeError(what, error);
    } finally {
      client.release(broken);
    }
  }

  async end(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    if (pool && !this.source.pool) await (await pool.catch(() => undefined))?.end();
  }
}

function storeError(what: string, error: unknown): EngramError {
  return asStoreError(error, `PostgreSQL ${what} failed`);
}
