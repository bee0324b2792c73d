import type { Scope } from "../scope.js";

/** The key an entity name is compared by: NFKC, whitespace folded, lower case ("Bob", " BOB " are one entity). */
export function entityKey(name: string): string {
  return name.normalize("NFKC").replace(/\s+/gu, " ").trim().toLowerCase();
}

/** The exact scope of a memory as one string, for unique constraints (SQL compares NULLs as distinct). */
export const exactScopeKey = (scope: Scope): string => JSON.stringify([scope.userId ?? null, scope.agentId ?? null, scope.runId ?? null]);
