import { z } from "zod";
import { ConfigError, InvalidInputError } from "./errors.js";
import type { Message } from "./history/outbox.js";
import { isArray, nullRecord, ownEntries, ownValue, plainData, textProblem, unreadable } from "./internal/plain-data.js";
import { lifecycleKey, originKey } from "./memory-origin.js";
import { splitScope, type ValidScope, validateScope } from "./scope.js";
import { metadataKeyPattern } from "./store-kit/filter.js";
import type { MetadataValue } from "./stores/vector-store.js";

/** Keys metadata may not use: scope lives in the scope ids only, so it can never be spoofed. */
const reservedMetadataKeys = new Set(["userId", "agentId", "runId", "user_id", "agent_id", "run_id"]);

type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * `z.record` of plain data: it refuses an own `__proto__` key (zod's records drop it silently, so
 * metadata would lose it and a filter on it would match everything) and objects that are not
 * plain (zod would read a class instance's or an `Object.create(…)` object's own keys as data).
 */
function recordOf<Value extends z.ZodType>(key: z.ZodString, value: Value, messages: { error: string; proto: string }) {
  return z.preprocess(
    (input, context) => {
      if (input === null || typeof input !== "object" || Array.isArray(input)) return input;
      const prototype = Reflect.getPrototypeOf(input);
      if (prototype !== null && prototype !== Object.prototype) {
        context.addIssue({ code: "custom", message: messages.error, input });
      } else if (Object.hasOwn(input, "__proto__")) {
        context.addIssue({ code: "custom", path: ["__proto__"], message: messages.proto, input });
      }
      return input;
    },
    z.record(key, value, { error: messages.error }),
  );
}

const metadataMessages = {
  error: 'metadata must be an object of JSON values, e.g. { source: "chat" }',
  proto: 'metadata cannot have the key "__proto__" (JavaScript objects cannot carry it as data): rename it',
};

// z.json() with a message that says what is allowed (its own says only "Invalid input").
const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValue), recordOf(z.string(), jsonValue, metadataMessages)], {
    error: "metadata values must be JSON: strings, finite numbers, booleans, null, and arrays or objects of them",
  }),
);

export const metadataSchema = recordOf(z.string(), jsonValue, metadataMessages).superRefine((metadata, context) => {
  for (const key of Object.keys(metadata)) {
    if (reservedMetadataKeys.has(key)) {
      context.addIssue({
        code: "custom",
        path: [key],
        message: `metadata cannot hold the scope key "${key}": pass scope ids as userId, agentId, runId next to metadata, not inside it`,
      });
    } else if (key === originKey) {
      context.addIssue({
        code: "custom",
        path: [key],
        message: `metadata cannot hold the key "${originKey}": Engram keeps who said a memory there. Rename it`,
      });
    } else if (key === lifecycleKey) {
      context.addIssue({
        code: "custom",
        path: [key],
        message: `metadata cannot hold the key "${lifecycleKey}": Engram keeps a memory's expiry and review there. Rename it`,
      });
    }
  }
  if (JSON.stringify(metadata).length > 16_384) {
    context.addIssue({ code: "custom", message: "metadata is larger than 16 KB once serialised: store less in it" });
  }
});

