import { randomUUID } from "node:crypto";

/**
 * Time and ids, injected rather than read from globals deep inside (as the AI SDK's `_internal`):
 * tests drive a fake clock and predictable ids through it.
 */
export interface Runtime {
  /** Milliseconds since the epoch. @default Date.now */
  now(): number;
  /** A new unique id. @default crypto.randomUUID */
  id(): string;
}

export const defaultRuntime: Runtime = { now: () => Date.now(), id: () => randomUUID() };

/** The runtime's current time as ISO 8601. */
export const isoNow = (runtime: Runtime) => new Date(runtime.now()).toISOString();
