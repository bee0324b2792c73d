import { type Command, InvalidArgumentError } from "commander";
import { InvalidInputError, MissingScopeError } from "../errors.js";
import { type Scope, validateScope } from "../scope.js";

/** The scope flags as commander parses them. */
export interface ScopeFlags {
  user?: string;
  agent?: string;
  run?: string;
  allScopes?: boolean;
}

/** Adds --user / --agent / --run (and, for commands that may span every scope, --all-scopes). */
export function scopeFlags(command: Command, { allScopes = false }: { allScopes?: boolean } = {}): Command {
  command
    .option("-u, --user <id>", "user id of the scope")
    .option("-a, --agent <id>", "agent id of the scope")
    .option("-r, --run <id>", "run id of the scope");
  if (allScopes) command.option("--all-scopes", "every scope, explicitly (instead of --user / --agent / --run)");
  return command;
}

/** True when at least one of --user / --agent / --run was given. */
export const hasScopeFlags = (flags: ScopeFlags) => flags.user !== undefined || flags.agent !== undefined || flags.run !== undefined;

/** The ids given, as a possibly empty scope (no validation). */
export function givenScope(flags: ScopeFlags): Scope {
  const scope: Scope = {};
  if (flags.user !== undefined) scope.userId = flags.user;
  if (flags.agent !== undefined) scope.agentId = flags.agent;
  if (flags.run !== undefined) scope.runId = flags.run;
  return scope;
}

/** @throws MissingScopeError when no scope flag was given, InvalidScopeError when an id is not valid. */
export function scopeOf(flags: ScopeFlags, command: string): Scope {
  const scope = givenScope(flags);
  if (Object.keys(scope).length === 0) {
    throw new MissingScopeError({
      call: command,
      message: `${command} needs a scope: pass --user, --agent and/or --run (ids are AND-ed; there is no global namespace).`,
    });
  }
  return { ...validateScope(command, scope) };
}

/** A scope, or every scope when --all-scopes says so explicitly; never both, never neither. */
export function scopeOrAll(flags: ScopeFlags, command: string): Scope | { allScopes: true } {
  const given = hasScopeFlags(flags);
  if (flags.allScopes && given) {
    throw new InvalidInputError({ message: `${command}: pass either --all-scopes or --user / --agent / --run, not both.` });
  }
  if (flags.allScopes) return { allScopes: true };
  if (!given) {
    throw new MissingScopeError({
      call: command,
      message: `${command} needs a scope: pass --user, --agent and/or --run, or --all-scopes for every scope.`,
    });
  }
  return scopeOf(flags, command);
}

export const isAllScopes = (scope: Scope | { allScopes: true }): scope is { allScopes: true } => "allScopes" in scope;

/** A parser for a whole-number flag within [min, max]. */
export function integer(name: string, { min, max }: { min: number; max: number }) {
  return (value: string) => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < min || number > max)
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    return number;
  };
}

export function fraction(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0 || number > 1) throw new InvalidArgumentError("--threshold must be a number from 0 to 1.");
  return number;
}

/** `key=value`, repeatable; the value is read as JSON when it is a number, boolean or null, else as text. */
export function collectFilter(entry: string, previous: Record<string, string | number | boolean | null> = {}) {
  const at = entry.indexOf("=");
  if (at <= 0)
    throw new InvalidArgumentError('filters look like key=value, e.g. --filter topic=db or --filter session=3 (quote "3" for text).');
  const key = entry.slice(0, at);
  const raw = entry.slice(at + 1);
  let value: string | number | boolean | null = raw;
  try {
    const parsed = JSON.parse(raw);
    if (parsed === null || ["number", "boolean", "string"].includes(typeof parsed)) value = parsed;
  } catch {
    value = raw;
  }
  return { ...previous, [key]: value };
}

/** A parser for a flag whose value is a JSON object. */
export function jsonObject(flag: string) {
  return (value: string) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new InvalidArgumentError(`${flag} must be a JSON object, e.g. '{"topic":"databases"}'.`);
    }
    if (parsed == null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new InvalidArgumentError(`${flag} must be a JSON object, e.g. '{"topic":"databases"}'.`);
    }
    return parsed as Record<string, unknown>;
  };
}