export const filtersSchema = recordOf(
  z.string().regex(metadataKeyPattern, "filter keys are metadata keys of 1-64 letters, digits, _ . -"),
  z.union([z.string(), z.number(), z.boolean(), z.null()], {
    error: "filter values are compared by equality: use a string, number, boolean or null",
  }),
  {
    error: 'filters must be an object of metadata keys and values, e.g. { topic: "db" }',
    proto: '"__proto__" cannot be a filter key: metadata never has it',
  },
).superRefine((filters, context) => {
  for (const key of Object.keys(filters)) {
    if (reservedMetadataKeys.has(key)) {
      context.addIssue({ code: "custom", path: [key], message: `"${key}" is a scope key: pass it as a scope id, not a filter` });
    } else if (key === originKey) {
      context.addIssue({
        code: "custom",
        path: [key],
        message: `"${originKey}" is not a metadata key of yours: Engram keeps who said a memory there`,
      });
    } else if (key === lifecycleKey) {
      context.addIssue({
        code: "custom",
        path: [key],
        message: `"${lifecycleKey}" is not a metadata key of yours: Engram keeps a memory's expiry there`,
      });
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

const instanceFieldsOf = new WeakMap<z.ZodType, string[]>();

/** Fields of an object schema that take instances (z.custom: an embedder, a store): not copied as data. */
function instanceFields(schema: z.ZodType): string[] {
  if (!(schema instanceof z.ZodObject)) return [];
  let fields = instanceFieldsOf.get(schema);
  if (!fields) {
    fields = Object.entries(schema.shape as Record<string, z.ZodType>)
      .filter(([, field]) => {
        let def = field._zod.def;
        while (def.type === "optional" || def.type === "nullable") def = (def as unknown as { innerType: z.ZodType }).innerType._zod.def;
        return def.type === "custom";
      })
      .map(([key]) => key);
    instanceFieldsOf.set(schema, fields);
  }
  return fields;
}

/**
 * Parses `value` with `schema`, turning the first problem into an InvalidInputError that says what
 * to do. The schema sees a copy read by own properties only (see `plainData`), never the caller's
 * object itself.
 */
export function parse<T>(schema: z.ZodType<T>, value: unknown, call: string): T {
  const data = plainData(value, `${call}()`, { instances: instanceFields(schema) });
  let result: z.ZodSafeParseResult<T>;
  try {
    result = schema.safeParse(data);
  } catch (error) {
    // An instance field's own checks (z.custom) may read a caller's object that throws.
    throw unreadable(`${call}()`, "options", error);
  }
  if (result.success) return result.data;
  const known = schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  const { message, field } = describe(issue, call, known);
  throw new InvalidInputError({ message, field, cause: result.error });
}

/**
 * The parser of every options object given when something is built (a store, an adapter, a
 * server): like `parse`, but a problem there is a `ConfigError`, with the same message.
 *
 * @example
 * export function myStore(options: MyStoreOptions) {
 *   return new MyStore(parseConfig(optionsSchema, options, "myStore"));
 * }
 */
export function parseConfig<T>(schema: z.ZodType<T>, value: unknown, call: string): T {
  try {
    return parse(schema, value, call);
  } catch (error) {
    if (InvalidInputError.isInstance(error)) throw new ConfigError({ message: error.message, cause: error });
    throw error;
  }
}

/**
 * Splits a call's options into a validated scope and the remaining options, validated by `schema`.
 * The scope is checked first: a call without scope fails before anything else is looked at.
 */
export function parseScoped<T>(call: string, options: unknown, schema: z.ZodType<T>): { scope: ValidScope; options: T } {
  if (options == null || typeof options !== "object" || isArray(options, `${call}()`, "options")) {
    validateScope(call, options);
  }
  const { scope, rest } = splitScope(options as object, `${call}()`);
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
  const problem = textProblem(value);
  if (problem) throw new InvalidInputError({ message: `${call}(): ${field} ${problem}.`, field });
  if (value.length > maxLength) {
    throw new InvalidInputError({
      message: `${call}(): ${field} is ${value.length} characters long; the maximum is ${maxLength}. Split it, or raise maxMessageLength in the Memory options.`,
      field,
    });
  }
  return value;
}

export function parseId(call: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "" || value.length > 256 || textProblem(value)) {
    throw new InvalidInputError({
      message: `${call}(): memoryId must be a non-empty string id, as returned by add() or search().`,
      field: "memoryId",
    });
  }
  return value;
}

const roles = new Set(["user", "assistant", "system"]);

function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || value === undefined || typeof value === "number" || typeof value === "boolean") return String(value);
  return typeof value === "object" ? "an object" : `a value of type ${typeof value}`;
}

/** Longest speaker name accepted in a message. */
const MAX_NAME_LENGTH = 100;

function parseName(call: string, field: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "" || value.length > MAX_NAME_LENGTH || textProblem(value) || /[\r\n]/.test(value)) {
    throw new InvalidInputError({
      message: `${call}(): ${field} must be the speaker's name: a non-empty line of at most ${MAX_NAME_LENGTH} characters, got ${shown(value)}.`,
      field,
    });
  }
  return value.trim().replace(/\s+/g, " ");
}

