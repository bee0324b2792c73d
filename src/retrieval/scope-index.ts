import { expiryOf } from "../lifecycle.js";
import { originOf } from "../memory-origin.js";
import type { ValidScope } from "../scope.js";
import { dotProduct } from "../store-kit/filter.js";
import {
  isScopeVersioned,
  isTimeOrdered,
  type MemoryRecord,
  type RecordStamp,
  type StoreFilter,
  type VectorStore,
} from "../stores/vector-store.js";
import { SESSION_GAP_MS } from "../verbatim/turns.js";
import { stem, tokenize } from "./keywords.js";
import { dayOf, type Nlp } from "./nlp.js";

/** A stored memory with what ranking reads of it, computed once per version. */
export interface IndexedMemory {
  readonly record: MemoryRecord;
  /** Its embedding; empty when `cosineTo` stands for it. */
  readonly vector: Float32Array;
  /**
   * Its cosine similarity to a query's vector, for a memory ranked without its vector (a large
   * scope's memories not read from the store: from its quantised vector). Ranking calls it instead
   * of reading `vector` when it is there.
   */
  readonly cosineTo?: (vector: Float32Array) => number;
  /** The `name` its messages were given (verbatim memories), else undefined. */
  readonly speaker?: string;
  /** Porter stems of its words, with their counts. */
  readonly tf: ReadonlyMap<string, number>;
  /** Sum of the squares of `vector` (for cosine similarity). */
  readonly squaredNorm: number;
  /** When it expires (ms since the epoch), or +Infinity. */
  readonly expires: number;
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
  /** Names it greets or thanks someone by, as written ("Hey Kate!", "Thank you so much, Kate."): see `ScopeIndex.speakers`. */
  readonly vocatives: readonly string[];
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
  /** Per stem: in how many memories it occurs. */
  readonly documentFrequency: ReadonlyMap<string, number>;
  /**
   * Per stem: the memories holding it (ascending) and how often each holds it, so that keyword
   * scoring reads the memories that match and no other. A window's counts (a memory with its
   * neighbours) are summed from these at query time. Empty in an index with `scopeWide`: its
   * scoring reads each memory's own counts.
   */
  readonly postings: ReadonlyMap<string, Posting>;
  /** Per memory: the words of its window (itself and its neighbours in the session). */
  readonly windowLength: Float64Array;
  readonly averageLength: number;
  readonly averageWindowLength: number;
  /**
   * Stem of each word of a speaker's name → the name; also of each name the speakers call one of
   * them by (`aliasesOf`: "Hey Kate!" said to Emi at least 3 times makes "Kate" name Emi).
   */
  readonly speakers: ReadonlyMap<string, string>;
  /** The day of the latest memory (relative dates in a query are read against it). */
  readonly latestDay: number;
  /**
   * The whole scope's word statistics, when `memories` are only some of its memories (a scope past
   * `LARGE_SCOPE`): BM25 then weighs stems by the scope's frequencies, and a window's counts are
   * the scope's (its neighbours need not be among `memories`). Undefined: those of `memories`.
   */
  readonly scopeWide?: ScopeWideWords;
}

/** The word statistics of a whole scope, for an index of some of its memories. */
export interface ScopeWideWords {
  /** How many memories (and windows) the scope holds. */
  readonly count: number;
  /** In how many windows of the scope a stem occurs (`documentFrequency` holds the scope's memories' counts). */
  windowFrequency(stem: string): number;
  /** Per memory of the index: how often each query stem occurs in its window in the scope. */
  readonly windowCounts: readonly ReadonlyMap<string, number>[];
}

/** The memories (indices into the scope index) holding a stem, and the count in each. */
export interface Posting {
  readonly memories: readonly number[];
  readonly counts: readonly number[];
}

/** A memory version's key: id, hash and updatedAt. */
export const stampKey = (stamp: { id: string; hash: string; updatedAt: string }) =>
  `${stamp.id}\u0000${stamp.hash}\u0000${stamp.updatedAt}`;

