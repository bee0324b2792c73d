import { z } from "zod";
import type { Message } from "./history/outbox.js";
import { durationSchema, expiresAtSchema } from "./lifecycle.js";
import type { Scope } from "./scope.js";
import { filtersSchema, metadataSchema, timestampSchema } from "./validation.js";

// The options of each public call: the interface says what callers may pass, the schema next to
// it checks it (the scope ids are split off and checked first, by `parseScoped`).

export interface AddOptions extends Scope {
  /** Aborts the call: it stops waiting, and nothing is written after the abort. */
  signal?: AbortSignal;
  /** Stored with every memory this call creates. Cannot hold scope keys. */
  metadata?: Record<string, unknown>;
  /** Extract facts with the llm (true) or store each message as it is (false). @default true with an llm, false without */
  infer?: boolean;
  /** When the turn happened (becomes `createdAt` of new memories). @default now */
  timestamp?: Date | string;
  /**
   * With a `userId` and a `runId`: profile edits from the extraction call go to the profile of the
   * scope without its `runId` (the one the adapters inject with `searchAcrossRuns`), not the run's.
   * @default false: the profile of exactly this scope
   */
  profileAcrossRuns?: boolean;
  /**
   * When the memories this add creates (or rewrites) expire: from then on they are never returned,
   * and a sweep deletes them. `null`: never, whatever the Memory's `ttl` default. Not with `ttl`.
   * @default the Memory's `ttl` default for the scope, else never
   */
  expiresAt?: Date | string | null;
  /** How long from now those memories live: `"7d"`, `"12h"`, `"30m"`, or milliseconds. Not with `expiresAt`. */
  ttl?: string | number;
}

/** One add of an `addMany` batch: the messages and what `add` takes with them. */
export interface AddManyItem extends Omit<AddOptions, "signal"> {
  messages: string | Message[];
}

export interface AddManyOptions {
  /** Aborts the call: it stops waiting, and no batch is written after the abort. */
  signal?: AbortSignal;
}

export interface EnqueueOptions extends Omit<AddOptions, "signal"> {
  /** Makes the enqueue idempotent within its scope: a second enqueue with the same key and scope is ignored. @default a random UUID */
  idempotencyKey?: string;
}

/** One add of an `enqueueMany` entry: its messages, when they were said and their metadata. */
export interface EnqueueManyItem {
  messages: string | Message[];
  /** When the turn happened (becomes `createdAt` of new memories). @default now */
  timestamp?: Date | string;
  /** Stored with the memories this add creates. */
  metadata?: Record<string, unknown>;
}

export interface EnqueueManyOptions extends Scope {
  /** Makes the entry idempotent within its scope, as `enqueue`'s. @default a random UUID */
  idempotencyKey?: string;
}

export interface SearchOptions extends Scope {
  /** Aborts the search: it stops waiting, and the embedder and store are told through their signals. */
  signal?: AbortSignal;
  /** @default 10, at most 100 */
  limit?: number;
  /**
   * Least `score` a result needs, in [0, 1]; 0 returns the best `limit` memories whatever their
   * score. Left out, a calibrated cut-off decides per query (see `search`).
   * @default the calibrated cut-off
   */
  threshold?: number;
  /** Most tokens (estimated, about 4 characters each) the results' texts may take together: results that would pass it are skipped. */
  maxTokens?: number;
  /** Each result carries `explain`, the parts of its score. @default false */
  explain?: boolean;
  /** Metadata equality filters, AND-ed. */
  filters?: Record<string, string | number | boolean | null>;
  /**
   * Graph memory (`new Memory({ graph: true })`): returns `relations`, those of the entities the
   * query names, and completes the results up to `limit` with memories reached through them
   * (docs/graph.md). @default false
   */
  graph?: boolean;
}

export interface GetAllOptions extends Scope {
  /** @default 100, at most 1000 */
  limit?: number;
  filters?: Record<string, string | number | boolean | null>;
}

export interface DeleteOptions extends Scope {
  /** Erase the text for good: from the memory, its history and pending turns, and from the database file. */
  purge?: boolean;
}