/** A string becomes one user message; arrays are checked message by message, by own properties. */
export function parseMessages(call: string, value: unknown, maxLength: number): Message[] {
  if (typeof value === "string") return [{ role: "user", content: parseText(call, "messages", value, maxLength) }];
  if (!isArray(value, `${call}()`, "messages")) {
    throw new InvalidInputError({
      message: `${call}(): messages must be a string or an array of { role, content } messages.`,
      field: "messages",
    });
  }
  const where = `${call}()`;
  const length = ownValue(value, "length", where, "messages") as number;
  if (length === 0) {
    throw new InvalidInputError({ message: `${call}(): messages is an empty array. Pass at least one message.`, field: "messages" });
  }
  const messages: Message[] = [];
  for (let i = 0; i < length; i++) {
    const field = `messages[${i}]`;
    const message = ownValue(value, String(i), where, field);
    if (message == null || typeof message !== "object") {
      throw new InvalidInputError({ message: `${call}(): ${field} must be an object { role, content }.`, field });
    }
    const role = ownValue(message, "role", where, `${field}.role`);
    const content = ownValue(message, "content", where, `${field}.content`);
    if (typeof role !== "string" || !roles.has(role)) {
      throw new InvalidInputError({
        message: `${call}(): ${field}.role must be "user", "assistant" or "system", got ${shown(role)}.`,
        field: `${field}.role`,
      });
    }
    if (typeof content !== "string") {
      throw new InvalidInputError({
        message: `${call}(): ${field}.content must be a string${isArray(content, where, `${field}.content`) ? " (join the text parts of a multi-part message first)" : ""}.`,
        field: `${field}.content`,
      });
    }
    const name = ownValue(message, "name", where, `${field}.name`);
    messages.push({
      role: role as Message["role"],
      content: parseText(call, `${field}.content`, content, maxLength),
      ...(name === undefined ? {} : { name: parseName(call, `${field}.name`, name) }),
    });
  }
  return messages;
}

/**
 * A call that takes a scope or, for operators, exactly `{ allScopes: true }`: the valid scope, or
 * undefined for every scope. Read by own properties only: an inherited `allScopes` is no consent.
 */
export function parseScopeOrAll(call: string, input: unknown): ValidScope | undefined {
  if (input === null || typeof input !== "object" || isArray(input, `${call}()`, "scope")) return validateScope(call, input);
  const entries = ownEntries(input, `${call}()`, "scope");
  if (!entries.some(([key]) => key === "allScopes")) return validateScope(call, nullRecord(entries));
  if (entries.length !== 1 || entries[0]?.[1] !== true) {
    throw new InvalidInputError({
      message: `${call}(): pass a scope, or exactly { allScopes: true } for every scope.`,
      field: "allScopes",
    });
  }
  return undefined;
}

/** Checks the `{ allScopes: true }` a call that always spans every scope requires, by own properties. */
export function parseAllScopes(call: string, input: unknown, message: string): void {
  const entries = input !== null && typeof input === "object" ? ownEntries(input, `${call}()`, "") : [];
  if (entries.length !== 1 || entries[0]?.[0] !== "allScopes" || entries[0][1] !== true) {
    throw new InvalidInputError({ message, field: "allScopes" });
  }
}
