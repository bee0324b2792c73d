import { type Scope, scopeKeys } from "../scope.js";
import { scopeColumns, scopeOfRow } from "../store-kit/scopes.js";
import type { GraphChange, StoredRelation } from "./graph-store.js";

// SQL shared by the SQLite and PostgreSQL graphs, written with `?` placeholders (PostgreSQL's are
// numbered by `numbered`). `t` is a table prefix.

export const graphTables = (t: string, { serial, text }: { serial: string; text: string }) => [
  `CREATE TABLE IF NOT EXISTS ${t}entities (
    id ${serial} PRIMARY KEY,
    scope_key ${text} NOT NULL,
    user_id ${text}, agent_id ${text}, run_id ${text},
    name ${text} NOT NULL,
    name_key ${text} NOT NULL,
    UNIQUE (scope_key, name_key)
  )`,
  `CREATE INDEX IF NOT EXISTS ${t}entities_by_user ON ${t}entities (user_id, agent_id, run_id, name_key)`,
  `CREATE INDEX IF NOT EXISTS ${t}entities_by_agent ON ${t}entities (agent_id, run_id, name_key)`,
  `CREATE INDEX IF NOT EXISTS ${t}entities_by_run ON ${t}entities (run_id, name_key)`,
  `CREATE TABLE IF NOT EXISTS ${t}mentions (
    entity_id bigint NOT NULL REFERENCES ${t}entities (id) ON DELETE CASCADE,
    memory_id ${text} NOT NULL,
    PRIMARY KEY (entity_id, memory_id)
  )`,
  `CREATE INDEX IF NOT EXISTS ${t}mentions_by_memory ON ${t}mentions (memory_id)`,
  `CREATE TABLE IF NOT EXISTS ${t}edges (
    id ${serial} PRIMARY KEY,
    user_id ${text}, agent_id ${text}, run_id ${text},
    source_id bigint NOT NULL REFERENCES ${t}entities (id) ON DELETE CASCADE,
    relation ${text} NOT NULL,
    target_id bigint NOT NULL REFERENCES ${t}entities (id) ON DELETE CASCADE,
    UNIQUE (source_id, relation, target_id)
  )`,
  `CREATE INDEX IF NOT EXISTS ${t}edges_by_user ON ${t}edges (user_id, agent_id, run_id)`,
  `CREATE INDEX IF NOT EXISTS ${t}edges_by_agent ON ${t}edges (agent_id, run_id)`,
  `CREATE INDEX IF NOT EXISTS ${t}edges_by_run ON ${t}edges (run_id)`,
  `CREATE INDEX IF NOT EXISTS ${t}edges_by_target ON ${t}edges (target_id)`,
  `CREATE TABLE IF NOT EXISTS ${t}support (
    edge_id bigint NOT NULL REFERENCES ${t}edges (id) ON DELETE CASCADE,
    memory_id ${text} NOT NULL,
    seq ${text} NOT NULL,
    PRIMARY KEY (edge_id, memory_id)
  )`,
  `CREATE INDEX IF NOT EXISTS ${t}support_by_memory ON ${t}support (memory_id)`,
  `CREATE TABLE IF NOT EXISTS ${t}changes (
    id ${serial} PRIMARY KEY,
    memory_id ${text} NOT NULL,
    event ${text} NOT NULL,
    source ${text} NOT NULL,
    relation ${text} NOT NULL,
    target ${text} NOT NULL,
    user_id ${text}, agent_id ${text}, run_id ${text},
    created_at ${text} NOT NULL
  )`,
  `CREATE INDEX IF NOT EXISTS ${t}changes_by_memory ON ${t}changes (memory_id)`,
  `CREATE INDEX IF NOT EXISTS ${t}changes_by_user ON ${t}changes (user_id, agent_id, run_id)`,
];

