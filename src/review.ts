import { z } from "zod";
import type { Components } from "./components.js";
import { InvalidInputError } from "./errors.js";
import { lifecycleOf, parseDuration } from "./lifecycle.js";
import { toItem } from "./memory-item.js";
import { originOf } from "./memory-origin.js";
import type { Runtime } from "./runtime.js";
import { type Scope, sameScope, scopeOf } from "./scope.js";
import type { MemoryRecord } from "./stores/vector-store.js";
import type { HistoryRecord, MemoryItem } from "./types.js";

/** Where a memory came from, as far as Engram recorded it. */
export type ReviewSource =
  /** Stored as said (no model): the memory's text is the message; `role` and `name` say who said it. */
  | { kind: "verbatim"; role: "user" | "assistant"; name?: string }
  /** Written by the extraction model from a turn: `model` (`provider/modelId`) and the turn's text, when recorded. */
  | { kind: "extracted"; model?: string; turn?: string }
  /** Stored before Engram recorded sources. */
  | { kind: "unknown" };

/** A memory to check, with where it came from and every change it went through. */
export interface ReviewItem extends MemoryItem {
  source: ReviewSource;
  /** Every change of the memory, oldest first (its history). */
  history: HistoryRecord[];
  /** ISO 8601, when `review accept` marked it reviewed; absent until then (and again after its text changes). */
  reviewedAt?: string;
}

export interface ReviewOptions {
  /** Memories added or changed since then: a duration back from now (`"7d"`, `"24h"`) or a date. @default "7d" */
  since?: string | Date;
  /** At most this many, newest first. @default 50, at most 1000 */
  limit?: number;
  /** Leave out memories marked reviewed already. @default false */
  unreviewedOnly?: boolean;
}

export const reviewOptionsSchema = z.strictObject({
  since: z
    .union([z.string(), z.date()], { error: 'since is a duration back from now ("7d", "24h") or a date' })
    .refine(
      (value) =>
        value instanceof Date ? !Number.isNaN(value.getTime()) : parseDuration(value) !== undefined || !Number.isNaN(Date.parse(value)),
      {
        error: 'since is a duration back from now ("7d", "24h", "30m") or an ISO 8601 date',
      },
    )
    .optional(),
  limit: z
    .number()
    .int("limit must be a whole number")
    .min(1, "limit must be between 1 and 1000")
    .max(1000, "limit must be between 1 and 1000")
    .optional(),
  unreviewedOnly: z.boolean().optional(),
});

/** The instant `since` names, in milliseconds. */
export function sinceOf(since: string | Date, now: number): number {
  if (since instanceof Date) return since.getTime();
  const back = parseDuration(since);
  if (back !== undefined) return now - back;
  const at = Date.parse(since);
  if (Number.isNaN(at))
    throw new InvalidInputError({ message: `review(): since "${since}" is neither a duration nor a date.`, field: "since" });
  return at;
}

function sourceOf(record: MemoryRecord): ReviewSource {
  const origin = originOf(record.metadata);
  if (origin) return { kind: "verbatim", role: origin.role, ...(origin.name === undefined ? {} : { name: origin.name }) };
  const { source } = lifecycleOf(record.metadata);
  if (source) return { kind: "extracted", ...source };
  return { kind: "unknown" };
}

const newestFirst = (a: MemoryRecord, b: MemoryRecord) =>
  a.updatedAt === b.updatedAt
    ? a.createdAt === b.createdAt
      ? a.id < b.id
        ? 1
        : -1
      : a.createdAt < b.createdAt
        ? 1
        : -1
    : a.updatedAt < b.updatedAt
      ? 1
      : -1;

/**
 * The newest memories of `scopes` added or changed since `since` (by `updatedAt`), newest first,
 * each with its source and history. `components.store` must be the live view: expired memories
 * are never listed. With `exact`, only memories stored with exactly a scope's ids (every scope is
 * passed once).
 */
export async function reviewScopes(
  { store, history }: Pick<Components, "store" | "history">,
  runtime: Runtime,
  scopes: readonly Scope[],
  { since = "7d", limit = 50, unreviewedOnly = false }: ReviewOptions,
  exact: boolean,
): Promise<ReviewItem[]> {
  const from = sinceOf(since, runtime.now());
  const kept: MemoryRecord[] = [];
  for (const scope of scopes) {
    let cursor: string | undefined;
    do {
      const page = await store.list({ filter: { scope }, limit: 500, ...(cursor ? { cursor } : {}) });
      for (const record of page.records) {
        if (exact && !sameScope(record, scope)) continue;
        if (Date.parse(record.updatedAt) < from) continue;
        if (unreviewedOnly && lifecycleOf(record.metadata).reviewedAt !== undefined) continue;
        kept.push(record);
      }
      cursor = page.cursor;
      // Only the newest `limit` are kept while reading: a large scope is read once, not held.
      if (kept.length > limit * 4) kept.sort(newestFirst).splice(limit);
    } while (cursor);
  }
  const newest = kept.sort(newestFirst).slice(0, limit);
  return Promise.all(newest.map((record) => reviewItemOf(history, record)));
}

/** A memory with its source and history, as `review` lists it. */
export async function reviewItemOf(history: Components["history"], record: MemoryRecord): Promise<ReviewItem> {
  const entries = await history.list(record.id, scopeOf(record));
  const { reviewedAt } = lifecycleOf(record.metadata);
  return {
    ...toItem(record),
    source: sourceOf(record),
    history: entries.map(({ memoryId, event, previousValue, newValue, createdAt }) => ({
      memoryId,
      event,
      previousValue,
      newValue,
      createdAt,
    })),
    ...(reviewedAt === undefined ? {} : { reviewedAt }),
  };
}
