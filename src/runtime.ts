import { randomBytes } from "node:crypto";

/**
 * Time and ids, injected rather than read from globals deep inside (as the AI SDK's `_internal`):
 * tests drive a fake clock and predictable ids through it.
 */
export interface Runtime {
  /** Milliseconds since the epoch. @default Date.now */
  now(): number;
  /** A new unique id. @default a UUID version 7, increasing within the process */
  id(): string;
}

let lastMs = 0;
let counter = 0;

/**
 * A UUID version 7 (RFC 9562): 48 bits of milliseconds, then a 12-bit counter (method 1) and 62
 * random bits. Ids made later in one process sort after earlier ones, so stores that order equal
 * `createdAt`s by id (two adds given the same timestamp) keep the order they were written in.
 */
export function uuidv7(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
  } else if (++counter > 0xfff) {
    lastMs += 1;
    counter = 0;
  }
  const bytes = randomBytes(16);
  bytes.writeUIntBE(lastMs, 0, 6);
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | ((bytes[8] as number) & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const defaultRuntime: Runtime = { now: () => Date.now(), id: () => uuidv7() };

/** The runtime's current time as ISO 8601. */
export const isoNow = (runtime: Runtime) => new Date(runtime.now()).toISOString();
