import type { Message } from "./history/outbox.js";

export type { Message };

/** A memory as the public API returns it. */
export interface MemoryItem {
  id: string;
  /** The remembered text. */
  memory: string;
  /** SHA-256 of the whitespace-normalised text. */
  hash: string;
  userId?: string;
  agentId?: string;
  runId?: string;
  metadata: Record<string, unknown>;
  /**
   * A verbatim memory that holds messages of several adds (a speaker's consecutive messages): the
   * metadata of each of those adds, oldest first (the first is `metadata`). Absent otherwise.
   */
  sources?: Record<string, unknown>[];
  /** ISO 8601: when the memory was first stated (the `timestamp` of its `add`, else when stored). */
  createdAt: string;
  /** ISO 8601: when its text last changed. */
  updatedAt: string;
  /** ISO 8601: when it expires (it is never returned from then on); absent when it never does. */
  expiresAt?: string;
  /** Relevance in [0, 1], on search results only: see `Memory.search`. */
  score?: number;
  /** Why a search ranked it where it did: on search results with `explain: true` only. */
  explain?: ScoreExplanation;
}

/**
 * The parts of a search result's score (`search(query, { ...scope, explain: true })`). Similarities
 * are relative to the best memory of the scope for the query (1 = the best), except `vector`.
 */
export interface ScoreExplanation {
  /** Cosine similarity of the query's and the memory's embeddings, in [-1, 1]. */
  vector: number;
  /** BM25 keyword relevance / the best of the scope, in [0, 1]. */
  keyword: number;
  /** BM25 of the memory with the memories said just before and after it / the best, in [0, 1]. */
  window: number;
  /** Best first-stage score of the two memories either side of it in its session / the best, in [0, 1]. */
  neighbours: number;
  /** Best first-stage score in its session / the best, in [0, 1]. */
  session: number;
  /** Share of the query's nouns (names, places, things; speakers aside) the memory holds, weighted by rarity, in [0, 1]. */
  entity: number;
  /** Whether the query names the memory's speaker, another speaker of the scope, or none. */
  speaker: "named" | "other named" | "not named";
  /** How close a day the query names is to the day the memory was said or names: 1 same day, 0 two days or more off (or no day named). */
  date: number;
  /** The learned ranker's log-odds, from every signal (see docs/retrieval.md). */
  logit: number;
  /** The ranker's probability that the memory holds what the query asks: the result's `score`. */
  probability: number;
}

export type MemoryEvent = "ADD" | "UPDATE" | "DELETE" | "NONE";

export interface AddResultItem {
  id: string;
  memory: string;
  event: MemoryEvent;
  /** The text before an UPDATE or DELETE. */
  previousMemory?: string;
}

/** What an `add` cost. */
export interface Usage {
  llmCalls: number;
  inputTokens: number;
  outputTokens: number;
  embeddingCalls: number;
}

/**
 * Given to `onUsage` with the usage of each add, once, when the add's changes are decided (a
 * write-behind turn re-applied after a crash is not counted twice).
 */
export interface UsageContext {
  /** The scope of the add. */
  scope: { userId?: string; agentId?: string; runId?: string };
  /** Outbox entry id, for adds run by the write-behind worker. */
  entryId?: string;
  /** True when deciding failed after spending this (the model failed, or its output could not be used): nothing was stored. */
  failed: boolean;
}

export interface AddResult {
  results: AddResultItem[];
  usage: Usage;
  /** Things the call ignored rather than applied (e.g. a model's decision about an id it was not shown). */
  warnings?: string[];
  /** Set when the extraction call changed the profile of the add's scope. */
  profile?: ProfileChange;
}

/** A change of a scope's profile made by an `add` with extraction. */
export interface ProfileChange {
  /** The profile text now (null: cleared). */
  text: string | null;
  /** The text before (null: there was none). */
  previousText: string | null;
}

export interface HistoryRecord {
  memoryId: string;
  event: "ADD" | "UPDATE" | "DELETE" | "MERGE";
  previousValue: string | null;
  newValue: string | null;
  createdAt: string;
}

/** A turn in the write-behind outbox that is not done yet. */
export interface PendingTurn {
  id: string;
  status: "pending" | "processing" | "failed";
  messages: Message[];
  userId?: string;
  agentId?: string;
  runId?: string;
  attempts: number;
  lastError?: string;
  createdAt: string;
  nextAttemptAt: string;
}

/** Context given to `onError` with each failure Engram handles in the background or retries. */
export interface ErrorContext {
  /** What failed: `"write-behind"`, `"embed"`, `"extract"`, … */
  operation: string;
  /** Outbox entry id, for write-behind failures. */
  entryId?: string;
  /** 0 for the first attempt. */
  attempt?: number;
  /** True when the operation will be tried again; false when Engram gave up (the turn stays in the outbox). */
  willRetry?: boolean;
}