/**
 * What ranking reads of one record: its words, dates and speaker. `counted`: its stem counts and
 * length when known already (then `tf` holds what the caller counted, e.g. only a query's stems).
 */
export function indexMemory(record: MemoryRecord, nlp: Nlp, counted?: { tf: ReadonlyMap<string, number>; length: number }): IndexedMemory {
  if (!record.vector) throw new TypeError(`record ${record.id} has no vector`);
  const speaker = originOf(record.metadata)?.name;
  const body = speaker !== undefined && record.text.startsWith(`${speaker}: `) ? record.text.slice(speaker.length + 2) : record.text;
  let tf = counted?.tf;
  let length = counted?.length ?? 0;
  if (!tf) {
    const own = new Map<string, number>();
    const words = tokenize(record.text);
    for (const word of words) {
      const stemmed = stem(word);
      own.set(stemmed, (own.get(stemmed) ?? 0) + 1);
    }
    tf = own;
    length = words.length;
  }
  const day = dayOf(record.createdAt);
  let days: number[] | undefined;
  const squaredNorm = dotProduct(record.vector, record.vector);
  return {
    record,
    vector: record.vector,
    ...(speaker === undefined ? {} : { speaker }),
    tf,
    squaredNorm,
    expires: expiryOf(record) ?? Number.POSITIVE_INFINITY,
    length,
    day,
    get days() {
      days ??= [day, ...nlp.days(body, new Date(record.createdAt))];
      return days;
    },
    isQuestion: /\?\s*$/.test(body),
    vocatives: vocativesOf(body),
  };
}

// A greeting or thanks, then a capitalised word ending the clause: "Hey Kate!", "Thank you so much Kate.", "Hi, Liza,".
const vocative =
  /(?:^|[\s,.!?])(?:[Hh]ey|[Hh]i|[Hh]ello|[Tt]hanks|[Tt]hank you(?: so much| very much)?|[Bb]ye|[Gg]ood (?:morning|night|evening)|[Cc]ongrats|[Cc]ongratulations)[,!]?\s+(\p{Lu}\p{Ll}+)(?=\s*(?:[,.!?]|$))/gu;

/** The names a text greets or thanks someone by. */
export function vocativesOf(text: string): string[] {
  return [...text.matchAll(vocative)].map((match) => match[1] as string);
}

/** At least this many greetings by a name make it name the speaker greeted. */
export const ALIAS_MIN_GREETINGS = 3;

/**
 * Names the speakers of a conversation call each other by, when they differ from the names their
 * messages carry (a display name "Emi" for someone the other calls "Kate"): a name greeted or
 * thanked at least `ALIAS_MIN_GREETINGS` times, each time addressed to the speaker of the nearest
 * memory of its session said by someone else (the one before, else the one after), and at least
 * two times in three to the same speaker. Returns the name, lower-cased → the speaker it names;
 * words of the speakers' own names are left out.
 */
export function aliasesOf(
  memories: readonly Pick<IndexedMemory, "speaker" | "vocatives">[],
  previous: Int32Array,
  next: Int32Array,
): Map<string, string> {
  const votes = new Map<string, Map<string, number>>();
  const nameWords = new Set<string>();
  for (const memory of memories) if (memory.speaker !== undefined) for (const word of tokenize(memory.speaker)) nameWords.add(word);
  memories.forEach((memory, i) => {
    if (memory.vocatives.length === 0 || memory.speaker === undefined) return;
    let addressee: string | undefined;
    for (const step of [previous, next]) {
      for (let j = step[i] as number; j >= 0 && addressee === undefined; j = step[j] as number) {
        const other = (memories[j] as IndexedMemory).speaker;
        if (other !== undefined && other !== memory.speaker) addressee = other;
      }
      if (addressee !== undefined) break;
    }
    if (addressee === undefined) return;
    for (const name of memory.vocatives) {
      const word = name.toLowerCase();
      if (nameWords.has(word)) continue;
      const byAddressee = votes.get(word) ?? new Map<string, number>();
      byAddressee.set(addressee, (byAddressee.get(addressee) ?? 0) + 1);
      votes.set(word, byAddressee);
    }
  });
  const aliases = new Map<string, string>();
  for (const [word, byAddressee] of votes) {
    const total = [...byAddressee.values()].reduce((a, b) => a + b, 0);
    const [speaker, count] = [...byAddressee].sort((a, b) => b[1] - a[1])[0] as [string, number];
    if (total >= ALIAS_MIN_GREETINGS && count * 3 >= total * 2) aliases.set(word, speaker);
  }
  return aliases;
}

