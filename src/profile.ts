import { createHash } from "node:crypto";
import { InvalidInputError } from "./errors.js";
import type { HistoryEntry, HistoryLog } from "./history/history-log.js";
import { ownEntries, textProblem } from "./internal/plain-data.js";
import { isoNow, type Runtime } from "./runtime.js";
import { scopeOf, type ValidScope } from "./scope.js";
import type { HistoryRecord } from "./types.js";

/** The profile of one scope: a short text always injected with the memories, as `key: value` lines or free text. */
export interface Profile {
  /** The whole profile text. */
  text: string;
  /** Its `key: value` lines, by key (lines of another shape are in `text` only). */
  fields: Record<string, string>;
  /** ISO 8601: when it last changed. */
  updatedAt: string;
}

/** What `setProfile` takes: a whole new text (null or "" clears it), or fields merged into it (a null value removes its line). */
export type ProfileUpdate = string | null | Record<string, string | null>;

export const defaultProfileMaxTokens = 300;

/**
 * The profile lives in the history log under an id of its exact scope: each change is an entry
 * with the text before and after, so its history, purge by scope and reset are those of memories,
 * on every backend (SQLite, PostgreSQL, in-memory) with no new table. The vector store never holds
 * it, so searches never return it.
 */
export const profilePrefix = "profile:";

export function profileId(scope: ValidScope): string {
  const key = JSON.stringify([scope.userId ?? null, scope.agentId ?? null, scope.runId ?? null]);
  return profilePrefix + createHash("sha256").update(key).digest("hex").slice(0, 32);
}

export function isProfileId(id: string): boolean {
  return id.startsWith(profilePrefix);
}

/**
 * A token count that errs high: ~4 characters per token for ASCII text (as GPT and Claude
 * tokenizers average on English), one per character otherwise (CJK, emoji, accented scripts).
 */
export function estimateTokens(text: string): number {
  let ascii = 0;
  let other = 0;
  for (const char of text) {
    if (char.charCodeAt(0) < 128) ascii++;
    else other++;
  }
  return Math.ceil(ascii / 4) + other;
}

const fieldKey = /^[\p{L}\p{N}][\p{L}\p{N} _-]{0,39}$/u;
const fieldLine = /^([\p{L}\p{N}][\p{L}\p{N} _-]{0,39}):\s*(.*)$/u;

export function fieldsOf(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = fieldLine.exec(line.trim());
    if (match) fields[(match[1] as string).trim()] = (match[2] as string).trim();
  }
  return fields;
}

const oneLine = (value: string) => value.replace(/\s+/g, " ").trim();

/** The text after `update` is applied to `current` (undefined when the profile is cleared). */
export function applyUpdate(call: string, current: string | undefined, update: ProfileUpdate): string | undefined {
  if (update === null) return undefined;
  if (typeof update === "string") return update.trim() === "" ? undefined : update.trim();
  if (typeof update !== "object" || Array.isArray(update)) {
    throw new InvalidInputError({
      message: `${call}(): pass the profile as a string, null to clear it, or an object of fields such as { name: "Ana" }.`,
      field: "profile",
    });
  }
  const lines = current === undefined ? [] : current.split("\n");
  for (const [key, value] of ownEntries(update, `${call}()`, "profile")) {
    if (!fieldKey.test(key)) {
      throw new InvalidInputError({
        message: `${call}(): profile field name "${key}" is not usable: use 1-40 letters, digits, spaces, "_" or "-", starting with a letter or digit.`,
        field: "profile",
      });
    }
    if (value !== null && typeof value !== "string") {
      throw new InvalidInputError({
        message: `${call}(): profile field "${key}" must be a string, or null to remove it.`,
        field: "profile",
      });
    }
    const at = lines.findIndex((line) => fieldLine.exec(line.trim())?.[1]?.trim().toLowerCase() === key.toLowerCase());
    const text = value === null ? "" : oneLine(value);
    if (text === "") {
      if (at !== -1) lines.splice(at, 1);
    } else if (at === -1) lines.push(`${key}: ${text}`);
    else lines[at] = `${key}: ${text}`;
  }
  const merged = lines.join("\n").trim();
  return merged === "" ? undefined : merged;
}

