import { EngramError, InvalidInputError } from "../errors.js";

/** How deep a caller's value may nest, counting the options object itself as level 1. */
export const MAX_NESTING = 16;
/** How many values (objects, arrays, strings, numbers, …) one call's options may hold in all. */
export const MAX_VALUES = 10_000;

const loneSurrogate = /\p{Cs}/u;

/**
 * Why a string cannot be stored, or undefined when it can. PostgreSQL `text` and `jsonb` cannot
 * hold U+0000 (SQLite keeps it, but reads the text back cut there), and a lone UTF-16 surrogate
 * is not text: it would be stored as U+FFFD, so what is read back differs from what was hashed.
 */
export function textProblem(text: string): string | undefined {
  if (text.includes("\u0000")) return "contains a NUL character (U+0000), which cannot be stored: remove it";
  if (loneSurrogate.test(text)) {
    return "contains a lone UTF-16 surrogate (half of a character, e.g. an emoji cut in two), which cannot be stored: pass well-formed text";
  }
  return undefined;
}

/** The error for a caller's value that threw while being read (`where` is e.g. "search()"). */
export function unreadable(where: string, field: string, error: unknown): EngramError {
  if (EngramError.isInstance(error)) return error;
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : "a value that is not an Error";
  return new InvalidInputError({
    message: `${where}: ${field} could not be read: reading it threw ${reason}. Pass plain data.`,
    field,
    cause: error,
  });
}

/**
 * The own enumerable string-keyed properties of a caller's object, each read exactly once.
 * Inherited properties are never read, so `__proto__` is a key like any other; a getter or proxy
 * trap that throws ends as an InvalidInputError naming the field (`field` is the object's own
 * path, "" for the options themselves).
 */
export function ownEntries(value: object, where: string, field: string): [string, unknown][] {
  let reading = field || "the options";
  try {
    const entries: [string, unknown][] = [];
    for (const key of Object.keys(value)) {
      reading = fieldOf(field, key, false);
      const descriptor = Reflect.getOwnPropertyDescriptor(value, key);
      if (descriptor === undefined) continue;
      entries.push([key, "value" in descriptor ? descriptor.value : descriptor.get?.call(value)]);
    }
    return entries;
  } catch (error) {
    throw unreadable(where, reading, error);
  }
}

/** One own property of a caller's object (undefined when it has none), read as `ownEntries` reads. */
export function ownValue(value: object, key: string, where: string, field: string): unknown {
  try {
    const descriptor = Reflect.getOwnPropertyDescriptor(value, key);
    if (descriptor === undefined) return undefined;
    return "value" in descriptor ? descriptor.value : descriptor.get?.call(value);
  } catch (error) {
    throw unreadable(where, field, error);
  }
}

/** `Array.isArray`, which throws for a revoked proxy: that ends as an InvalidInputError too. */
export function isArray(value: unknown, where: string, field: string): value is unknown[] {
  try {
    return Array.isArray(value);
  } catch (error) {
    throw unreadable(where, field, error);
  }
}

/** A null-prototype record: assigning `__proto__` on it sets an own property, never a prototype. */
export function nullRecord(entries: Iterable<readonly [string, unknown]> = []): Record<string, unknown> {
  const record: Record<string, unknown> = Object.create(null);
  for (const [key, value] of entries) record[key] = value;
  return record;
}

function isPlainObject(value: object): boolean {
  const prototype = Reflect.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

interface Frame {
  source: object;
  target: Record<string, unknown> | unknown[];
  field: string;
  level: number;
  parent: Frame | undefined;
}

function fieldOf(parent: string, key: string | number, isArray: boolean): string {
  if (isArray) return `${parent}[${key}]`;
  const name = /^[A-Za-z_$][\w$]*$/.test(key as string) ? (key as string) : JSON.stringify(key);
  return parent === "" ? name : `${parent}.${name}`;
}

/**
 * A copy of a caller's options that is safe to hand to a schema: plain objects (copied
 * null-prototype) and arrays are read by own properties only, each getter once, at most
 * `MAX_NESTING` levels deep and `MAX_VALUES` values in all, without cycles; every string and key
 * must be storable (see `textProblem`). Other objects (class instances, functions) are passed on
 * as they are, for the schema to accept (an embedder) or refuse (a Date in metadata), as are the
 * top-level fields named in `instances`.
 *
 * @throws InvalidInputError naming the offending field.
 */
export function plainData(value: unknown, where: string, { instances = [] }: { instances?: readonly string[] } = {}): unknown {
  let values = 0;
  const tooMany = (field: string): never => {
    const top = field.split(/[.[]/)[0] || "the options";
    throw new InvalidInputError({ message: `${where}: ${top} holds more than ${MAX_VALUES} values. Pass less data.`, field: top });
  };
  const check = (field: string, item: unknown): unknown => {
    if (++values > MAX_VALUES) tooMany(field);
    if (typeof item === "string") {
      const problem = textProblem(item);
      if (problem) throw new InvalidInputError({ message: `${where}: ${field || "the value"} ${problem}.`, field: field || undefined });
    }
    return item;
  };

  const stack: Frame[] = [];
  let reading = "the options";
  const copy = (item: unknown, field: string, parent: Frame | undefined): unknown => {
    reading = field || "the options";
    check(field, item);
    if (item === null || typeof item !== "object" || !(Array.isArray(item) || isPlainObject(item))) return item;
    const level = (parent?.level ?? 0) + 1;
    for (let ancestor = parent; ancestor; ancestor = ancestor.parent) {
      if (ancestor.source === item) {
        throw new InvalidInputError({
          message: `${where}: ${field || "the value"} refers back to an object that contains it (a cycle). Pass plain JSON-like data.`,
          field: field || undefined,
        });
      }
    }
    if (level > MAX_NESTING) {
      throw new InvalidInputError({
        message: `${where}: ${field} is nested more than ${MAX_NESTING} levels deep. Flatten it.`,
        field,
      });
    }
    const target = Array.isArray(item) ? [] : nullRecord();
    stack.push({ source: item, target, field, level, parent });
    return target;
  };

  const walk = (): void => {
    for (let frame = stack.pop(); frame; frame = stack.pop()) {
      const { source, target, field } = frame;
      if (Array.isArray(source)) {
        const list = target as unknown[];
        const length = ownValue(source, "length", where, field) as number;
        if (values + length > MAX_VALUES) tooMany(field);
        for (let index = 0; index < length; index++) {
          list.push(copy(ownValue(source, String(index), where, `${field}[${index}]`), `${field}[${index}]`, frame));
        }
        continue;
      }
      const record = target as Record<string, unknown>;
      for (const [key, item] of ownEntries(source, where, field)) {
        const problem = textProblem(key);
        if (problem) {
          throw new InvalidInputError({
            message: `${where}: ${field ? `${field} has a` : "a"} key ${JSON.stringify(key)} that ${problem}.`,
            field: field || undefined,
          });
        }
        const itemField = fieldOf(field, key, false);
        record[key] = frame.level === 1 && instances.includes(key) ? item : copy(item, itemField, frame);
      }
    }
  };

  try {
    const root = copy(value, "", undefined);
    walk();
    return root;
  } catch (error) {
    // A proxy's traps run on every read: any of them may throw.
    throw unreadable(where, reading, error);
  }
}
