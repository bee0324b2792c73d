export { type AiSdkEmbedderOptions, type AiSdkEmbeddingModel, aiSdkEmbedder } from "./embedders/ai-sdk-embedder.js";
export type { Embedder } from "./embedders/embedder.js";
export { type LocalEmbedderOptions, localEmbedder } from "./embedders/local-embedder.js";
export {
  ConfigError,
  CorruptionError,
  EmbeddingError,
  EngramError,
  ExtractionError,
  InvalidInputError,
  InvalidScopeError,
  isUserError,
  MemoryNotFoundError,
  MissingScopeError,
  StoreError,
  TimeoutError,
  WriteConflictError,
} from "./errors.js";
export type { AiSdkLanguageModel } from "./extraction/language-model.js";
export type { ExtractFrom } from "./extraction/prompt.js";
export type { GraphHistoryOptions, MemoryGraphApi, NeighborsOptions, RelationsOptions } from "./graph/graph-api.js";
export type { GraphChange, GraphStore, MemoryGraph, Neighbor, ReachedMemory, Relation, StoredRelation } from "./graph/graph-store.js";
export { type SqliteGraphOptions, sqliteGraph } from "./graph/sqlite-graph.js";
export type {
  HistoryEntry,
  HistoryEvent,
  HistoryEventEntry,
  HistoryLog,
  HistoryScannable,
  HistoryScopeEnumerable,
} from "./history/history-log.js";
export { isHistoryScannable, isHistoryScopeEnumerable } from "./history/history-log.js";
export type { HistoryStore } from "./history/history-store.js";
export type { NewOutboxEntry, Outbox, OutboxClaim, OutboxEntry, OutboxStatus } from "./history/outbox.js";
export { type SqliteHistoryOptions, sqliteHistory } from "./history/sqlite-history.js";
export type {
  AddManyItem,
  AddManyOptions,
  AddOptions,
  ConsolidateOptions,
  ConsolidateResult,
  ConsolidationCluster,
  DeleteOptions,
  DeleteResult,
  EnqueueManyItem,
  EnqueueManyOptions,
  EnqueueOptions,
  FlushResult,
  GetAllOptions,
  MemoryOptions,
  Profile,
  ProfileUpdate,
  ReviewItem,
  ReviewOptions,
  ReviewSource,
  SearchOptions,
  SweepResult,
  Timeouts,
  UpdateChange,
} from "./memory.js";
export { Memory } from "./memory.js";
export {
  type BlockMemory,
  type BlockProfile,
  defaultMemoryBlockLabel,
  defaultMemoryBlockPreamble,
  defaultMemoryBlockRender,
  escapeMemoryText,
  hasMemoryBlock,
  type MemoryBlockBudget,
  type MemoryBlockContent,
  type MemoryBlockRender,
  memoryBlockTag,
  type RenderMemoryBlockOptions,
  renderMemoryBlock,
  stripMemoryBlocks,
} from "./memory-block.js";
export type { Scope } from "./scope.js";
export { scopeKeyFor, validateScope } from "./scope.js";
export { type SqliteStoreOptions, sqliteStore } from "./stores/sqlite-store.js";
export type {
  KeywordSearchable,
  MemoryRecord,
  MetadataValue,
  RecordStamp,
  RecordVersion,
  ScopeCount,
  ScopeCountable,
  ScopeEnumerable,
  ScopeVersioned,
  ScoredRecord,
  StoreFilter,
  TimeOrdered,
  VectorStore,
  WriteBatch,
  WriteExpectation,
} from "./stores/vector-store.js";
export { isKeywordSearchable, isScopeCountable, isScopeEnumerable, isScopeVersioned, isTimeOrdered } from "./stores/vector-store.js";
export type { AttributeValue, TelemetryOptions, TracerLike } from "./telemetry/tracing.js";
export type {
  AddResult,
  AddResultItem,
  ErrorContext,
  HistoryRecord,
  MemoryEvent,
  MemoryItem,
  Message,
  PendingTurn,
  ProfileChange,
  Usage,
  UsageContext,
} from "./types.js";
