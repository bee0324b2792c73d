import { type Scope, type ScopeKey, scopeKeys } from "../scope.js";
import type { ScopeCount } from "../stores/vector-store.js";

/** The SQL column of each scope id, in the stores and histories that keep them as columns. */
export const scopeColumns = { userId: "user_id", agentId: "agent_id", runId: "run_id" } as const satisfies Record<ScopeKey, string>;

/** The scope ids of a row with `user_id`, `agent_id` and `run_id` columns; a NULL column is an absent id. */
export function scopeOfRow(row: { readonly user_id?: unknown; readonly agent_id?: unknown; readonly run_id?: unknown }): Scope {
  const scope: Scope = {};
  for (const key of scopeKeys) {
    const value = row[scopeColumns[key]];
    if (value != null) scope[key] = String(value);
  }
  return scope;
}

/** Absent first, then by UTF-16 code units. */
function compareIds(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  return a < b ? -1 : 1;
}

/**
 * The order of `ScopeEnumerable.scopes()`: by userId, then agentId, then runId, an absent id before
 * any other (as SQL orders `NULLS FIRST`).
 */
export function compareScopes(a: Scope, b: Scope): number {
  return compareIds(a.userId, b.userId) || compareIds(a.agentId, b.agentId) || compareIds(a.runId, b.runId);
}

/**
 * `ScopeEnumerable.scopes()` for a store that reads its records' scopes one by one: each exact
 * combination of ids with its count, in `compareScopes` order. Keeps one counter per scope, not
 * the records, so it can read a large store page by page (pass an async generator).
 */
export async function countScopes(scopes: Iterable<Scope> | AsyncIterable<Scope>): Promise<ScopeCount[]> {
  const counts = new Map<string, { scope: Scope; count: number }>();
  for await (const scope of scopes) {
    const key = JSON.stringify(scopeKeys.map((k) => scope[k] ?? null));
    const entry = counts.get(key);
    if (entry) entry.count++;
    else {
      const exact: Scope = {};
      for (const k of scopeKeys) if (scope[k] !== undefined) exact[k] = scope[k];
      counts.set(key, { scope: exact, count: 1 });
    }
  }
  return [...counts.values()].map(({ scope, count }) => ({ ...scope, count })).sort(compareScopes);
}
