import { createHash } from "node:crypto";
import type { Scope } from "../scope.js";

/**
 * The outbox id of a turn: SHA-256 (hex) of its exact scope and its idempotency key. Keys are per
 * scope: the same key in two scopes gives two entries, and a repeat is a no-op only within one
 * scope, so whether a key was used tells nothing about another scope. The JSON array keeps every
 * part apart (an absent id is null, never the same as an empty one).
 */
export function outboxEntryId(scope: Scope, key: string): string {
  const parts = [scope.userId ?? null, scope.agentId ?? null, scope.runId ?? null, key];
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}