export function checkBudget(call: string, text: string, maxTokens: number): void {
  const tokens = estimateTokens(text);
  if (tokens > maxTokens) {
    throw new InvalidInputError({
      message: `${call}(): the profile would be about ${tokens} tokens; the budget is ${maxTokens}. Keep it to the few facts every reply needs (search finds the rest), or raise profile.maxTokens in the Memory options.`,
      field: "profile",
    });
  }
}

const asProfile = (text: string, updatedAt: string): Profile => ({ text, fields: fieldsOf(text), updatedAt });

/** The profile's entries, oldest first. */
export async function profileEntries(history: HistoryLog, scope: ValidScope): Promise<HistoryEntry[]> {
  return history.list(profileId(scope), scope);
}

/** The current profile: the newest entry's text (null after a clear, or once purged). */
export function currentProfile(entries: readonly HistoryEntry[]): Profile | null {
  const last = entries.at(-1);
  return last?.newValue ? asProfile(last.newValue, last.createdAt) : null;
}

/** Appends the change from `entries`' current text to `next`; returns the new profile. Nothing is written when nothing changes. */
export async function writeProfile(
  history: HistoryLog,
  runtime: Runtime,
  scope: ValidScope,
  entries: readonly HistoryEntry[],
  next: string | undefined,
): Promise<Profile | null> {
  const current = currentProfile(entries);
  if ((current?.text ?? undefined) === next) return current;
  const createdAt = isoNow(runtime);
  await history.append([profileEntry(runtime.id(), scope, current?.text, next, createdAt)]);
  return next === undefined ? null : asProfile(next, createdAt);
}

/** The history entry of the change of `scope`'s profile from `previous` to `next` (undefined: none). */
export function profileEntry(
  id: string,
  scope: ValidScope,
  previous: string | undefined,
  next: string | undefined,
  createdAt: string,
): HistoryEntry {
  return {
    id,
    memoryId: profileId(scope),
    event: next === undefined ? "DELETE" : previous === undefined ? "ADD" : "UPDATE",
    previousValue: previous ?? null,
    newValue: next ?? null,
    ...scopeOf(scope),
    createdAt,
  };
}

/** One change the extraction model proposes to the profile: a field set to a value, or removed (null). */
export interface ProfileEdit {
  field: string;
  value: string | null;
}

// A field named like a scope id would read as if the profile belonged elsewhere.
const scopeLikeField = /^(user|agent|run)[ _-]?id$|^scope$/i;

/**
 * The profile after the model's edits, applied in order to `current`. An edit with an unusable
 * field name or value, or one that would take the profile over `maxTokens`, is left out and its
 * reason listed in `problems`; the others still apply.
 */
export function applyProfileEdits(
  current: string | undefined,
  edits: readonly ProfileEdit[],
  maxTokens: number,
): { text: string | undefined; problems: string[] } {
  let text = current;
  const problems: string[] = [];
  for (const { field, value } of edits) {
    const label = `profile edit of field ${JSON.stringify(field)}`;
    if (!fieldKey.test(field) || scopeLikeField.test(field)) {
      problems.push(`Ignored the ${label}: a field name is 1-40 letters, digits, spaces, "_" or "-", and never a scope id.`);
      continue;
    }
    const problem = value === null ? undefined : textProblem(value);
    if (problem) {
      problems.push(`Ignored the ${label}: its value ${problem}.`);
      continue;
    }
    const next = applyUpdate("add", text, { [field]: value });
    if (next !== undefined && estimateTokens(next) > maxTokens) {
      problems.push(
        `Ignored the ${label}: the profile would be about ${estimateTokens(next)} tokens; the budget is ${maxTokens} (profile.maxTokens).`,
      );
      continue;
    }
    text = next;
  }
  return { text, problems };
}

export function profileRecords(entries: readonly HistoryEntry[]): HistoryRecord[] {
  return entries.map(({ memoryId, event, previousValue, newValue, createdAt }) => ({
    memoryId,
    event,
    previousValue,
    newValue,
    createdAt,
  }));
}
