import { lifecycleOf } from "./lifecycle.js";
import { callerMetadata, originOf } from "./memory-origin.js";
import { scopeKeys } from "./scope.js";
import type { MemoryRecord } from "./stores/vector-store.js";
import type { MemoryItem } from "./types.js";

/** A stored record as the public API returns it (with its search score, on search results). */
export function toItem(record: MemoryRecord, score?: number): MemoryItem {
  const item: MemoryItem = {
    id: record.id,
    memory: record.text,
    hash: record.hash,
    metadata: callerMetadata(record.metadata),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
  for (const key of scopeKeys) if (record[key] !== undefined) item[key] = record[key];
  const joined = originOf(record.metadata)?.joined;
  if (joined?.length) item.sources = [callerMetadata(record.metadata), ...joined.map((metadata) => ({ ...metadata }))];
  const { expiresAt } = lifecycleOf(record.metadata);
  if (expiresAt !== undefined) item.expiresAt = expiresAt;
  if (score !== undefined) item.score = score;
  return item;
}
