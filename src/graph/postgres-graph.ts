import { z } from "zod";
import {
  connectionOptions,
  exactlyOneConnection,
  exactlyOneConnectionMessage,
  LazyPool,
  type PostgresPool,
  tableNameMessage,
  tableNamePattern,
} from "../internal/postgres.js";
import type { Scope } from "../scope.js";
import { parseConfig } from "../validation.js";
import { entityKey, exactScopeKey } from "./entity-key.js";
import {
  type ChangeRow,
  graphTables,
  mergeRelations,
  numbered,
  type RelationRow,
  reachSql,
  relationColumns,
  relationKey,
  scopeSql,
  toChange,
} from "./graph-sql.js";
import type { GraphChange, GraphStore, MemoryGraph, Neighbor, ReachedMemory, StoredRelation } from "./graph-store.js";

export interface PostgresGraphOptions {
  /** A postgres:// URL; the graph opens (and closes) its own pool. Give this or `pool`. */
  connectionString?: string;
  /** A pool your app owns (`new pg.Pool(…)`); the graph never ends it. Give this or `connectionString`. */
  pool?: PostgresPool;
  /** Prefix of its tables (`<prefix>entities`, `<prefix>edges`, …). @default "engram_graph_" */
  tablePrefix?: string;
}

const optionsSchema = z
  .strictObject({
    ...connectionOptions,
    tablePrefix: z.string().regex(tableNamePattern, tableNameMessage.replace("table", "tablePrefix")).optional(),
  })
  .refine(exactlyOneConnection, exactlyOneConnectionMessage);

/** Namespace of the per-scope locks that order graph writes (an entity is never deleted under a concurrent mention). */
const SCOPE_LOCK_NAMESPACE = 0x656e6767; // "engg"

class PostgresGraph implements GraphStore {
  readonly #pool: LazyPool;
  readonly #t: string;
  #schema: Promise<void> | undefined;

  constructor(options: z.infer<typeof optionsSchema>) {
    this.#pool = new LazyPool(options);
    this.#t = options.tablePrefix ?? "engram_graph_";
  }

  #ready(): Promise<void> {
    this.#schema ??= this.#pool
      .transaction("graph schema creation", async (client) => {
        await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`engram schema ${this.#t}`]);
        for (const statement of graphTables(this.#t, { serial: "bigserial", text: 'text COLLATE "C"' })) await client.query(statement);
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

  async #query<R>(what: string, sql: string, params: unknown[]): Promise<R[]> {
    await this.#ready();
    return (await this.#pool.query<R>(what, numbered(sql), params)).rows;
  }

  async write(memories: readonly MemoryGraph[], { at, erase = false }: { at: string; erase?: boolean }): Promise<void> {
    if (memories.length === 0) return;
    await this.#ready();
    await this.#pool.transaction("graph write", async (client) => {
      const q = async <R>(sql: string, params: unknown[]) => (await client.query(numbered(sql), params)).rows as R[];
      const scopeKeys = [...new Set(memories.map((memory) => exactScopeKey(memory.scope)))].sort();
      await client.query(
        `SELECT pg_advisory_xact_lock(${SCOPE_LOCK_NAMESPACE}, key) FROM (SELECT DISTINCT hashtext(k) AS key FROM unnest($1::text[]) AS k) keys ORDER BY key`,
        [scopeKeys],
      );
      for (const memory of memories) await this.#writeOne(q, memory, at, erase);
    });
    if (erase) await this.#vacuum();
  }

  async #writeOne(q: <R>(sql: string, params: unknown[]) => Promise<R[]>, memory: MemoryGraph, at: string, erase: boolean): Promise<void> {
    const t = this.#t;
    const { memoryId, scope } = memory;
    const scopeKey = exactScopeKey(scope);
    const ids = [scope.userId ?? null, scope.agentId ?? null, scope.runId ?? null];
    const old = await q<{ source: string; relation: string; target: string; id: string }>(
      `SELECT s.name AS source, e.relation, g.name AS target, e.id FROM ${t}support p
       JOIN ${t}edges e ON e.id = p.edge_id JOIN ${t}entities s ON s.id = e.source_id JOIN ${t}entities g ON g.id = e.target_id
       WHERE p.memory_id = ?`,
      [memoryId],
    );
    const oldEntities = (await q<{ entity_id: string }>(`SELECT entity_id FROM ${t}mentions WHERE memory_id = ?`, [memoryId])).map(
      (row) => row.entity_id,
    );
    await q(`DELETE FROM ${t}support WHERE memory_id = ?`, [memoryId]);
    await q(`DELETE FROM ${t}mentions WHERE memory_id = ?`, [memoryId]);

