import { InvalidScopeError, MissingScopeError, type Scope, scopeKeyFor, validateScope } from "../../src/index.js";
import { nullRecord, ownEntries, unreadable } from "../../src/internal/plain-data.js";

const scopeNames = new Set(["userId", "agentId", "runId"]);

/**
 * Reads the scope ids out of a framework's per-call context (a RequestContext, a RunContext's
 * context, providerOptions.memory). Other keys are the app's business and ignored, except
 * misspelled scope keys (`user_id`, `userID`), which are refused with the right name.
 *
 * @param entries the context's key/value pairs (for a plain object, `objectEntries`: own properties only).
 * @param missing the MissingScopeError message, saying where this framework takes the scope from.
 * @throws MissingScopeError naming `call` when no id is found.
 * @throws InvalidInputError when reading the context throws.
 */
export function readScope(
  call: string,
  entries: Iterable<readonly [string, unknown]> | undefined,
  { missing }: { missing?: string } = {},
): Scope {
  const picked = new Map<string, unknown>();
  let pairs: (readonly [string, unknown])[];
  try {
    pairs = [...(entries ?? [])];
  } catch (error) {
    throw unreadable(call, "the context", error);
  }
  for (const [key, value] of pairs) {
    if (typeof key !== "string") continue;
    if (scopeNames.has(key)) {
      if (value !== undefined) picked.set(key, value);
      continue;
    }
    const right = scopeKeyFor(key);
    // A bare "user" or "agent" key is ordinary app data (a user object), not a misspelled id.
    if (right && value !== undefined && key !== right.slice(0, -2)) {
      throw new InvalidScopeError({ key, message: `Unknown scope key "${key}" in ${call}: did you mean "${right}"?` });
    }
  }
  if (picked.size === 0) throw new MissingScopeError({ call, message: missing });
  try {
    return validateScope(call, nullRecord(picked));
  } catch (error) {
    // Only empty ids were given: as good as none.
    if (MissingScopeError.isInstance(error)) throw new MissingScopeError({ call, message: missing });
    throw error;
  }
}

/** Own key/value pairs of a plain object, for `readScope`: inherited properties are never scope. */
export function objectEntries(value: unknown, call = "the call"): [string, unknown][] {
  return value != null && typeof value === "object" ? ownEntries(value, call, "context") : [];
}

/**
 * The scope searched before a call: with `searchAcrossRuns`, the memories of every run of the
 * user. Only a userId widens a search across runs: without one, the run is the boundary (the
 * visitors of one agent are different people).
 */
export function recallScope(scope: Scope, searchAcrossRuns: boolean): Scope {
  if (!searchAcrossRuns || scope.userId === undefined) return scope;
  const { runId: _runId, ...rest } = scope;
  return rest;
}
