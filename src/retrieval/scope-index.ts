import { expiryOf } from "../lifecycle.js";
import { originOf } from "../memory-origin.js";
import type { ValidScope } from "../scope.js";
import { isTimeOrdered, type MemoryRecord, type RecordStamp, type StoreFilter, type VectorStore } from "../stores/vector-store.js";
import { SESSION_GAP_MS } from "../verbatim/turns.js";
import { stem, tokenize } from "./keywords.js";
import { dayOf, type Nlp } from "./nlp.js";

/** A stored memory with what ranking reads of it, computed once per version. */
export interface IndexedMemory {
  readonly record: MemoryRecord;
  readonly vector: Float32Array;
  /** The `name` its messages were given (verbatim memories), else undefined. */
  readonly speaker?: string;
  /** Porter stems of its words, with their counts. */
  readonly tf: ReadonlyMap<string, number>;
  /** How many words. */
  readonly length: number;
  /** The UTC day number of the day it was said. */
  readonly day: number;
  /**
   * UTC day numbers: the day it was said, and the days it names. Read on first use (chrono-node,
   * about a millisecond): only a query that names a day reads them.
   */
  readonly days: readonly number[];
  /** Ends with a question mark. */
  readonly isQuestion: boolean;
}

/**
 * A scope's memories in time order, with their context: the memories said just before and after
 * each in the same session, and the scope's word statistics (for BM25 over memories and over
 * windows of three).
 */
export interface ScopeIndex {
  readonly memories: readonly IndexedMemory[];
  /** Per memory: the index of the previous / next memory of the same session, or −1. */
  readonly previous: Int32Array;
  readonly next: Int32Array;
  /** Per memory: its session number (sessions are runs of memories less than `SESSION_GAP_MS` apart). */
  readonly session: Int32Array;
  /** Per stem: in how many memories / windows it occurs. */
  readonly documentFrequency: ReadonlyMap<string, number>;
  readonly windowFrequency: ReadonlyMap<string, number>;
  readonly windowTf: readonly ReadonlyMap<string, number>[];
  readonly windowLength: Float64Array;
  readonly averageLength: number;
  readonly averageWindowLength: number;
  /**
   * How many memories (and windows) the word statistics count, when `memories` are only some of the
   * scope's (a scope past `LARGE_SCOPE`). Undefined: `memories.length`.
   */
  readonly documentCount?: number;
  /** Stem of each word of a speaker's name → the name. */
  readonly speakers: ReadonlyMap<string, string>;
  /** The day of the latest memory (relative dates in a query are read against it). */
  readonly latestDay: number;
}

const stampKey = (stamp: { id: string; hash: string; updatedAt: string }) => `${stamp.id}\u0000${stamp.hash}\u0000${stamp.updatedAt}`;

/**
 * What ranking reads of one record: its words, dates and speaker. `counted`: its stem counts and
 * length when known already (then `tf` holds what the caller counted, e.g. only a query's stems).
 */
export function indexMemory(record: MemoryRecord, nlp: Nlp, counted?: { tf: Map<string, number>; length: number }): IndexedMemory {
  if (!record.vector) throw new TypeError(`record ${record.id} has no vector`);
  const speaker = originOf(record.metadata)?.name;
  const body = speaker !== undefined && record.text.startsWith(`${speaker}: `) ? record.text.slice(speaker.length + 2) : record.text;
  let tf = counted?.tf;
  let length = counted?.length ?? 0;
  if (!tf) {
    tf = new Map<string, number>();
    const words = tokenize(record.text);
    for (const word of words) {
      const stemmed = stem(word);
      tf.set(stemmed, (tf.get(stemmed) ?? 0) + 1);
    }
    length = words.length;
  }
  const day = dayOf(record.createdAt);
  let days: number[] | undefined;
  return {
    record,
    vector: record.vector,
    ...(speaker === undefined ? {} : { speaker }),
    tf,
    length,
    day,
    get days() {
      days ??= [day, ...nlp.days(body, new Date(record.createdAt))];
      return days;
    },
    isQuestion: /\?\s*$/.test(body),
  };
}

