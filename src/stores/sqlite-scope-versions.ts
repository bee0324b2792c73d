import type { SqliteHandle } from "../internal/sqlite.js";
import { type StorePart, sqliteParts } from "../internal/sqlite-joint.js";
import { scopeConditions } from "../store-kit/filter.js";
import type { ScopeVersioned, StoreFilter, VectorStore } from "./vector-store.js";

// Per-scope change counters of sqliteStore: triggers bump the counter of each scope id a written or
// deleted row holds ("u" + user id, "a" + agent id, "r" + run id), in the writing transaction, so a
// change made by any connection (another process included) is seen by the next read.

const bump = (row: "new" | "old") => `
    INSERT INTO memory_scope_versions (key, version)
      SELECT key, 1 FROM (SELECT 'u' || ${row}.user_id AS key UNION ALL SELECT 'a' || ${row}.agent_id UNION ALL SELECT 'r' || ${row}.run_id)
      WHERE key IS NOT NULL
      ON CONFLICT (key) DO UPDATE SET version = version + 1;`;

const versionsSchema = `
  CREATE TABLE IF NOT EXISTS memory_scope_versions (key TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TRIGGER IF NOT EXISTS memory_scope_versions_insert AFTER INSERT ON memories BEGIN ${bump("new")}
  END;
  CREATE TRIGGER IF NOT EXISTS memory_scope_versions_update AFTER UPDATE ON memories BEGIN ${bump("old")} ${bump("new")}
  END;
  CREATE TRIGGER IF NOT EXISTS memory_scope_versions_delete AFTER DELETE ON memories BEGIN ${bump("old")}
  END;
`;

const prefixes = { userId: "u", agentId: "a", runId: "r" } as const;

function hasVersions(handle: SqliteHandle): boolean {
  return handle.statement("SELECT 1 AS found FROM sqlite_master WHERE name = 'memory_scope_versions_delete'").get() !== undefined;
}

/**
 * Adds `scopeVersion` to a SQLite store: `init` creates the counters and their triggers (once per
 * file; a damaged or read-only file, which takes no writes, gets none and its scopes have no version). Every row
 * inside a scope holds the scope's first id, so that id's counter changes with every write inside it.
 */
export function withScopeVersions<S extends VectorStore>(store: S): S & ScopeVersioned {
  const part = () => (store as unknown as { [sqliteParts]: StorePart })[sqliteParts];
  const init = store.init.bind(store);
  const versioned = (handle: SqliteHandle) => handle.guard("scope version", () => hasVersions(handle));
  return Object.assign(store, {
    async init(options: { dimension: number; modelId?: string }): Promise<void> {
      await init(options);
      const handle = await part().open();
      if (handle.damaged || versioned(handle)) return;
      try {
        handle.guard("init", () => handle.transaction(() => handle.db.exec(versionsSchema)));
      } catch {
        // A file this process cannot write (read-only): its scopes have no version, and search
        // ranks a large one from the store's candidates alone.
      }
    },
    async scopeVersion(filter: StoreFilter): Promise<string | undefined> {
      const handle = await part().open();
      const [first] = scopeConditions(filter);
      if (!first || !versioned(handle)) return undefined;
      const [key, value] = first;
      return handle.guard("scope version", () => {
        const row = handle.statement("SELECT version FROM memory_scope_versions WHERE key = ?").get(`${prefixes[key]}${value}`) as
          | { version: number }
          | undefined;
        return String(row?.version ?? 0);
      });
    },
  });
}
