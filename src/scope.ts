import { InvalidScopeError, MissingScopeError } from "./errors.js";
import { isArray, nullRecord, ownEntries } from "./internal/plain-data.js";

/**
 * Whose memory a call reads or writes. At least one id is required on every call.
 *
 * Ids given are AND-ed exact matches: `{ userId: "alice" }` covers all of alice's memories, of
 * every agent and run; `{ userId: "alice", agentId: "coder" }` only that agent's slice.
 */
export type Scope = {
  userId?: string;
  agentId?: string;
  runId?: string;
};

/** A scope that passed validation: at least one id, each a valid id. */
export type ValidScope = Readonly<Scope> & { readonly __valid: true };

export const scopeKeys = ["userId", "agentId", "runId"] as const;
export type ScopeKey = (typeof scopeKeys)[number];

export const MAX_SCOPE_ID_LENGTH = 256;

// A Map, not an object: a key such as "constructor" or "__proto__" must find nothing.
const misspellings = new Map<string, ScopeKey>();
for (const key of scopeKeys) {
  const base = key.slice(0, -2); // "user"
  for (const variant of [`${base}_id`, `${base}ID`, `${base}Id`.toLowerCase(), `${base}-id`, base, `${base}_ID`]) {
    if (variant !== key) misspellings.set(variant, key);
  }
}

const isScopeKey = (key: string): key is ScopeKey => (scopeKeys as readonly string[]).includes(key);

/** Suggests the right scope key for a misspelled one (`user_id` → `userId`), or undefined. */
export function scopeKeyFor(key: string): ScopeKey | undefined {
  if (isScopeKey(key)) return key;
  return misspellings.get(key) ?? misspellings.get(key.toLowerCase());
}

// Printable: no control, format, surrogate, unassigned or line/paragraph separator characters.
const unprintable = /[\p{Cc}\p{Cf}\p{Cs}\p{Cn}\p{Zl}\p{Zp}]/u;

function checkId(key: ScopeKey, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") {
    throw new InvalidScopeError({
      key,
      message: `${key} must be a string, got ${value === null ? "null" : typeof value}. Pass the id as a string, or leave the key out.`,
    });
  }
  return value;
}

/**
 * Validates a scope and returns it frozen and reduced to its ids. Only the object's own properties
 * are read (each once): an inherited `userId` is no id, and `__proto__` is an unknown key.
 *
 * @param call name of the public call, used in error messages.
 * @param input the caller's object; keys other than scope keys must be removed by the caller first
 *   unless `strict` is true, in which case any other key is an error.
 * @throws MissingScopeError when no non-empty id is given.
 * @throws InvalidScopeError for a misspelled key (`user_id`), a non-string, empty, padded, oversized
 *   or unprintable id.
 * @throws InvalidInputError when reading the object throws (a getter, a proxy).
 */
export function validateScope(call: string, input: unknown, { strict = true }: { strict?: boolean } = {}): ValidScope {
  if (input == null || typeof input !== "object" || isArray(input, `${call}()`, "scope")) {
    throw new MissingScopeError({ call });
  }
  const given = new Map<ScopeKey, unknown>();
  for (const [key, value] of ownEntries(input, `${call}()`, "scope")) {
    if (isScopeKey(key)) {
      given.set(key, value);
      continue;
    }
    const suggestion = scopeKeyFor(key);
    if (suggestion) {
      throw new InvalidScopeError({
        key,
        message: `Unknown scope key "${key}" in ${call}(): did you mean "${suggestion}"? Scope keys are userId, agentId and runId.`,
      });
    }
    if (strict) {
      throw new InvalidScopeError({
        key,
        message: `Unknown key "${key}" in the scope of ${call}(). Scope keys are userId, agentId and runId.`,
      });
    }
  }

  const scope: Scope = {};
  let blank = 0;
  for (const key of scopeKeys) {
    if (!given.has(key)) continue;
    const raw = given.get(key);
    if (raw === null) {
      blank++;
      continue;
    }
    const value = checkId(key, raw);
    if (value === undefined) continue;
    if (value.trim() === "") {
      blank++;
      continue;
    }
    if (value !== value.trim()) {
      throw new InvalidScopeError({
        key,
        message: `${key} "${value}" has leading or trailing whitespace. Trim it before passing it: ids are matched exactly.`,
      });
    }
    if (value.length > MAX_SCOPE_ID_LENGTH) {
      throw new InvalidScopeError({
        key,
        message: `${key} is ${value.length} characters long; ids are at most ${MAX_SCOPE_ID_LENGTH}. Use a shorter id, e.g. a hash of the long one.`,
      });
    }
    if (unprintable.test(value)) {
      throw new InvalidScopeError({
        key,
        message: `${key} contains a control or unprintable character. Ids must be printable text.`,
      });
    }
    scope[key] = value;
  }

  if (Object.keys(scope).length === 0) throw new MissingScopeError({ call });
  if (blank > 0) {
    // An empty id next to a real one would silently widen the scope (e.g. all users of an agent).
    const key = scopeKeys.find((k) => given.has(k) && (given.get(k) === null || (given.get(k) as string).trim() === ""));
    throw new InvalidScopeError({
      key: key ?? "userId",
      message: `${key} is empty in ${call}(). Pass a non-empty id, or leave the key out if the call should cover every ${key?.slice(0, -2)}.`,
    });
  }
  return Object.freeze(scope) as ValidScope;
}

/**
 * Splits an options object into its scope ids (and misspellings of them) and the rest, reading its
 * own properties only, each once. Both parts are null-prototype records.
 */
export function splitScope<T extends object>(options: T, where = "the call"): { scope: Record<string, unknown>; rest: Omit<T, ScopeKey> } {
  const scope = nullRecord();
  const rest = nullRecord();
  for (const [key, value] of ownEntries(options, where, "")) {
    if (scopeKeyFor(key)) scope[key] = value;
    else rest[key] = value;
  }
  return { scope, rest: rest as Omit<T, ScopeKey> };
}

/** The scope ids of a record (or any object carrying them), without its other fields. */
export function scopeOf(record: Scope): Scope {
  const scope: Scope = {};
  for (const key of scopeKeys) if (record[key] !== undefined) scope[key] = record[key];
  return scope;
}

/** True when a record with these scope columns lies inside `scope` (AND of the given ids). */
export function scopeContains(scope: Scope, record: Scope): boolean {
  for (const key of scopeKeys) {
    const want = scope[key];
    if (want !== undefined && record[key] !== want) return false;
  }
  return true;
}

/** True when both scopes have exactly the same ids. */
export function sameScope(a: Scope, b: Scope): boolean {
  return scopeKeys.every((key) => (a[key] ?? undefined) === (b[key] ?? undefined));
}

/**
 * The key under which turns are serialised: turns of one user (else one agent, else one run) are
 * processed one at a time, so two of them never decide against the same memories at once.
 */
export function lockKeyOf(scope: Scope): string {
  if (scope.userId !== undefined) return `user:${scope.userId}`;
  if (scope.agentId !== undefined) return `agent:${scope.agentId}`;
  return `run:${scope.runId ?? ""}`;
}
