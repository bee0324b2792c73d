import { InvalidScopeError, MissingScopeError, type Scope, scopeKeyFor, validateScope } from "../../src/index.js";

const scopeNames = new Set(["userId", "agentId", "runId"]);

/**
 * Reads the scope ids out of a framework's per-call context (a RequestContext, a RunContext's
 * context, providerOptions.memory). Other keys are the app's business and ignored, except
 * misspelled scope keys (`user_id`, `userID`), which are refused with the right name.
 *
 * @param entries the context's key/value pairs.
 * @param missing the MissingScopeError message, saying where this framework takes the scope from.
 * @throws MissingScopeError naming `call` when no id is found.
 */
export function readScope(
  call: string,
  entries: Iterable<readonly [string, unknown]> | undefined,
  { missing }: { missing?: string } = {},
): Scope {
  const picked: Record<string, unknown> = {};
  for (const [key, value] of entries ?? []) {
    if (scopeNames.has(key)) {
      if (value !== undefined) picked[key] = value;
      continue;
    }
    const right = scopeKeyFor(key);
    // A bare "user" or "agent" key is ordinary app data (a user object), not a misspelled id.
    if (right && value !== undefined && key !== right.slice(0, -2)) {
      throw new InvalidScopeError({ key, message: `Unknown scope key "${key}" in ${call}: did you mean "${right}"?` });
    }
  }
  if (Object.keys(picked).length === 0) throw new MissingScopeError({ call, message: missing });
  try {
    return validateScope(call, picked);
  } catch (error) {
    // Only empty ids were given: as good as none.
    if (MissingScopeError.isInstance(error)) throw new MissingScopeError({ call, message: missing });
    throw error;
  }
}

/** Key/value pairs of a plain object, for `readScope`. */
export function objectEntries(value: unknown): [string, unknown][] {
  return value != null && typeof value === "object" ? Object.entries(value) : [];
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
