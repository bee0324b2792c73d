import type { Scope } from "../scope.js";

/** One directed fact between two entities: `Alice —manages→ Bob`. */
export interface Relation {
  readonly source: string;
  readonly relation: string;
  readonly target: string;
}

/** A relation as stored: with the memories that support it. */
export interface StoredRelation extends Relation {
  /** The memories that state it, oldest first. Never empty: a relation no memory supports is gone. */
  readonly memoryIds: readonly string[];
}

/** What one memory contributes to the graph of its scope (all of it; a removed memory contributes nothing). */
export interface MemoryGraph {
  readonly memoryId: string;
  /** The memory's own scope ids: its entities and relations belong to exactly this scope. */
  readonly scope: Scope;
  /** Entity names the memory mentions (the endpoints of its relations are mentioned too). */
  readonly entities: readonly string[];
  readonly relations: readonly Relation[];
}

/** One change of the graph, kept as its history: a memory started or stopped supporting a relation. */
export interface GraphChange {
  readonly memoryId: string;
  readonly event: "ADD" | "DELETE";
  readonly source: string;
  readonly relation: string;
  readonly target: string;
  readonly userId?: string;
  readonly agentId?: string;
  readonly runId?: string;
  /** ISO 8601. */
  readonly createdAt: string;
}

/** An entity reached from another one, `depth` relations away. */
export interface Neighbor {
  readonly entity: string;
  readonly depth: number;
}

/** A memory reached through the graph from the entities a query names. */
export interface ReachedMemory {
  readonly memoryId: string;
  /** 0: the memory mentions an entity of the query; 1: an entity one relation away from one; … */
  readonly depth: number;
}

/**
 * Entities and relations derived from memories, per scope. Every relation knows the memories that
 * support it, and disappears with the last of them. Entities are per scope exactly as memories
 * are: "Bob" in alice's memories and "Bob" in carol's are two entities. Every read takes a scope
 * whose ids are AND-ed exact matches, like search: `{ userId }` reads the graph of all that user's
 * agents and runs, where one name is one node.
 *
 * Entity names are compared case-insensitively (after Unicode NFKC and whitespace folding).
 *
 * Implementations: `sqliteGraph` (the embedded default, in the SQLite file of the memories) and
 * `postgresGraph` (the same tables on PostgreSQL, for many app servers). Both must be safe to
 * call concurrently.
 */
export interface GraphStore {
  /** Creates the tables; idempotent. */
  init(): Promise<void>;

  /**
   * Replaces what each memory contributes with what is given, in one transaction, and records
   * each relation a memory starts or stops supporting as a `GraphChange` stamped `at`. A
   * relation left with no memory is deleted, and so is an entity that no memory mentions.
   * `erase`: the given memories are being purged: their graph changes are deleted, not kept.
   */
  write(memories: readonly MemoryGraph[], options: { at: string; erase?: boolean }): Promise<void>;

  /**
   * Relations inside `scope`. With `entity`: those on paths of at most `depth` relations from it
   * (either direction). Same relation in several sub-scopes: one result, its memories merged.
   */
  relations(scope: Scope, query: { entity?: string; relation?: string; depth: number; limit: number }): Promise<StoredRelation[]>;

  /** Entities at most `depth` relations from `entity` inside `scope` (not itself), nearest first. */
  neighbors(scope: Scope, entity: string, options: { depth: number; limit: number }): Promise<Neighbor[]>;

  /**
   * Memories inside `scope` that mention one of `entities` (depth 0) or an entity up to `depth`
   * relations from one, nearest first.
   */
  memories(scope: Scope, entities: readonly string[], options: { depth: number; limit: number }): Promise<ReachedMemory[]>;

  /** Which known entities of `scope` the names are (the names as stored), for reading a query. */
  known(scope: Scope, names: readonly string[]): Promise<string[]>;

  /** The graph changes inside `scope`, oldest first, of one memory or of all. */
  changes(scope: Scope, options: { memoryId?: string; limit: number }): Promise<GraphChange[]>;

  /** Deletes everything inside `scope`, its graph changes included (`deleteAll` with `purge`). */
  purge(scope: Scope): Promise<void>;

  /** Deletes every scope's graph. */
  reset(): Promise<void>;

  close(): Promise<void>;
}
