import type { SqliteHandle } from "../internal/sqlite.js";

// The tables of sqliteStore, and the migration of files made by earlier versions.

/**
 * Scope ids as keyword tokens ("u" + hex of the user id, "a" + agent, "r" + run), indexed beside the
 * text: a keyword query intersects the scope's short posting lists with the terms' long ones inside
 * the full-text index, so its cost follows the scope's size, not the store's. The exact scope
 * condition is still applied on the joined rows.
 */
const scopeTermsExpression = `trim(
  CASE WHEN user_id IS NULL THEN '' ELSE 'u' || hex(user_id) || ' ' END ||
  CASE WHEN agent_id IS NULL THEN '' ELSE 'a' || hex(agent_id) || ' ' END ||
  CASE WHEN run_id IS NULL THEN '' ELSE 'r' || hex(run_id) END)`;
export const scopeTermPrefixes = { userId: "u", agentId: "a", runId: "r" } as const;

export const schema = `
  CREATE TABLE IF NOT EXISTS engram_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS memories (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,
    user_id TEXT,
    agent_id TEXT,
    run_id TEXT,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    embedding BLOB NOT NULL,
    scope_terms TEXT GENERATED ALWAYS AS (${scopeTermsExpression}) VIRTUAL
  );
  CREATE INDEX IF NOT EXISTS memories_by_user ON memories (user_id, agent_id, run_id, created_at);
  CREATE INDEX IF NOT EXISTS memories_by_agent ON memories (agent_id, run_id, created_at);
  CREATE INDEX IF NOT EXISTS memories_by_run ON memories (run_id, created_at);
  CREATE INDEX IF NOT EXISTS memories_by_hash ON memories (hash);
  -- A user's (or an agent's) memories in time order whatever their other scope ids: the newest
  -- memory a verbatim add may continue, and the stamps search checks its copy of the scope against,
  -- are read from here without sorting the scope (covering: no table row is read for the stamps).
  CREATE INDEX IF NOT EXISTS memories_by_user_time ON memories (user_id, created_at, id, hash, updated_at);
  CREATE INDEX IF NOT EXISTS memories_by_agent_time ON memories (agent_id, created_at, id, hash, updated_at);
  -- Ids of erased memories (no text): a write can never bring a purged memory back.
  CREATE TABLE IF NOT EXISTS memory_tombstones (id TEXT PRIMARY KEY, erased_at TEXT NOT NULL);
  -- Tokens are the Porter stems of what tokenize() in src/retrieval/keywords.ts yields (letters and
  -- digits, lower-cased), as bm25Scores compares them: the matches found here are the documents BM25
  -- scores above zero.
  CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
    text, scope_terms, content = 'memories', content_rowid = 'rowid',
    tokenize = "porter unicode61 remove_diacritics 0 categories 'L* N*'"
  );
  CREATE TRIGGER IF NOT EXISTS memories_fts_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, text, scope_terms) VALUES (new.rowid, new.text, new.scope_terms);
  END;
  CREATE TRIGGER IF NOT EXISTS memories_fts_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, scope_terms) VALUES ('delete', old.rowid, old.text, old.scope_terms);
  END;
  CREATE TRIGGER IF NOT EXISTS memories_fts_update AFTER UPDATE OF text, user_id, agent_id, run_id ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, scope_terms) VALUES ('delete', old.rowid, old.text, old.scope_terms);
    INSERT INTO memories_fts (rowid, text, scope_terms) VALUES (new.rowid, new.text, new.scope_terms);
  END;
`;

/**
 * Brings files made by earlier versions up to date, rebuilding the keyword index from the stored
 * texts: files created before the scope was indexed for keyword search get the generated scope
 * column; files whose keyword index does not stem words get one that does.
 */
export function migrate(handle: SqliteHandle): void {
  const columnsOf = (table: string) =>
    (handle.db.prepare(`SELECT name FROM pragma_table_xinfo('${table}')`).all() as { name: string }[]).map((row) => row.name);
  const memoryColumns = columnsOf("memories");
  if (memoryColumns.length === 0) return;
  const scoped = memoryColumns.includes("scope_terms");
  const keywordIndex = handle.db.prepare("SELECT sql FROM sqlite_master WHERE name = 'memories_fts'").get() as { sql: string } | undefined;
  const stemmed = keywordIndex?.sql.includes("porter") ?? false;
  if (scoped && stemmed) return;
  handle.transaction(() => {
    handle.db.exec(`
      DROP TRIGGER IF EXISTS memories_fts_insert;
      DROP TRIGGER IF EXISTS memories_fts_delete;
      DROP TRIGGER IF EXISTS memories_fts_update;
      DROP TABLE IF EXISTS memories_fts;
      ${scoped ? "" : `ALTER TABLE memories ADD COLUMN scope_terms TEXT GENERATED ALWAYS AS (${scopeTermsExpression}) VIRTUAL;`}
      ${schema}
      INSERT INTO memories_fts (memories_fts) VALUES ('rebuild');
    `);
  });
}

