import { createHash } from "node:crypto";
import type { Schemas } from "@qdrant/js-client-rest";
import { StoreError } from "../errors.js";
import { base64ToVector, vectorToBase64 } from "../internal/json.js";
import { scopeOf } from "../scope.js";
import { metadataConditions, scopeConditions } from "../store-kit/filter.js";
import type { MemoryRecord, StoreFilter } from "./vector-store.js";

// How qdrantStore maps records to Qdrant points and filters to Qdrant conditions.

export type Condition = Schemas["Condition"];
export type Payload = {
  id: string;
  text: string;
  hash: string;
  userId?: string;
  agentId?: string;
  runId?: string;
  metadata: Record<string, unknown>;
  /**
   * The scalar top-level metadata values, which filters compare. Qdrant would match a filter value
   * against any element of an array; the contract wants equality of the whole value.
   */
  filterable: Record<string, string | number | boolean | null>;
  createdAt: string;
  updatedAt: string;
  /** `createdAt` in epoch milliseconds: Qdrant orders by numbers, not by strings. */
  createdAtMs: number;
  /** The vector as written (base64 of its float32 bytes), kept only when Qdrant changes it by normalising. */
  vectorAsWritten?: string;
};
export type Point = { id: string | number; payload?: Record<string, unknown> | null; vector?: unknown };

/** Points per request when writing or deleting; keeps request bodies well under Qdrant's 32 MB limit. */
export const CHUNK = 256;
/** Most full-text candidates keyword search ranks (by BM25, in process) per query. */
export const KEYWORD_CANDIDATES = 1000;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Qdrant accepts only unsigned integers and UUIDs as point ids. A record id that is a lower-case
 * UUID (every id Engram makes) is its own point id; any other id maps to a name-based UUID
 * (SHA-256, version 8), which can never equal one Engram makes (version 7). The record id itself is
 * kept in the payload.
 */
export function pointIdOf(id: string): string {
  if (uuidPattern.test(id)) return id;
  const hex = createHash("sha256").update(id).digest("hex");
  const variant = ((Number.parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** A quoted JSON path segment: metadata keys may hold dots, which would otherwise mean nesting. */
const metadataPath = (key: string) => `filterable."${key}"`;

/**
 * Whether Qdrant stores this vector as it is under cosine distance: it normalises every vector
 * whose squared length is not within 1e-6 of 1 (or 0). A margin keeps borderline vectors on the
 * safe side: their exact copy is kept.
 */
function storedAsWritten(vector: Float32Array): boolean {
  let squared = 0;
  for (const value of vector) squared += value * value;
  return Math.abs(squared - 1) <= 1e-7;
}

export function conditions(filter: StoreFilter): Condition[] {
  const must: Condition[] = scopeConditions(filter).map(([key, value]) => ({ key, match: { value } }));
  if (filter.hash !== undefined) must.push({ key: "hash", match: { value: filter.hash } });
  for (const [key, value] of metadataConditions(filter)) {
    if (value === null) must.push({ is_null: { key: metadataPath(key) } });
    // Qdrant matches integers, strings and booleans by value; a range of one point covers every number.
    else if (typeof value === "number") must.push({ key: metadataPath(key), range: { gte: value, lte: value } });
    else must.push({ key: metadataPath(key), match: { value } });
  }
  return must;
}

export function toRecord(point: Point, withVector = false): MemoryRecord {
  const payload = point.payload as unknown as Payload;
  const vector = !withVector
    ? undefined
    : payload.vectorAsWritten !== undefined
      ? base64ToVector(payload.vectorAsWritten)
      : Array.isArray(point.vector)
        ? Float32Array.from(point.vector as number[])
        : undefined;
  return {
    id: payload.id,
    text: payload.text,
    hash: payload.hash,
    ...scopeOf(payload),
    metadata: payload.metadata ?? {},
    createdAt: payload.createdAt,
    updatedAt: payload.updatedAt,
    ...(vector && { vector }),
  };
}

export function toPayload(record: MemoryRecord): Payload {
  const createdAtMs = Date.parse(record.createdAt);
  if (Number.isNaN(createdAtMs))
    throw new StoreError({ message: `Record ${record.id} has createdAt "${record.createdAt}", not an ISO 8601 date` });
  const filterable: Payload["filterable"] = {};
  for (const [key, value] of Object.entries(record.metadata)) {
    if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") filterable[key] = value;
  }
  const payload: Payload = {
    id: record.id,
    text: record.text,
    hash: record.hash,
    ...scopeOf(record),
    metadata: { ...record.metadata },
    filterable,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    createdAtMs,
  };
  const vector = record.vector as Float32Array;
  if (!storedAsWritten(vector)) payload.vectorAsWritten = vectorToBase64(vector);
  return payload;
}

export const payloadOf = (point: Point) => point.payload as unknown as Payload;
export const createdAtMsOf = (point: Point) => payloadOf(point).createdAtMs;
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** List order: createdAt (as a time, then as written), then record id, like the SQL stores. */
export const byAge = (a: Point, b: Point) =>
  createdAtMsOf(a) - createdAtMsOf(b) ||
  compare(payloadOf(a).createdAt, payloadOf(b).createdAt) ||
  compare(payloadOf(a).id, payloadOf(b).id);

export function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

/** The status code and Qdrant's own error message of a failed request, when it was an HTTP error. */
export function httpFailure(error: unknown): { status?: number; message: string } {
  const failure = error as { status?: number; data?: { status?: { error?: string } }; message?: string };
  return {
    status: typeof failure?.status === "number" ? failure.status : undefined,
    message: failure?.data?.status?.error ?? failure?.message ?? String(error),
  };
}
