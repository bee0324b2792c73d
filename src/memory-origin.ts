// What Engram records about where a verbatim memory came from, in the reserved metadata key
// "engram", and about its lifecycle (expiry, provenance, review) in "engram.lifecycle" (callers
// cannot use either key; `toItem` hands their own metadata back without them).

/** The metadata key Engram keeps a verbatim memory's origin under. */
export const originKey = "engram";

/** The metadata key Engram keeps a memory's expiry, provenance and review mark under (see lifecycle.ts). */
export const lifecycleKey = "engram.lifecycle";

/** Who said a verbatim memory, and which adds its messages came from. */
export interface MemoryOrigin {
  readonly role: "user" | "assistant";
  /** The `name` of its messages, when they had one. */
  readonly name?: string;
  /** How many messages it holds (consecutive messages of one speaker form one memory). */
  readonly messages: number;
  /**
   * The metadata of each later add whose message joined it, oldest first (the add that created it
   * gave the memory's own metadata). Absent while it holds the messages of one add only.
   */
  readonly joined?: readonly Record<string, unknown>[];
}

const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === "object" && !Array.isArray(value);

/** The origin recorded in a memory's metadata, or undefined (extracted memories, memories stored before origins were kept). */
export function originOf(metadata: Readonly<Record<string, unknown>>): MemoryOrigin | undefined {
  const origin = Object.hasOwn(metadata, originKey) ? metadata[originKey] : undefined;
  if (!isRecord(origin)) return undefined;
  const role = Object.hasOwn(origin, "role") ? origin.role : undefined;
  if (role !== "user" && role !== "assistant") return undefined;
  const name = Object.hasOwn(origin, "name") && typeof origin.name === "string" ? origin.name : undefined;
  const messages = Object.hasOwn(origin, "messages") && typeof origin.messages === "number" ? origin.messages : 1;
  const joined = Object.hasOwn(origin, "joined") && Array.isArray(origin.joined) ? origin.joined.filter(isRecord) : undefined;
  return { role, ...(name === undefined ? {} : { name }), messages, ...(joined ? { joined } : {}) };
}

/** The caller's own metadata: a memory's metadata without what Engram keeps beside it. */
export function callerMetadata(metadata: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(metadata).filter(([key]) => key !== originKey && key !== lifecycleKey));
}

/** `metadata` with `origin` recorded in it (its lifecycle kept). */
export function withOrigin(metadata: Readonly<Record<string, unknown>>, origin: MemoryOrigin): Record<string, unknown> {
  const lifecycle = Object.hasOwn(metadata, lifecycleKey) ? { [lifecycleKey]: metadata[lifecycleKey] } : {};
  return { ...callerMetadata(metadata), ...lifecycle, [originKey]: origin };
}