/**
 * The index of memories given oldest first. `neighbours: false` links no memory to the one given
 * before it (sessions are still found): for memories that are not a whole scope, where the memory
 * given before another need not be the one said before it.
 */
export function buildScopeIndex(memories: readonly IndexedMemory[], { neighbours = true }: { neighbours?: boolean } = {}): ScopeIndex {
  return extendScopeIndex(undefined, 0, memories, { neighbours });
}

/**
 * `index`'s first `keep` memories followed by `tail`, as `buildScopeIndex` would index them all:
 * the kept memories' links, windows and postings are reused (only the posting lists of the stems
 * the dropped and added memories hold are copied), so a scope that grew at its end or whose last
 * memories changed is re-indexed at the cost of what changed. `index` itself is left as it was.
 */
export function extendScopeIndex(
  index: ScopeIndex | undefined,
  keep: number,
  tail: readonly IndexedMemory[],
  { neighbours = true }: { neighbours?: boolean } = {},
): ScopeIndex {
  const kept = index ? Math.min(keep, index.memories.length) : 0;
  const memories = kept === 0 ? [...tail] : [...(index as ScopeIndex).memories.slice(0, kept), ...tail];
  const n = memories.length;
  const previous = new Int32Array(n).fill(-1);
  const next = new Int32Array(n).fill(-1);
  const session = new Int32Array(n);
  const windowLength = new Float64Array(n);
  if (index && kept > 0) {
    previous.set(index.previous.subarray(0, kept));
    next.set(index.next.subarray(0, kept));
    session.set(index.session.subarray(0, kept));
    windowLength.set(index.windowLength.subarray(0, kept));
    next[kept - 1] = -1;
  }
  for (let i = Math.max(1, kept); i < n; i++) {
    const before = (memories[i - 1] as IndexedMemory).record;
    const at = Date.parse((memories[i] as IndexedMemory).record.createdAt);
    // A memory that grew by later messages was last said at its updatedAt (bounded: an edit made later is not speech).
    const lastSaid = Math.max(Date.parse(before.createdAt), Math.min(Date.parse(before.updatedAt), at));
    const same = at - lastSaid <= SESSION_GAP_MS;
    session[i] = (session[i - 1] as number) + (same ? 0 : 1);
    if (same && neighbours) {
      previous[i] = i - 1;
      next[i - 1] = i;
    }
  }
  // Postings: lists of the stems the dropped memories held are cut back to the kept memories
  // (a list is ascending), then the tail's stems are added; every list touched is a copy.
  const postings = new Map<string, { memories: number[]; counts: number[] }>(
    index && kept > 0 ? (index.postings as Map<string, { memories: number[]; counts: number[] }>) : [],
  );
  const copied = new Set<string>();
  const own = (term: string) => {
    let posting = postings.get(term);
    if (!posting) {
      posting = { memories: [], counts: [] };
      postings.set(term, posting);
      copied.add(term);
    } else if (!copied.has(term)) {
      posting = { memories: [...posting.memories], counts: [...posting.counts] };
      postings.set(term, posting);
      copied.add(term);
    }
    return posting;
  };
  if (index && kept > 0) {
    for (let i = kept; i < index.memories.length; i++) {
      for (const term of (index.memories[i] as IndexedMemory).tf.keys()) {
        const posting = own(term);
        while (posting.memories.length > 0 && (posting.memories.at(-1) as number) >= kept) {
          posting.memories.pop();
          posting.counts.pop();
        }
        if (posting.memories.length === 0) postings.delete(term);
      }
    }
  }
  for (let i = kept; i < n; i++) {
    for (const [term, count] of (memories[i] as IndexedMemory).tf) {
      const posting = own(term);
      posting.memories.push(i);
      posting.counts.push(count);
    }
  }
  const documentFrequency = new Map<string, number>(index && kept > 0 ? index.documentFrequency : []);
  for (const term of copied) {
    const posting = postings.get(term);
    if (posting) documentFrequency.set(term, posting.memories.length);
    else documentFrequency.delete(term);
  }
  // Windows: the last kept memory's may have lost or gained its next neighbour.
  for (let i = Math.max(0, kept - 1); i < n; i++) {
    let length = (memories[i] as IndexedMemory).length;
    if ((previous[i] as number) >= 0) length += (memories[previous[i] as number] as IndexedMemory).length;
    if ((next[i] as number) >= 0) length += (memories[next[i] as number] as IndexedMemory).length;
    windowLength[i] = length;
  }
  let totalLength = 0;
  let totalWindow = 0;
  let latestDay = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const memory = memories[i] as IndexedMemory;
    totalLength += memory.length;
    totalWindow += windowLength[i] as number;
    latestDay = Math.max(latestDay, memory.day);
  }
  // Each word of a speaker's name names the last speaker (in time order) whose name holds it.
  const speakers = new Map<string, string>();
  const seen = new Set<string>();
  for (let i = n - 1; i >= 0; i--) {
    const speaker = (memories[i] as IndexedMemory).speaker;
    if (speaker === undefined || seen.has(speaker)) continue;
    seen.add(speaker);
    for (const word of tokenize(speaker)) if (!speakers.has(stem(word))) speakers.set(stem(word), speaker);
  }
  for (const [alias, speaker] of aliasesOf(memories, previous, next)) if (!speakers.has(stem(alias))) speakers.set(stem(alias), speaker);
  return {
    memories,
    previous,
    next,
    session,
    documentFrequency,
    postings,
    windowLength,
    averageLength: totalLength / n || 1,
    averageWindowLength: totalWindow / n || 1,
    speakers,
    latestDay: Number.isFinite(latestDay) ? latestDay : dayOf(new Date().toISOString()),
  };
}

