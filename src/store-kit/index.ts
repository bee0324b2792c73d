/**
 * `engram/store-kit`: what a store needs besides its backend, so that every store behaves (and
 * words its errors) the same. The contracts it implements come with it as types.
 *
 * - Filters: `scopeConditions` (refuses a filter without scope), `metadataConditions`,
 *   `matchesFilter` and `cosineSimilarity` for stores that evaluate in process.
 * - Writes: `checkedUpserts`, `idsToCheck`, `assertNoConflict` (preconditions and tombstones).
 * - `init`: `assertSameEmbedding` (dimension and model checks).
 * - Keyword search: `keywordTerms` of the query, then `rankByBm25` of the full-text candidates.
 * - Rows: `scopeColumns`, `scopeOfRow`; `countScopes` / `compareScopes` for `ScopeEnumerable`.
 * - `list` paging: `encodeCursor`, `readCursor`, `invalidCursor`.
 * - Outboxes: `lockKeyOf` (the key claims serialise on), `scopeContains`.
 * - Errors and options: `asStoreError` for a driver's errors, `parseConfig` for a factory's options.
 *
 * Prove a store with the conformance suites of `engram/test/conformance`.
 */

export { asStoreError } from "../errors.js";
export type { HistoryEntry, HistoryEvent, HistoryLog } from "../history/history-log.js";
export type { Message, NewOutboxEntry, Outbox, OutboxEntry, OutboxStatus } from "../history/outbox.js";
export { bm25Scores } from "../retrieval/bm25.js";
export { keywordTerms, tokenize } from "../retrieval/keywords.js";
export type { Scope } from "../scope.js";
export { lockKeyOf, scopeContains, scopeOf } from "../scope.js";
export type {
  KeywordSearchable,
  MemoryRecord,
  MetadataValue,
  RecordStamp,
  RecordVersion,
  ScopeCount,
  ScopeCountable,
  ScopeEnumerable,
  ScoredRecord,
  StoreFilter,
  TimeOrdered,
  VectorStore,
  WriteBatch,
  WriteExpectation,
} from "../stores/vector-store.js";
export { parseConfig } from "../validation.js";
export { encodeCursor, invalidCursor, readCursor } from "./cursor.js";
export { assertSameEmbedding, type EmbeddingSpace } from "./embedding.js";
export { cosineSimilarity, matchesFilter, metadataConditions, metadataKeyPattern, scopeConditions } from "./filter.js";
export { rankByBm25 } from "./ranking.js";
export { compareScopes, countScopes, scopeColumns, scopeOfRow } from "./scopes.js";
export { assertNoConflict, checkedUpserts, idsToCheck } from "./writes.js";