/** What `update` changes: the text, the metadata, or both (at least one). */
export interface UpdateChange {
  /** The new text (re-embedded); the previous text is kept in the memory's history. */
  text?: string;
  /** Replaces the memory's metadata as a whole (`{}` clears it). Cannot hold scope keys. */
  metadata?: Record<string, unknown>;
  /** A new expiry (`null`: never expires). Left out, the memory keeps its expiry, whatever else changes. */
  expiresAt?: Date | string | null;
  /** A new lifetime from now, like `add`'s `ttl`. Not with `expiresAt`. */
  ttl?: string | number;
}

/** What `delete` deleted. */
export interface DeleteResult {
  id: string;
  /** The text the memory had when it was deleted; null when a purge erased a memory deleted earlier. */
  memory: string | null;
  /** True when the text was erased for good (`purge`). */
  purged: boolean;
}

const signal = z.instanceof(AbortSignal, { error: "signal must be an AbortSignal" }).optional();

/** What an add records (and a queued turn stores in the outbox). */
export const turnSchema = z.strictObject({
  metadata: metadataSchema.optional(),
  infer: z.boolean().optional(),
  timestamp: timestampSchema.optional(),
  profileAcrossRuns: z.boolean().optional(),
  expiresAt: expiresAtSchema.optional(),
  ttl: durationSchema.optional(),
});
export const addSchema = turnSchema.extend({ signal });
export const updateChangeSchema = z.strictObject({
  text: z.unknown().optional(),
  metadata: metadataSchema.optional(),
  expiresAt: expiresAtSchema.optional(),
  ttl: durationSchema.optional(),
});
export const addManySchema = z.strictObject({ signal });
export const enqueueSchema = turnSchema.extend({
  idempotencyKey: z
    .string()
    .min(1, "idempotencyKey must be a non-empty string of at most 256 characters")
    .max(256, "idempotencyKey must be a non-empty string of at most 256 characters")
    .optional(),
});
export const enqueueManySchema = enqueueSchema.pick({ idempotencyKey: true });
/** An item of `enqueueMany` besides its messages. */
export const enqueueManyItemSchema = turnSchema.pick({ metadata: true, timestamp: true });
/** At most this many adds in one `enqueueMany` entry (the batch `addMany` embeds in one call). */
export const MAX_ENQUEUE_MANY = 100;
/**
 * What a queued entry stores besides its messages: `turns` when it holds several adds
 * (`enqueueMany`), each taking the next `count` messages, with its own timestamp and metadata.
 */
export const storedTurnSchema = turnSchema.extend({
  turns: z
    .array(z.strictObject({ count: z.number().int().min(1), timestamp: timestampSchema.optional(), metadata: metadataSchema.optional() }))
    .min(1)
    .max(MAX_ENQUEUE_MANY)
    .optional(),
});
export const searchSchema = z.strictObject({
  limit: z
    .number()
    .int("limit must be a whole number")
    .min(1, "limit must be between 1 and 100")
    .max(100, "limit must be between 1 and 100")
    .optional(),
  threshold: z.number().min(0, "threshold must be between 0 and 1").max(1, "threshold must be between 0 and 1").optional(),
  maxTokens: z.number().int("maxTokens must be a whole number").min(1, "maxTokens must be at least 1").optional(),
  explain: z.boolean({ error: "explain must be true or false" }).optional(),
  filters: filtersSchema.optional(),
  graph: z.boolean({ error: "graph must be true or false" }).optional(),
  signal,
});
export const getAllSchema = z.strictObject({
  limit: z
    .number()
    .int("limit must be a whole number")
    .min(1, "limit must be between 1 and 1000")
    .max(1000, "limit must be between 1 and 1000")
    .optional(),
  filters: filtersSchema.optional(),
});
export const deleteSchema = z.strictObject({ purge: z.boolean().optional() });
const timeoutMessage = "timeoutMs must be a number of milliseconds ≥ 0, or Infinity";
export const flushSchema = z.strictObject(
  { timeoutMs: z.union([z.number().min(0, timeoutMessage), z.literal(Number.POSITIVE_INFINITY)], { error: timeoutMessage }).optional() },
  { error: "flush() takes an options object, e.g. { timeoutMs: 5000 }" },
);
