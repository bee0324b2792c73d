import { z } from "zod";
import { InvalidInputError } from "./errors.js";
import { lifecycleKey } from "./memory-origin.js";
import type { Plan } from "./plan.js";
import type { Scope } from "./scope.js";
import type { MemoryRecord } from "./stores/vector-store.js";

// What Engram keeps about a memory's life beside its text, in the reserved metadata key
// "engram.lifecycle": when it expires, where it came from, when a person reviewed it. Kept in
// metadata so that every store, whatever its schema, holds it without a migration.

/** Where an extracted memory came from: the model that wrote it and the turn it read. */
export interface MemorySource {
  /** `provider/modelId` of the extraction model. */
  readonly model?: string;
  /** The turn's messages as `role: text` lines, cut at `SOURCE_TURN_CHARS`. */
  readonly turn?: string;
}

export interface Lifecycle {
  /** ISO 8601: from this instant on the memory is never returned, and the next sweep deletes it. */
  readonly expiresAt?: string;
  readonly source?: MemorySource;
  /** ISO 8601: when `review accept` marked it reviewed (cleared when its text changes). */
  readonly reviewedAt?: string;
}

/** The longest source turn kept with an extracted memory. */
export const SOURCE_TURN_CHARS = 2_000;

const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === "object" && !Array.isArray(value);
const ownString = (object: Record<string, unknown>, key: string) =>
  Object.hasOwn(object, key) && typeof object[key] === "string" ? (object[key] as string) : undefined;

/** The lifecycle recorded in a memory's metadata (empty when none). */
export function lifecycleOf(metadata: Readonly<Record<string, unknown>>): Lifecycle {
  const value = Object.hasOwn(metadata, lifecycleKey) ? metadata[lifecycleKey] : undefined;
  if (!isRecord(value)) return {};
  const expiresAt = ownString(value, "expiresAt");
  const reviewedAt = ownString(value, "reviewedAt");
  const source = Object.hasOwn(value, "source") && isRecord(value.source) ? value.source : undefined;
  const model = source && ownString(source, "model");
  const turn = source && ownString(source, "turn");
  return {
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(source ? { source: { ...(model === undefined ? {} : { model }), ...(turn === undefined ? {} : { turn }) } } : {}),
    ...(reviewedAt === undefined ? {} : { reviewedAt }),
  };
}

/** `metadata` with `lifecycle` recorded in it (the key left out when the lifecycle is empty). */
export function withLifecycle(metadata: Readonly<Record<string, unknown>>, lifecycle: Lifecycle): Record<string, unknown> {
  const { [lifecycleKey]: _previous, ...rest } = metadata;
  return Object.keys(lifecycle).length === 0 ? rest : { ...rest, [lifecycleKey]: { ...lifecycle } };
}

/** When the memory expires, in milliseconds since the epoch, or undefined when it never does. */
export function expiryOf(record: Pick<MemoryRecord, "metadata">): number | undefined {
  const at = lifecycleOf(record.metadata).expiresAt;
  const time = at === undefined ? Number.NaN : Date.parse(at);
  return Number.isNaN(time) ? undefined : time;
}

/** True from the instant the memory expires. `now` may be a clock, read only for a memory that has an expiry. */
export function isExpired(record: Pick<MemoryRecord, "metadata">, now: number | (() => number)): boolean {
  const at = expiryOf(record);
  return at !== undefined && at <= (typeof now === "function" ? now() : now);
}

// ── durations and expiry options ───────────────────────────────────────────────────────────────

const units = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** Longest ttl accepted: about 100 years (a Date cannot hold much more past now anyway). */
const MAX_TTL_MS = 100 * 365 * units.d;
const durationPattern = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/;
const durationMessage = 'a ttl is a duration like "30m", "12h", "7d", "2w" (units ms, s, m, h, d, w) or a number of milliseconds';

/** A duration ("7d", "12h", "30m", "2w", "90s", "500ms", or milliseconds as a number) in milliseconds, or undefined when it is not one. */
export function parseDuration(value: unknown): number | undefined {
  let ms: number;
  if (typeof value === "number") ms = value;
  else if (typeof value === "string") {
    const match = durationPattern.exec(value);
    if (!match) return undefined;
    ms = Number(match[1]) * units[match[2] as keyof typeof units];
  } else return undefined;
  return Number.isFinite(ms) && ms >= 1 && ms <= MAX_TTL_MS ? Math.round(ms) : undefined;
}

