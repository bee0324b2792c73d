import type { Metadata, Where } from "chromadb";
import { StoreError } from "../errors.js";
import { base64ToVector, vectorToBase64 } from "../internal/json.js";
import { stem } from "../retrieval/keywords.js";
import { type Scope, scopeKeys } from "../scope.js";
import { metadataConditions, metadataKeyPattern, scopeConditions } from "../store-kit/filter.js";
import type { MemoryRecord, MetadataValue, StoreFilter } from "./vector-store.js";

// How chromaStore maps records to Chroma records (id, embedding, document = the text, metadata)
// and filters to Chroma `where` clauses.
//
// Chroma stores vectors of a cosine collection normalised, with their length, and gives back their
// product, a float's last bit off here and there: the vector as written is kept in the record's URI
// (a data: URI of its float32 bytes), which reads that need vectors take instead.
//
// A record's Chroma metadata holds reserved keys only: `userId`, `agentId`, `runId` (the scope;
// "" when absent), `hash`, `createdAt`, `updatedAt`, `createdAtMs`, `metadata` (the record's own
// metadata as JSON), and `meta.<key>` for each top-level scalar metadata value a filter may
// compare. A record's metadata can therefore never stand in for its scope.

/** Stands for a key the record does not have: no filter value ever equals it. */
const ABSENT = "";
const FILTER_PREFIX = "meta.";

/**
 * A metadata value as filters compare it, tagged with its type. Chroma compares a float with an
 * integer field by truncating it (`{ k: 1.5 }` matches `k: 1`) and has no null; the contract wants
 * type-exact equality, which tagged strings give.
 */
function filterValue(value: MetadataValue): string {
  if (value === null) return "null";
  if (typeof value === "string") return `s:${value}`;
  return typeof value === "number" ? `n:${value}` : `b:${value}`;
}

/** The `where` clause of a filter: the scope ids, the hash and the metadata conditions, AND-ed. */
export function whereOf(filter: StoreFilter, ...more: Where[]): Where {
  const conditions: Where[] = scopeConditions(filter).map(([key, value]) => ({ [key]: { $eq: value } }));
  if (filter.hash !== undefined) conditions.push({ hash: { $eq: filter.hash } });
  for (const [key, value] of metadataConditions(filter)) conditions.push({ [`${FILTER_PREFIX}${key}`]: { $eq: filterValue(value) } });
  conditions.push(...more);
  // Chroma refuses an `$and` of one condition.
  return conditions.length === 1 ? (conditions[0] as Where) : { $and: conditions };
}

/**
 * The Chroma metadata of `record`. Chroma merges metadata on upsert (a key left out keeps its old
 * value, and null does not remove it), so every reserved key is written, and each key of the
 * `stored` version that this one does not have is written as absent.
 */
export function toMetadata(record: MemoryRecord, stored?: Metadata | null): Record<string, string | number> {
  const createdAtMs = Date.parse(record.createdAt);
  if (Number.isNaN(createdAtMs)) {
    throw new StoreError({ message: `Record ${record.id} has createdAt "${record.createdAt}", not an ISO 8601 date` });
  }
  const metadata: Record<string, string | number> = {
    userId: record.userId || ABSENT,
    agentId: record.agentId || ABSENT,
    runId: record.runId || ABSENT,
    hash: record.hash,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    createdAtMs,
    metadata: JSON.stringify(record.metadata),
  };
  for (const [key, value] of Object.entries(record.metadata)) {
    if (!metadataKeyPattern.test(key)) continue;
    if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      metadata[`${FILTER_PREFIX}${key}`] = filterValue(value);
    }
  }
  for (const key of Object.keys(stored ?? {})) if (!Object.hasOwn(metadata, key)) metadata[key] = ABSENT;
  return metadata;
}

const VECTOR_URI = "data:application/octet-stream;base64,";

/** The URI a record keeps its vector in, exactly as written. */
export function vectorUri(vector: Float32Array): string {
  return `${VECTOR_URI}${vectorToBase64(vector)}`;
}

/** The record stored as (`id`, `document`, `metadata`, `uri`); the vector when the URI is given. */
export function toRecord(
  id: string,
  document: string | null | undefined,
  metadata: Metadata | null | undefined,
  uri?: string | null,
): MemoryRecord {
  const fields = metadata ?? {};
  let own: Record<string, unknown>;
  try {
    own = JSON.parse(String(fields.metadata));
  } catch (cause) {
    throw new StoreError({ message: `The Chroma record ${id} was not written by chromaStore (it has no JSON metadata)`, cause });
  }
  const scope: Scope = {};
  for (const key of scopeKeys) {
    const value = fields[key];
    if (typeof value === "string" && value !== ABSENT) scope[key] = value;
  }
  return {
    id,
    text: document ?? "",
    hash: String(fields.hash),
    ...scope,
    metadata: own,
    createdAt: String(fields.createdAt),
    updatedAt: String(fields.updatedAt),
    ...(uri?.startsWith(VECTOR_URI) && { vector: base64ToVector(uri.slice(VECTOR_URI.length)) }),
  };
}

/** The list position of a stored record: createdAt in epoch milliseconds, createdAt as written, id. */
export type ListKey = readonly [ms: number, createdAt: string, id: string];

export function listKeyOf(id: string, metadata: Metadata | null | undefined): ListKey {
  return [Number(metadata?.createdAtMs), String(metadata?.createdAt), id];
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** List order: createdAt (as a time, then as written), then id, like the other stores. */
export const byListKey = (a: ListKey, b: ListKey) => a[0] - b[0] || compare(a[1], b[1]) || compare(a[2], b[2]);

/**
 * What a stored word must begin with for its Porter stem to be `stemmed`. The Porter algorithm
 * only rewrites the end of a word, and of the stem it returns at most the last letter differs from
 * the word: an `i` that was a `y` ("happy" → "happi"), an `l` where the word had `il` ("sensibility"
 * → "sensibl"), or an `e` the word did not have ("hoping" → "hope"). Every other stem begins the
 * word as it is.
 */
export function stemPrefixPattern(stemmed: string): string {
  const head = escapeRegex(stemmed.slice(0, -1));
  switch (stemmed.at(-1)) {
    case "i":
      return `${head}[iy]`;
    case "l":
      return `${head}[il]`;
    case "e":
      return head;
    default:
      return escapeRegex(stemmed);
  }
}

/**
 * A `$regex` (Rust regex syntax) matching the texts that hold a word whose Porter stem is one of
 * the `terms`' stems: one of those words begins where a word begins, in any case. It finds a
 * superset of the texts BM25 scores above 0 (`rankByBm25` then ranks them exactly).
 *
 * Words begin after a character that is neither a letter nor a digit, as `tokenize` splits a
 * lower-cased text, or after "İ", whose lower case ends in a combining mark.
 */
export function keywordPattern(terms: readonly string[]): string {
  const prefixes = [...new Set(terms.map((term) => stemPrefixPattern(stem(term))))];
  return `(?i)(?:^|[^\\p{L}\\p{N}]|\\x{130})(?:${prefixes.join("|")})`;
}

function escapeRegex(text: string): string {
  return text.replace(/[\\.+*?()|[\]{}^$#&\-~]/g, "\\$&");
}
