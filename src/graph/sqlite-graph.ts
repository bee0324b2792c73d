import { openSqlite, type SqliteHandle } from "../internal/sqlite.js";
import type { Scope } from "../scope.js";
import { entityKey, exactScopeKey } from "./entity-key.js";
import {
  type ChangeRow,
  graphTables,
  mergeRelations,
  type RelationRow,
  reachSql,
  relationColumns,
  relationKey,
  scopeSql,
  toChange,
} from "./graph-sql.js";
import type { GraphChange, GraphStore, MemoryGraph, Neighbor, ReachedMemory, StoredRelation } from "./graph-store.js";

export interface SqliteGraphOptions {
  /** Path of the database file (the default shares the memories' file); `":memory:"` for a throwaway one. */
  path: string;
}

const T = "memory_graph_";
type Row = Record<string, unknown>;

class SqliteGraph implements GraphStore {
  #handle: Promise<SqliteHandle> | undefined;

  constructor(private readonly path: string) {}

  #open(): Promise<SqliteHandle> {
    if (this.#handle) return this.#handle;
    const opening = openSqlite(this.path).then((handle) => {
      try {
        handle.guard("graph schema creation", () => {
          for (const statement of graphTables(T, { serial: "INTEGER", text: "TEXT" })) handle.db.exec(statement);
        });
      } catch (error) {
        handle.release();
        throw error;
      }
      return handle;
    });
    this.#handle = opening;
    opening.catch(() => {
      if (this.#handle === opening) this.#handle = undefined;
    });
    return opening;
  }

  async init(): Promise<void> {
    await this.#open();
  }

  async write(memories: readonly MemoryGraph[], { at, erase = false }: { at: string; erase?: boolean }): Promise<void> {
    if (memories.length === 0) return;
    const handle = await this.#open();
    handle.guard("graph write", () => handle.transaction(() => this.#writeIn(handle, memories, at, erase)));
    if (erase) await handle.checkpoint();
  }

  #writeIn(handle: SqliteHandle, memories: readonly MemoryGraph[], at: string, erase: boolean): void {
    const q = (sql: string) => handle.statement(sql);
    for (const memory of memories) {
      const { memoryId, scope } = memory;
      const scopeKey = exactScopeKey(scope);
      const old = q(`SELECT s.name AS source, e.relation, g.name AS target, e.id FROM ${T}support p
        JOIN ${T}edges e ON e.id = p.edge_id JOIN ${T}entities s ON s.id = e.source_id JOIN ${T}entities g ON g.id = e.target_id
        WHERE p.memory_id = ?`).all(memoryId) as { source: string; relation: string; target: string; id: number }[];
      const oldEntities = (q(`SELECT entity_id FROM ${T}mentions WHERE memory_id = ?`).all(memoryId) as { entity_id: number }[]).map(
        (row) => row.entity_id,
      );
      q(`DELETE FROM ${T}support WHERE memory_id = ?`).run(memoryId);
      q(`DELETE FROM ${T}mentions WHERE memory_id = ?`).run(memoryId);

      const ids = new Map<string, number>();
      const entityId = (name: string): number => {
        const key = entityKey(name);
        const known = ids.get(key);
        if (known !== undefined) return known;
        const row = q(`INSERT INTO ${T}entities (scope_key, user_id, agent_id, run_id, name, name_key) VALUES (?, ?, ?, ?, ?, ?)
          ON CONFLICT (scope_key, name_key) DO UPDATE SET name_key = excluded.name_key RETURNING id`).get(
          scopeKey,
          scope.userId ?? null,
          scope.agentId ?? null,
          scope.runId ?? null,
          name.trim(),
          key,
        ) as { id: number };
        ids.set(key, row.id);
        q(`INSERT OR IGNORE INTO ${T}mentions (entity_id, memory_id) VALUES (?, ?)`).run(row.id, memoryId);
        return row.id;
      };
      for (const name of memory.entities) if (entityKey(name) !== "") entityId(name);
      const now = new Map<string, (typeof memory.relations)[number]>();
      for (const relation of memory.relations) {
        if (entityKey(relation.source) === "" || entityKey(relation.target) === "" || relation.relation.trim() === "") continue;
        const label = relation.relation.trim();
        const edge = q(`INSERT INTO ${T}edges (user_id, agent_id, run_id, source_id, relation, target_id) VALUES (?, ?, ?, ?, ?, ?)
          ON CONFLICT (source_id, relation, target_id) DO UPDATE SET relation = excluded.relation RETURNING id`).get(
          scope.userId ?? null,
          scope.agentId ?? null,
          scope.runId ?? null,
          entityId(relation.source),
          label,
          entityId(relation.target),
        ) as { id: number };
        q(`INSERT OR IGNORE INTO ${T}support (edge_id, memory_id, seq) VALUES (?, ?, ?)`).run(edge.id, memoryId, at);
        now.set(relationKey(relation.source, label, relation.target, entityKey), { ...relation, relation: label });
      }

      // What no memory supports or mentions any more goes.
      for (const { id } of old)
        q(`DELETE FROM ${T}edges WHERE id = ? AND NOT EXISTS (SELECT 1 FROM ${T}support WHERE edge_id = ?)`).run(id, id);
      for (const id of oldEntities) {
        q(`DELETE FROM ${T}entities WHERE id = ? AND NOT EXISTS (SELECT 1 FROM ${T}mentions WHERE entity_id = ?)`).run(id, id);
      }

      if (erase) {
        q(`DELETE FROM ${T}changes WHERE memory_id = ?`).run(memoryId);
        continue;
      }
      const before = new Map(old.map((row) => [relationKey(row.source, row.relation, row.target, entityKey), row]));
      const change = q(`INSERT INTO ${T}changes (memory_id, event, source, relation, target, user_id, agent_id, run_id, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
      const record = (event: GraphChange["event"], r: { source: string; relation: string; target: string }) =>
        change.run(memoryId, event, r.source, r.relation, r.target, scope.userId ?? null, scope.agentId ?? null, scope.runId ?? null, at);
      for (const [key, row] of before) if (!now.has(key)) record("DELETE", row);
      for (const [key, relation] of now) if (!before.has(key)) record("ADD", relation);
    }
  }

  async relations(
    scope: Scope,
    { entity, relation, depth, limit }: { entity?: string; relation?: string; depth: number; limit: number },
  ): Promise<StoredRelation[]> {
    const handle = await this.#open();
    const where = scopeSql(scope, "e");
    const byLabel = relation === undefined ? "" : " AND e.relation = ?";
    const labelParams = relation === undefined ? [] : [relation];
    return handle.guard("graph relations", () => {
      if (entity === undefined) {
        const rows = handle
          .statement(`${relationColumns(T)} WHERE ${where.sql}${byLabel} ORDER BY e.id, p.seq`)
          .all(...where.params, ...labelParams) as unknown as RelationRow[];
        return mergeRelations(rows, limit);
      }
      const rows = handle
        .statement(`${reachSql(T, where.sql, "SELECT ?, 0")}
          ${relationColumns(T)} WHERE ${where.sql}${byLabel}
            AND (s.name_key IN (SELECT k FROM reached WHERE d < ?) OR g.name_key IN (SELECT k FROM reached WHERE d < ?))
          ORDER BY e.id, p.seq`)
        .all(...where.params, entityKey(entity), depth - 1, ...where.params, ...labelParams, depth, depth) as unknown as RelationRow[];
      return mergeRelations(rows, limit);
    });
  }

  async neighbors(scope: Scope, entity: string, { depth, limit }: { depth: number; limit: number }): Promise<Neighbor[]> {
    const handle = await this.#open();
    const where = scopeSql(scope, "e");
    const named = scopeSql(scope, "n");
    return handle.guard("graph neighbors", () =>
      (
        handle
          .statement(`${reachSql(T, where.sql, "SELECT ?, 0")}
            SELECT (SELECT MIN(n.name) FROM ${T}entities n WHERE n.name_key = reached.k AND ${named.sql}) AS entity, d AS depth
            FROM reached WHERE d > 0 ORDER BY d, k LIMIT ?`)
          .all(...where.params, entityKey(entity), depth, ...named.params, limit) as Row[]
      ).map((row) => ({ entity: String(row.entity), depth: Number(row.depth) })),
    );
  }

  async memories(scope: Scope, entities: readonly string[], { depth, limit }: { depth: number; limit: number }): Promise<ReachedMemory[]> {
    if (entities.length === 0) return [];
    const handle = await this.#open();
    const where = scopeSql(scope, "e");
    const named = scopeSql(scope, "n");
    return handle.guard("graph memories", () =>
      (
        handle
          .statement(`${reachSql(T, where.sql, "SELECT value, 0 FROM json_each(?)")}
            SELECT m.memory_id, MIN(reached.d) AS depth FROM reached
            JOIN ${T}entities n ON n.name_key = reached.k AND ${named.sql}
            JOIN ${T}mentions m ON m.entity_id = n.id
            GROUP BY m.memory_id ORDER BY depth, m.memory_id LIMIT ?`)
          .all(...where.params, JSON.stringify(entities.map(entityKey)), depth, ...named.params, limit) as Row[]
      ).map((row) => ({ memoryId: String(row.memory_id), depth: Number(row.depth) })),
    );
  }

  async known(scope: Scope, names: readonly string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const handle = await this.#open();
    const named = scopeSql(scope, "n");
    return handle.guard("graph entities", () =>
      (
        handle
          .statement(`SELECT MIN(n.name) AS name FROM ${T}entities n WHERE ${named.sql} AND n.name_key IN (SELECT value FROM json_each(?))
            GROUP BY n.name_key ORDER BY n.name_key`)
          .all(...named.params, JSON.stringify(names.map(entityKey))) as Row[]
      ).map((row) => String(row.name)),
    );
  }

  async changes(scope: Scope, { memoryId, limit }: { memoryId?: string; limit: number }): Promise<GraphChange[]> {
    const handle = await this.#open();
    const where = scopeSql(scope, "c");
    const byMemory = memoryId === undefined ? "" : " AND c.memory_id = ?";
    return handle.guard("graph changes", () =>
      (
        handle
          .statement(`SELECT * FROM ${T}changes c WHERE ${where.sql}${byMemory} ORDER BY c.id LIMIT ?`)
          .all(...where.params, ...(memoryId === undefined ? [] : [memoryId]), limit) as unknown as ChangeRow[]
      ).map(toChange),
    );
  }

  async purge(scope: Scope): Promise<void> {
    const handle = await this.#open();
    const changes = scopeSql(scope, "c");
    const entities = scopeSql(scope, "n");
    handle.guard("graph purge", () =>
      handle.transaction(() => {
        handle.statement(`DELETE FROM ${T}changes AS c WHERE ${changes.sql}`).run(...changes.params);
        // Edges, mentions and support go with their entities (ON DELETE CASCADE).
        handle.statement(`DELETE FROM ${T}entities AS n WHERE ${entities.sql}`).run(...entities.params);
      }),
    );
    await handle.checkpoint();
  }

  async reset(): Promise<void> {
    const handle = await this.#open();
    handle.guard("graph reset", () =>
      handle.transaction(() => {
        handle.statement(`DELETE FROM ${T}changes`).run();
        handle.statement(`DELETE FROM ${T}entities`).run();
      }),
    );
    await handle.checkpoint();
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle) (await handle.catch(() => undefined))?.release();
  }
}

/**
 * The graph in a SQLite file: by default the memories' own file (`engram.db`), as four tables
 * beside them (`memory_graph_entities`, `_mentions`, `_edges`, `_support`) and their change log
 * (`memory_graph_changes`). Traversals are recursive CTEs.
 */
export function sqliteGraph({ path }: SqliteGraphOptions): GraphStore {
  return new SqliteGraph(path);
}