/** A ttl: a duration string or milliseconds, checked, kept as given. */
export const durationSchema = z
  .union([z.string(), z.number()], { error: durationMessage })
  .refine((value) => parseDuration(value) !== undefined, {
    error: `${durationMessage}, from 1 ms to 100 years`,
  });

/** `expiresAt`: a Date or an ISO 8601 string (as ISO), or null for "never, whatever the default". */
export const expiresAtSchema = z
  .union(
    [
      z.null(),
      z.date().refine((date) => !Number.isNaN(date.getTime()), "expiresAt must be a valid Date"),
      z.string().refine((value) => !Number.isNaN(Date.parse(value)), "expiresAt must be an ISO 8601 date, e.g. 2026-12-31T00:00:00Z"),
    ],
    { error: "expiresAt must be a Date, an ISO 8601 date string, or null (never expires)" },
  )
  .transform((value) => (value === null ? null : new Date(value).toISOString()));

/** The default ttl per scope level (`new Memory({ ttl })`). */
export const ttlDefaultsSchema = z.strictObject({
  /** Memories whose most specific scope id is a `runId`. */
  run: durationSchema.optional(),
  /** Memories whose most specific scope id is an `agentId` (no `runId`). */
  agent: durationSchema.optional(),
  /** Memories with a `userId` only. */
  user: durationSchema.optional(),
});
export type TtlDefaults = z.output<typeof ttlDefaultsSchema>;

/** The default ttl of a scope: its most specific id decides (run, then agent, then user); a level without a default never expires. */
export function defaultTtl(scope: Scope, defaults: TtlDefaults | undefined): string | number | undefined {
  if (!defaults) return undefined;
  if (scope.runId !== undefined) return defaults.run;
  if (scope.agentId !== undefined) return defaults.agent;
  return defaults.user;
}

/**
 * When memories an add creates expire: its own `expiresAt` (null: never), else its `ttl`, else the
 * scope's default ttl, counted from `now()` (read only when needed). Null when they never expire.
 *
 * @throws InvalidInputError when both are given, or `expiresAt` is not after `now`.
 */
export function resolveExpiry(
  call: string,
  given: { expiresAt?: string | null; ttl?: string | number },
  scope: Scope,
  defaults: TtlDefaults | undefined,
  now: () => number,
): string | null {
  if (given.expiresAt !== undefined && given.ttl !== undefined) {
    throw new InvalidInputError({
      message: `${call}(): pass either expiresAt or ttl, not both.`,
      field: "ttl",
    });
  }
  if (given.expiresAt === null) return null;
  if (given.expiresAt !== undefined) {
    if (Date.parse(given.expiresAt) <= now()) {
      throw new InvalidInputError({
        message: `${call}(): expiresAt ${given.expiresAt} is not in the future: the memory would never be returned. Pass a later date, or a ttl.`,
        field: "expiresAt",
      });
    }
    return given.expiresAt;
  }
  const ttl = given.ttl ?? defaultTtl(scope, defaults);
  const ms = ttl === undefined ? undefined : parseDuration(ttl);
  return ms === undefined ? null : new Date(now() + ms).toISOString();
}

/**
 * Records the add's lifecycle on the memories its plan creates or rewrites (ADD, UPDATE): the
 * expiry is set anew (null: none), any review mark cleared (the text changed), and the source
 * recorded when given. Memories the add only repeats (NONE) keep theirs.
 */
export function stampPlan(plan: Plan, { expiresAt, source }: { expiresAt: string | null; source?: MemorySource }): Plan {
  const changed = new Set(plan.results.filter((result) => result.event === "ADD" || result.event === "UPDATE").map((result) => result.id));
  plan.upsert = plan.upsert.map((record) => {
    if (!changed.has(record.id)) return record;
    const { expiresAt: _expiry, reviewedAt: _reviewed, source: _source, ...rest } = lifecycleOf(record.metadata);
    const lifecycle: Lifecycle = { ...rest, ...(expiresAt ? { expiresAt } : {}), ...(source ? { source } : {}) };
    return { ...record, metadata: withLifecycle(record.metadata, lifecycle) };
  });
  return plan;
}

/** The source turn of an extraction, as `role: text` lines, cut to `SOURCE_TURN_CHARS`. */
export function sourceTurn(messages: readonly { role: string; content: string; name?: string }[]): string {
  const text = messages
    .filter((message) => message.role !== "system")
    .map((message) => `${message.name ?? message.role}: ${message.content}`)
    .join("\n");
  return text.length > SOURCE_TURN_CHARS ? `${text.slice(0, SOURCE_TURN_CHARS - 1)}…` : text;
}