/**
 * Vectors per chunk of the compact index. The index allocates whole chunks per scope (128 × dimension
 * bytes), so small chunks keep many small scopes cheap; at 100,000 memories in one scope, chunks of
 * 128 searched as fast as chunks of 1,024 (248 vs 258 ms p50 on a loaded machine).
 */
const compactChunk = 128;

const compactOf = (row: "new" | "old") =>
  `${row}.rowid, ifnull(${row}.user_id, ''), ifnull(${row}.agent_id, ''), ifnull(${row}.run_id, ''), vec_quantize_int8(vec_normalize(${row}.embedding), 'unit')`;

/**
 * The compact vector index: each stored vector normalized and quantized to int8 in a sqlite-vec
 * `vec0` table partitioned by the scope columns ('' for an absent id), so a search reads only the
 * chunks of the scope's partitions, a quarter of the bytes of the full vectors. Triggers keep it in
 * step with `memories`. sqlite-vec zeroes a deleted vector's bytes in its chunk and drops emptied
 * chunks (freed pages are zeroed by `secure_delete`): a purge erases these vectors too. Its vectors
 * cannot be updated in place, so an update deletes and inserts.
 */
function compactIndexSchema(dimension: number): string {
  return `
    CREATE VIRTUAL TABLE IF NOT EXISTS memory_vectors USING vec0(
      user_id TEXT PARTITION KEY, agent_id TEXT PARTITION KEY, run_id TEXT PARTITION KEY,
      vector INT8[${dimension}], chunk_size = ${compactChunk}
    );
    CREATE TRIGGER IF NOT EXISTS memory_vectors_insert AFTER INSERT ON memories BEGIN
      INSERT INTO memory_vectors (rowid, user_id, agent_id, run_id, vector) VALUES (${compactOf("new")});
    END;
    CREATE TRIGGER IF NOT EXISTS memory_vectors_delete AFTER DELETE ON memories BEGIN
      DELETE FROM memory_vectors WHERE rowid = old.rowid;
    END;
    CREATE TRIGGER IF NOT EXISTS memory_vectors_update AFTER UPDATE OF embedding, user_id, agent_id, run_id ON memories BEGIN
      DELETE FROM memory_vectors WHERE rowid = old.rowid;
      INSERT INTO memory_vectors (rowid, user_id, agent_id, run_id, vector) VALUES (${compactOf("new")});
    END;
  `;
}

/** The dimension the compact index was made for, or undefined when the file has none. */
export function compactIndexDimension(handle: SqliteHandle): number | undefined {
  const table = handle.statement("SELECT sql FROM sqlite_master WHERE name = 'memory_vectors'").get() as { sql: string } | undefined;
  const declared = table && /INT8\[(\d+)\]/i.exec(table.sql)?.[1];
  return declared ? Number(declared) : undefined;
}

/**
 * Makes the compact index for `dimension` once it is known: files made before it get one, filled
 * from their stored vectors in one transaction (about 3–5 s per 100,000 memories), and a reset store
 * made for another dimension gets a new one. Writes nothing when the index is already there, or on a
 * file known to be damaged (search then scans the scope).
 */
export function ensureCompactIndex(handle: SqliteHandle, dimension: number): void {
  if (handle.damaged || compactIndexDimension(handle) === dimension) return;
  handle.transaction(() => {
    if (compactIndexDimension(handle) === dimension) return;
    handle.db.exec(`
      DROP TRIGGER IF EXISTS memory_vectors_insert;
      DROP TRIGGER IF EXISTS memory_vectors_delete;
      DROP TRIGGER IF EXISTS memory_vectors_update;
      DROP TABLE IF EXISTS memory_vectors;
      ${compactIndexSchema(dimension)}
      INSERT INTO memory_vectors (rowid, user_id, agent_id, run_id, vector)
        SELECT rowid, ifnull(user_id, ''), ifnull(agent_id, ''), ifnull(run_id, ''), vec_quantize_int8(vec_normalize(embedding), 'unit')
        FROM memories;
    `);
  });
}