interface Entry {
  /** The scope's version read before the stamps (stores that keep one), else undefined. */
  token: string | undefined;
  index: ScopeIndex;
  /** Annotated memories by version: the index's, and others read since (bounded). */
  byKey: Map<string, IndexedMemory>;
  /** When the first memory of the index expires (ms): from then on the index is rebuilt without it. */
  expires: number;
}

const PAGE = 500;

/** Past this many memories changed or dropped at the end of a scope, its index is built anew. */
const REINDEX_SHARE = 0.25;

const sameVersion = (record: MemoryRecord, stamp: RecordStamp) =>
  record.id === stamp.id && record.hash === stamp.hash && record.updatedAt === stamp.updatedAt && record.createdAt === stamp.createdAt;

const keyOf = (scope: ValidScope) => JSON.stringify([scope.userId ?? null, scope.agentId ?? null, scope.runId ?? null]);

/**
 * Per-scope copies of the memories search ranks, so that a search does not re-read and re-annotate
 * the whole scope. Before each use the scope's version is read (stores that keep one, see
 * `ScopeVersioned`): while it is unchanged the copy is served as it is. Otherwise the scope's stamps are read from the
 * store: a memory deleted, purged or changed by anyone (another process included) is dropped or
 * re-read then, so a copy is never served stale; the memories from the first that differs on are
 * re-indexed, the ones before it kept. Only the exact scope's filter is ever read into an entry.
 * At most `maxScopes` scopes are kept, least recently used dropped first. A memory that has
 * expired at `now()` is left out of the index from that instant, swept or not.
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

  /**
   * The scope's index as last built, without reading the store (undefined when the scope has none
   * cached): its speakers and words are a guess a search can act on before the index is brought up
   * to date.
   */
  lastIndexOf(scope: ValidScope): ScopeIndex | undefined {
    return this.#entries.get(keyOf(scope))?.index;
  }

  /** The scope's index, brought up to date. `nlp` is awaited only when a memory must be (re)annotated. */
  async index(store: VectorStore, scope: ValidScope, nlp: Nlp | Promise<Nlp>): Promise<ScopeIndex> {
    const filter: StoreFilter = { scope };
    const key = keyOf(scope);
    const cached = this.#entries.get(key);
    const usable = cached !== undefined && (cached.expires === Number.POSITIVE_INFINITY || cached.expires > this.#now());
    // Read before the stamps: a write after this read changes the version the next search reads.
    const token = isScopeVersioned(store) ? await store.scopeVersion(filter) : undefined;
    if (usable && token !== undefined && cached.token === token) {
      this.#touch(key, cached);
      return cached.index;
    }
    const stamps = await stampsOf(store, filter);
    // The memories of the copy that are still the scope's first ones, unchanged.
    const previous = usable ? cached.index.memories : [];
    let keep = 0;
    while (
      keep < previous.length &&
      keep < stamps.length &&
      sameVersion((previous[keep] as IndexedMemory).record, stamps[keep] as RecordStamp)
    )
      keep++;
    if (usable && keep === previous.length && keep === stamps.length) {
      cached.token = token;
      this.#touch(key, cached);
      return cached.index;
    }
    const known = cached?.byKey ?? new Map<string, IndexedMemory>();
    const rest = stamps.slice(keep);
    const missing = rest.filter((stamp) => !known.has(stampKey(stamp))).map((stamp) => stamp.id);
    const fetched = new Map<string, MemoryRecord>();
    for (let start = 0; start < missing.length; start += PAGE) {
      for (const record of await store.get(missing.slice(start, start + PAGE), filter)) fetched.set(record.id, record);
    }
    const annotator = fetched.size > 0 ? await nlp : undefined;
    const now = this.#now();
    const tail: IndexedMemory[] = [];
    for (const stamp of rest) {
      const stampId = stampKey(stamp);
      let memory = known.get(stampId);
      if (!memory) {
        const record = fetched.get(stamp.id);
        // Changed or deleted between the two reads: the next search reads it again.
        if (!record || stampKey(record) !== stampId || !record.vector) continue;
        memory = indexMemory(record, annotator as Nlp);
      }
      if (memory.expires <= now) continue;
      tail.push(memory);
    }
    const reuse = usable && keep > 0 && previous.length - keep <= Math.max(1, previous.length * REINDEX_SHARE);
    const index = reuse ? extendScopeIndex(cached.index, keep, tail) : buildScopeIndex([...previous.slice(0, keep), ...tail]);
    let expires = Number.POSITIVE_INFINITY;
    for (const memory of index.memories) expires = Math.min(expires, memory.expires);
    // Versions read before stay known (a memory changed back and forth is not annotated again), up to twice the scope.
    const byKey = reuse && known.size + tail.length <= 2 * index.memories.length + 16 ? known : new Map<string, IndexedMemory>();
    if (byKey !== known) for (const memory of index.memories) byKey.set(stampKey(memory.record), memory);
    else for (const memory of tail) byKey.set(stampKey(memory.record), memory);
    const entry: Entry = { token, index, byKey, expires };
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