/** AND of the scope's ids on the columns of `alias` (every call passes at least one id). */
export function scopeSql(scope: Scope, alias: string): { sql: string; params: string[] } {
  const parts: string[] = [];
  const params: string[] = [];
  for (const key of scopeKeys) {
    const value = scope[key];
    if (value === undefined) continue;
    parts.push(`${alias}.${scopeColumns[key]} = ?`);
    params.push(value);
  }
  return { sql: parts.length ? parts.join(" AND ") : "1 = 1", params };
}

/** `?` placeholders numbered `$1`, `$2`, … for PostgreSQL (no statement here has `?` inside a string). */
export const numbered = (sql: string): string => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

/** Visible edges with their endpoints' keys: the relation `v` the traversals walk. */
const visibleEdges = (t: string, scope: string) =>
  `v AS (SELECT e.id, s.name_key AS sk, g.name_key AS tk FROM ${t}edges e JOIN ${t}entities s ON s.id = e.source_id JOIN ${t}entities g ON g.id = e.target_id WHERE ${scope})`;

/**
 * Entity keys reachable from the start keys in at most `?` steps, with their least depth. `starts`
 * is a SELECT of `(k, d)` rows at depth 0. Walks edges either way.
 */
export const reachSql = (t: string, scope: string, starts: string) => `WITH RECURSIVE ${visibleEdges(t, scope)},
  reach (k, d) AS (
    ${starts}
    UNION
    SELECT CASE WHEN v.sk = reach.k THEN v.tk ELSE v.sk END, reach.d + 1
    FROM reach JOIN v ON v.sk = reach.k OR v.tk = reach.k
    WHERE reach.d < ?
  ),
  reached AS (SELECT k, MIN(d) AS d FROM reach GROUP BY k)`;

export const relationColumns = (t: string) =>
  `SELECT e.id, s.name AS source, s.name_key AS sk, e.relation, g.name AS target, g.name_key AS tk, p.memory_id, p.seq
   FROM ${t}edges e JOIN ${t}entities s ON s.id = e.source_id JOIN ${t}entities g ON g.id = e.target_id
   JOIN ${t}support p ON p.edge_id = e.id`;

export interface RelationRow {
  source: string;
  sk: string;
  relation: string;
  target: string;
  tk: string;
  memory_id: string;
  seq: string;
}

/** Rows of one relation in several sub-scopes (or several memories) merged: one relation, its memories oldest first. */
export function mergeRelations(rows: readonly RelationRow[], limit: number): StoredRelation[] {
  const merged = new Map<string, { relation: StoredRelation & { memoryIds: string[] }; seqs: Map<string, string> }>();
  for (const row of rows) {
    const key = JSON.stringify([row.sk, row.relation, row.tk]);
    let entry = merged.get(key);
    if (!entry) {
      if (merged.size >= limit) continue;
      entry = { relation: { source: row.source, relation: row.relation, target: row.target, memoryIds: [] }, seqs: new Map() };
      merged.set(key, entry);
    }
    const known = entry.seqs.get(row.memory_id);
    if (known === undefined || row.seq < known) entry.seqs.set(row.memory_id, row.seq);
  }
  return [...merged.values()].map(({ relation, seqs }) => ({
    ...relation,
    memoryIds: [...seqs].sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)).map(([id]) => id),
  }));
}

export interface ChangeRow {
  memory_id: string;
  event: string;
  source: string;
  relation: string;
  target: string;
  user_id: string | null;
  agent_id: string | null;
  run_id: string | null;
  created_at: string;
}

export const toChange = (row: ChangeRow): GraphChange => ({
  memoryId: row.memory_id,
  event: row.event as GraphChange["event"],
  source: row.source,
  relation: row.relation,
  target: row.target,
  ...scopeOfRow(row),
  createdAt: row.created_at,
});

/** The relation key of a memory's relation, for diffs: keys of the endpoints, and the label. */
export const relationKey = (source: string, relation: string, target: string, key: (name: string) => string) =>
  JSON.stringify([key(source), relation, key(target)]);
