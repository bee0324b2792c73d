import { z } from "zod";
import { ConfigError, InvalidInputError } from "./errors.js";
import type { Message } from "./history/history-store.js";
import { splitScope, type ValidScope, validateScope } from "./scope.js";
import { metadataKeyPattern } from "./stores/filter.js";
import type { MetadataValue } from "./stores/vector-store.js";

/** Keys metadata may not use: scope lives in the scope ids only, so it can never be spoofed. */
const reservedMetadataKeys = new Set(["userId", "agentId", "runId", "user_id", "agent_id", "run_id"]);

type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

// z.json() with a message that says what is allowed (its own says only "Invalid input").
const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)], {
    error: "metadata values must be JSON: strings, finite numbers, booleans, null, and arrays or objects of them",
  }),
);

export const metadataSchema = z
  .record(z.string(), jsonValue, { error: 'metadata must be an object of JSON values, e.g. { source: "chat" }' })
  .superRefine((metadata, context) => {
    for (const key of Object.keys(metadata)) {
      if (reservedMetadataKeys.has(key)) {
        context.addIssue({
          code: "custom",
          path: [key],
          message: `metadata cannot hold the scope key "${key}": pass scope ids as userId, agentId, runId next to metadata, not inside it`,
        });
      }
    }
    if (JSON.stringify(metadata).length > 16_384) {
      context.addIssue({ code: "custom", message: "metadata is larger than 16 KB once serialised: store less in it" });
    }
  });

export const filtersSchema = z
  .record(
    z.string().regex(metadataKeyPattern, "filter keys are metadata keys of 1-64 letters, digits, _ . -"),
    z.union([z.string(), z.number(), z.boolean(), z.null()], {
      error: "filter values are compared by equality: use a string, number, boolean or null",
    }),
  )
  .superRefine((filters, context) => {
    for (const key of Object.keys(filters)) {
      if (reservedMetadataKeys.has(key)) {
        context.addIssue({ code: "custom", path: [key], message: `"${key}" is a scope key: pass it as a scope id, not a filter` });
      }
    }
  }) as z.ZodType<Record<string, MetadataValue>>;

export const timestampSchema = z
  .union([z.date(), z.string().refine((value) => !Number.isNaN(Date.parse(value)), "timestamp must be an ISO 8601 date")])
  .transform((value) => new Date(value).toISOString());

function describe(issue: z.core.$ZodIssue, call: string, known: readonly string[]): { message: string; field?: string } {
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    return {
      message: `Unknown option "${key}" in ${call}(). Known options: ${known.join(", ")}.`,
      field: key,
    };
  }
  // A record key's problem is reported inside the issue; its message says what a key must be.
  if (issue.code === "invalid_key" && issue.issues[0]) issue = { ...issue.issues[0], path: issue.path };
  const field = issue.path.map(String).join(".");
  return { message: `${call}(): ${field ? `${field}: ` : ""}${issue.message}.`, field: field || undefined };
}

/** Parses `value` with `schema`, turning the first problem into an InvalidInputError that says what to do. */
export function parse<T>(schema: z.ZodType<T>, value: unknown, call: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const known = schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  const { message, field } = describe(issue, call, known);
  throw new InvalidInputError({ message, field, cause: result.error });
}

/** Like `parse`, for the options of a factory (a store, an embedder): a problem there is a `ConfigError`. */
export function parseConfig<T>(schema: z.ZodType<T>, value: unknown, call: string): T {
  try {
    return parse(schema, value, call);
  } catch (error) {
    throw new ConfigError({ message: (error as Error).message, cause: error });
  }
}

/**
 * Splits a call's options into a validated scope and the remaining options, validated by `schema`.
 * The scope is checked first: a call without scope fails before anything else is looked at.
 */
export function parseScoped<T>(call: string, options: unknown, schema: z.ZodType<T>): { scope: ValidScope; options: T } {
  if (options == null || typeof options !== "object" || Array.isArray(options)) {
    validateScope(call, options);
  }
  const { scope, rest } = splitScope(options as Record<string, unknown>);
  const valid = validateScope(call, scope);
  return { scope: valid, options: parse(schema, rest, call) };
}

export function parseText(call: string, field: string, value: unknown, maxLength: number): string {
  if (typeof value !== "string") {
    throw new InvalidInputError({ message: `${call}(): ${field} must be a string, got ${value === null ? "null" : typeof value}.`, field });
  }
  if (value.trim() === "") {
    throw new InvalidInputError({ message: `${call}(): ${field} is empty. Pass some text.`, field });
  }
  if (value.length > maxLength) {
    throw new InvalidInputError({
      message: `${call}(): ${field} is ${value.length} characters long; the maximum is ${maxLength}. Split it, or raise maxMessageLength in the Memory options.`,
      field,
    });
  }
  return value;
}

export function parseId(call: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "" || value.length > 256) {
    throw new InvalidInputError({
      message: `${call}(): memoryId must be a non-empty string id, as returned by add() or search().`,
      field: "memoryId",
    });
  }
  return value;
}

const roles = new Set(["user", "assistant", "system"]);

/** A string becomes one user message; arrays are checked message by message. */
export function parseMessages(call: string, value: unknown, maxLength: number): Message[] {
  if (typeof value === "string") return [{ role: "user", content: parseText(call, "messages", value, maxLength) }];
  if (!Array.isArray(value)) {
    throw new InvalidInputError({
      message: `${call}(): messages must be a string or an array of { role, content } messages.`,
      field: "messages",
    });
  }
  if (value.length === 0) {
    throw new InvalidInputError({ message: `${call}(): messages is an empty array. Pass at least one message.`, field: "messages" });
  }
  return value.map((message, i) => {
    const field = `messages[${i}]`;
    if (message == null || typeof message !== "object") {
      throw new InvalidInputError({ message: `${call}(): ${field} must be an object { role, content }.`, field });
    }
    const { role, content } = message as { role?: unknown; content?: unknown };
    if (typeof role !== "string" || !roles.has(role)) {
      throw new InvalidInputError({
        message: `${call}(): ${field}.role must be "user", "assistant" or "system", got ${JSON.stringify(role)}.`,
        field: `${field}.role`,
      });
    }
    if (typeof content !== "string") {
      throw new InvalidInputError({
        message: `${call}(): ${field}.content must be a string${Array.isArray(content) ? " (join the text parts of a multi-part message first)" : ""}.`,
        field: `${field}.content`,
      });
    }
    return { role: role as Message["role"], content: parseText(call, `${field}.content`, content, maxLength) };
  });
}