/** The index of memories given oldest first. */
export function buildScopeIndex(memories: readonly IndexedMemory[]): ScopeIndex {
  const n = memories.length;
  const previous = new Int32Array(n).fill(-1);
  const next = new Int32Array(n).fill(-1);
  const session = new Int32Array(n);
  for (let i = 1; i < n; i++) {
    const before = (memories[i - 1] as IndexedMemory).record;
    const at = Date.parse((memories[i] as IndexedMemory).record.createdAt);
    // A memory that grew by later messages was last said at its updatedAt (bounded: an edit made later is not speech).
    const lastSaid = Math.max(Date.parse(before.createdAt), Math.min(Date.parse(before.updatedAt), at));
    const same = at - lastSaid <= SESSION_GAP_MS;
    session[i] = (session[i - 1] as number) + (same ? 0 : 1);
    if (same) {
      previous[i] = i - 1;
      next[i - 1] = i;
    }
  }
  const documentFrequency = new Map<string, number>();
  const windowFrequency = new Map<string, number>();
  const windowTf: Map<string, number>[] = [];
  const windowLength = new Float64Array(n);
  let totalLength = 0;
  let totalWindow = 0;
  const speakers = new Map<string, string>();
  let latestDay = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const memory = memories[i] as IndexedMemory;
    for (const term of memory.tf.keys()) documentFrequency.set(term, (documentFrequency.get(term) ?? 0) + 1);
    const window = new Map(memory.tf);
    let length = memory.length;
    for (const j of [previous[i] as number, next[i] as number]) {
      if (j < 0) continue;
      const neighbour = memories[j] as IndexedMemory;
      for (const [term, count] of neighbour.tf) window.set(term, (window.get(term) ?? 0) + count);
      length += neighbour.length;
    }
    for (const term of window.keys()) windowFrequency.set(term, (windowFrequency.get(term) ?? 0) + 1);
    windowTf.push(window);
    windowLength[i] = length;
    totalLength += memory.length;
    totalWindow += length;
    if (memory.speaker !== undefined) for (const word of tokenize(memory.speaker)) speakers.set(stem(word), memory.speaker);
    latestDay = Math.max(latestDay, memory.day);
  }
  return {
    memories,
    previous,
    next,
    session,
    documentFrequency,
    windowFrequency,
    windowTf,
    windowLength,
    averageLength: totalLength / n || 1,
    averageWindowLength: totalWindow / n || 1,
    speakers,
    latestDay: Number.isFinite(latestDay) ? latestDay : dayOf(new Date().toISOString()),
  };
}

interface Entry {
  versions: string;
  index: ScopeIndex;
  byKey: Map<string, IndexedMemory>;
  /** When the first memory of the index expires (ms): from then on the index is rebuilt without it. */
  expires: number;
}

const PAGE = 500;

/**
 * Per-scope copies of the memories search ranks, so that a search does not re-read and re-annotate
 * the whole scope. Before each use the scope's stamps are read from the store: a memory deleted,
 * purged or changed by anyone (another process included) is dropped or re-read then, so a copy
 * is never served stale. Only the exact scope's filter is ever read into an entry. At most
 * `maxScopes` scopes are kept, least recently used dropped first. A memory that has expired at
 * `now()` is left out of the index from that instant, swept or not.
 */
export class ScopeIndexCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxScopes: number;
  readonly #now: () => number;

  constructor({ maxScopes = 32, now = Date.now }: { maxScopes?: number; now?: () => number } = {}) {
    this.#maxScopes = maxScopes;
    this.#now = now;
  }

  clear(): void {
    this.#entries.clear();
  }

  /** The scope's index, brought up to date. `nlp` is awaited only when a memory must be (re)annotated. */
  async index(store: VectorStore, scope: ValidScope, nlp: Nlp | Promise<Nlp>): Promise<ScopeIndex> {
    const filter: StoreFilter = { scope };
    const key = JSON.stringify([scope.userId ?? null, scope.agentId ?? null, scope.runId ?? null]);
    const stamps = await stampsOf(store, filter);
    const versions = stamps.map(stampKey).join("\u0001");
    const cached = this.#entries.get(key);
    if (cached?.versions === versions && (cached.expires === Number.POSITIVE_INFINITY || cached.expires > this.#now())) {
      this.#touch(key, cached);
      return cached.index;
    }
    const known = cached?.byKey ?? new Map<string, IndexedMemory>();
    const missing = stamps.filter((stamp) => !known.has(stampKey(stamp))).map((stamp) => stamp.id);
    const fetched = new Map<string, MemoryRecord>();
    for (let start = 0; start < missing.length; start += PAGE) {
      for (const record of await store.get(missing.slice(start, start + PAGE), filter)) fetched.set(record.id, record);
    }
    const annotator = fetched.size > 0 ? await nlp : undefined;
    const byKey = new Map<string, IndexedMemory>();
    const memories: IndexedMemory[] = [];
    let expires = Number.POSITIVE_INFINITY;
    for (const stamp of stamps) {
      const stampId = stampKey(stamp);
      let memory = known.get(stampId);
      if (!memory) {
        const record = fetched.get(stamp.id);
        // Changed or deleted between the two reads: the next search reads it again.
        if (!record || stampKey(record) !== stampId || !record.vector) continue;
        memory = indexMemory(record, annotator as Nlp);
      }
      const expiry = expiryOf(memory.record);
      if (expiry !== undefined && expiry <= this.#now()) continue;
      if (expiry !== undefined) expires = Math.min(expires, expiry);
      byKey.set(stampId, memory);
      memories.push(memory);
    }
    const entry: Entry = { versions, index: buildScopeIndex(memories), byKey, expires };
    this.#touch(key, entry);
    return entry.index;
  }

  #touch(key: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    while (this.#entries.size > this.#maxScopes) this.#entries.delete(this.#entries.keys().next().value as string);
  }
}

async function stampsOf(store: VectorStore, filter: StoreFilter): Promise<RecordStamp[]> {
  if (isTimeOrdered(store)) return store.stamps(filter);
  const stamps: RecordStamp[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({ filter, limit: PAGE, ...(cursor ? { cursor } : {}) });
    for (const { id, hash, createdAt, updatedAt } of page.records) stamps.push({ id, hash, createdAt, updatedAt });
    cursor = page.cursor;
  } while (cursor);
  return stamps;
}