    const entityIds = new Map<string, string>();
    const entityId = async (name: string): Promise<string> => {
      const key = entityKey(name);
      const known = entityIds.get(key);
      if (known !== undefined) return known;
      const [row] = await q<{ id: string }>(
        `INSERT INTO ${t}entities (scope_key, user_id, agent_id, run_id, name, name_key) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (scope_key, name_key) DO UPDATE SET name_key = excluded.name_key RETURNING id`,
        [scopeKey, ...ids, name.trim(), key],
      );
      const id = (row as { id: string }).id;
      entityIds.set(key, id);
      await q(`INSERT INTO ${t}mentions (entity_id, memory_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, [id, memoryId]);
      return id;
    };
    for (const name of memory.entities) if (entityKey(name) !== "") await entityId(name);
    const now = new Map<string, { source: string; relation: string; target: string }>();
    for (const relation of memory.relations) {
      const label = relation.relation.trim();
      if (entityKey(relation.source) === "" || entityKey(relation.target) === "" || label === "") continue;
      const source = await entityId(relation.source);
      const target = await entityId(relation.target);
      const [edge] = await q<{ id: string }>(
        `INSERT INTO ${t}edges (user_id, agent_id, run_id, source_id, relation, target_id) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (source_id, relation, target_id) DO UPDATE SET relation = excluded.relation RETURNING id`,
        [...ids, source, label, target],
      );
      await q(`INSERT INTO ${t}support (edge_id, memory_id, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, [
        (edge as { id: string }).id,
        memoryId,
        at,
      ]);
      now.set(relationKey(relation.source, label, relation.target, entityKey), { ...relation, relation: label });
    }

    if (old.length) {
      await q(`DELETE FROM ${t}edges e WHERE e.id = ANY(?::bigint[]) AND NOT EXISTS (SELECT 1 FROM ${t}support p WHERE p.edge_id = e.id)`, [
        old.map((row) => row.id),
      ]);
    }
    if (oldEntities.length) {
      await q(
        `DELETE FROM ${t}entities n WHERE n.id = ANY(?::bigint[]) AND NOT EXISTS (SELECT 1 FROM ${t}mentions m WHERE m.entity_id = n.id)`,
        [oldEntities],
      );
    }

    if (erase) {
      await q(`DELETE FROM ${t}changes WHERE memory_id = ?`, [memoryId]);
      return;
    }
    const before = new Map(old.map((row) => [relationKey(row.source, row.relation, row.target, entityKey), row]));
    const record = (event: GraphChange["event"], r: { source: string; relation: string; target: string }) =>
      q(
        `INSERT INTO ${t}changes (memory_id, event, source, relation, target, user_id, agent_id, run_id, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [memoryId, event, r.source, r.relation, r.target, ...ids, at],
      );
    for (const [key, row] of before) if (!now.has(key)) await record("DELETE", row);
    for (const [key, relation] of now) if (!before.has(key)) await record("ADD", relation);
  }

  async relations(
    scope: Scope,
    { entity, relation, depth, limit }: { entity?: string; relation?: string; depth: number; limit: number },
  ): Promise<StoredRelation[]> {
    const t = this.#t;
    const where = scopeSql(scope, "e");
    const byLabel = relation === undefined ? "" : " AND e.relation = ?";
    const labelParams = relation === undefined ? [] : [relation];
    if (entity === undefined) {
      const rows = await this.#query<RelationRow>(
        "graph relations",
        `${relationColumns(t)} WHERE ${where.sql}${byLabel} ORDER BY e.id, p.seq`,
        [...where.params, ...labelParams],
      );
      return mergeRelations(rows, limit);
    }
    const rows = await this.#query<RelationRow>(
      "graph relations",
      `${reachSql(t, where.sql, `SELECT ?::text COLLATE "C", 0`)}
       ${relationColumns(t)} WHERE ${where.sql}${byLabel}
         AND (s.name_key IN (SELECT k FROM reached WHERE d < ?) OR g.name_key IN (SELECT k FROM reached WHERE d < ?))
       ORDER BY e.id, p.seq`,
      [...where.params, entityKey(entity), depth - 1, ...where.params, ...labelParams, depth, depth],
    );
    return mergeRelations(rows, limit);
  }

  async neighbors(scope: Scope, entity: string, { depth, limit }: { depth: number; limit: number }): Promise<Neighbor[]> {
    const where = scopeSql(scope, "e");
    const named = scopeSql(scope, "n");
    const rows = await this.#query<{ entity: string; depth: number }>(
      "graph neighbors",
      `${reachSql(this.#t, where.sql, `SELECT ?::text COLLATE "C", 0`)}
       SELECT (SELECT MIN(n.name) FROM ${this.#t}entities n WHERE n.name_key = reached.k AND ${named.sql}) AS entity, d AS depth
       FROM reached WHERE d > 0 ORDER BY d, k LIMIT ?`,
      [...where.params, entityKey(entity), depth, ...named.params, limit],
    );
    return rows.map((row) => ({ entity: String(row.entity), depth: Number(row.depth) }));
  }

  async memories(scope: Scope, entities: readonly string[], { depth, limit }: { depth: number; limit: number }): Promise<ReachedMemory[]> {
    if (entities.length === 0) return [];
    const where = scopeSql(scope, "e");
    const named = scopeSql(scope, "n");
    const rows = await this.#query<{ memory_id: string; depth: number }>(
      "graph memories",
      `${reachSql(this.#t, where.sql, `SELECT k COLLATE "C", 0 FROM unnest(?::text[]) AS k`)}
       SELECT m.memory_id, MIN(reached.d) AS depth FROM reached
       JOIN ${this.#t}entities n ON n.name_key = reached.k AND ${named.sql}
       JOIN ${this.#t}mentions m ON m.entity_id = n.id
       GROUP BY m.memory_id ORDER BY depth, m.memory_id LIMIT ?`,
      [...where.params, entities.map(entityKey), depth, ...named.params, limit],
    );
    return rows.map((row) => ({ memoryId: row.memory_id, depth: Number(row.depth) }));
  }

  async known(scope: Scope, names: readonly string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const named = scopeSql(scope, "n");
    const rows = await this.#query<{ name: string }>(
      "graph entities",
      `SELECT MIN(n.name) AS name FROM ${this.#t}entities n WHERE ${named.sql} AND n.name_key = ANY(?::text[])
       GROUP BY n.name_key ORDER BY n.name_key`,
      [...named.params, names.map(entityKey)],
    );
    return rows.map((row) => row.name);
  }

  async changes(scope: Scope, { memoryId, limit }: { memoryId?: string; limit: number }): Promise<GraphChange[]> {
    const where = scopeSql(scope, "c");
    const byMemory = memoryId === undefined ? "" : " AND c.memory_id = ?";
    const rows = await this.#query<ChangeRow>(
      "graph changes",
      `SELECT * FROM ${this.#t}changes c WHERE ${where.sql}${byMemory} ORDER BY c.id LIMIT ?`,
      [...where.params, ...(memoryId === undefined ? [] : [memoryId]), limit],
    );
    return rows.map(toChange);
  }

  async purge(scope: Scope): Promise<void> {
    await this.#ready();
    const changes = scopeSql(scope, "c");
    const entities = scopeSql(scope, "n");
    await this.#pool.transaction("graph purge", async (client) => {
      await client.query(numbered(`DELETE FROM ${this.#t}changes AS c WHERE ${changes.sql}`), changes.params);
      // Edges, mentions and support go with their entities (ON DELETE CASCADE).
      await client.query(numbered(`DELETE FROM ${this.#t}entities AS n WHERE ${entities.sql}`), entities.params);
    });
    await this.#vacuum();
  }

  /** Deleted rows' bytes stay in the table files until a vacuum reclaims them. */
  async #vacuum(): Promise<void> {
    for (const table of ["changes", "support", "edges", "mentions", "entities"]) {
      await this.#pool.query("graph vacuum", `VACUUM ${this.#t}${table}`);
    }
  }

  async reset(): Promise<void> {
    await this.#ready();
    const t = this.#t;
    await this.#pool.query("graph reset", `TRUNCATE ${t}changes, ${t}support, ${t}edges, ${t}mentions, ${t}entities`);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/**
 * The graph in PostgreSQL, with the same tables and traversals as `sqliteGraph`: for many app
 * servers sharing one memory (pass the database of `postgresHistory`). Tables are created on
 * first use; `pg` is loaded on first use.
 *
 * @example
 * new Memory({ historyStore: postgresHistory({ connectionString }), graph: { store: postgresGraph({ connectionString }) } });
 */
export function postgresGraph(options: PostgresGraphOptions): GraphStore {
  return new PostgresGraph(parseConfig(optionsSchema, options, "postgresGraph"));
}
