import { expiryOf } from "../lifecycle.js";
import { originOf } from "../memory-origin.js";
import type { ValidScope } from "../scope.js";
import type { RecordStamp, ScopeVersioned, StoreFilter, TimeOrdered, VectorStore } from "../stores/vector-store.js";
import { SESSION_GAP_MS } from "../verbatim/turns.js";
import { bm25Idf, bm25TermScore } from "./bm25.js";
import { stem, tokenize } from "./keywords.js";
import { type MemoryTable, MemoryTableBuilder } from "./memory-table.js";
import { dayOf } from "./nlp.js";
import { QuantizedBatch, QuantizedRows } from "./quantized-rows.js";

/**
 * The word statistics of a whole scope, its memories in time order (as `ScopeIndex` orders them):
 * what a scope past `LARGE_SCOPE` is ranked with, without keeping its vectors or texts in process.
 * Positions index the scope's memories oldest first.
 */
export interface ScopeWords {
  /** The store's token for the scope when these were read. */
  readonly version: string;
  /** How many memories (unexpired when read). */
  readonly count: number;
  readonly ids: readonly string[];
  /** Position of each id. */
  readonly position: ReadonlyMap<string, number>;
  /** Session number per position (sessions: memories less than `SESSION_GAP_MS` apart). */
  readonly session: Int32Array;
  readonly averageLength: number;
  readonly averageWindowLength: number;
  /** Stem of each word of a speaker's name → the name. */
  readonly speakers: ReadonlyMap<string, string>;
  readonly latestDay: number;
  /** The UTC day number each memory was said on, by position. */
  readonly days: Float64Array;
  /** When the first memory expires (ms): from then on the statistics are read again. */
  readonly expires: number;
  /** In how many memories / windows (a memory with the ones just before and after it in its session) a stem occurs. */
  documentFrequency(stem: string): number;
  windowFrequency(stem: string): number;
  /** Whether the memory at `position` was read as `stamp`'s version (id, hash, createdAt, updatedAt). */
  holds(position: number, stamp: RecordStamp): boolean;
  /** The memory at `position` as read: its stamp, speaker (if it has one) and expiry (if it expires). */
  at(position: number): { stamp: RecordStamp; speaker: string | undefined; expires: number | undefined };
  /** What ranking reads of the scope for a query's stems, computed once per query. */
  terms(stems: readonly string[]): ScopeTerms;
  /**
   * Every memory's vector, quantised, by position (for the vector side of search without the
   * store's scan); undefined when some memory has no vector or the vectors differ in dimension.
   */
  readonly rows?: QuantizedRows;
}

/** A query's stems against a scope's statistics (BM25: k1 = 1.2, b = 0.75). */
export interface ScopeTerms {
  /** BM25 of the memory at `position`. */
  bm25(position: number): number;
  /** The `limit` positions best by BM25, best first, ties oldest first; only those scoring above 0 and at least `atLeast`. */
  best(limit: number, atLeast?: number): number[];
  /** The position whose window scores best by BM25 (windows' statistics), ties oldest first; undefined when none matches. */
  bestWindow(): number | undefined;
  /**
   * How often each stem occurs in the window of the memory at `position` (`only`: in the memory
   * alone), and the window's (the memory's) length in words. A memory's own counts are computed
   * once per query and shared.
   */
  counts(position: number, only?: boolean): { tf: ReadonlyMap<string, number>; length: number };
}

interface Kept {
  readonly version: string;
  readonly words: ScopeWords;
  /** What was read of each memory, by position. */
  readonly table: MemoryTable;
  readonly vocabulary: Map<string, number>;
}

const PAGE = 500;
/** The counts of a memory or window holding none of a query's stems (most of those search looks at). */
const NO_COUNTS: ReadonlyMap<string, number> = new Map();
/** A query's memories best by BM25 are ranked this many at a time (search asks for up to 600: four pools). */
const RANKED = 600;
/**
 * Bounds below a score by more than this share (rounding of the sums aside) are taken to stay below
 * it (see `rank` and `bestWindow` in `terms`).
 */
const BOUND_MARGIN = 1e-9;
/** Large scopes whose statistics are kept per store, least recently used dropped first. */
const KEPT_SCOPES = 4;
const kept = new WeakMap<VectorStore, Map<string, { version: string; reading: Promise<Kept>; words?: ScopeWords }>>();

const scopeKey = (scope: ValidScope) => JSON.stringify([scope.userId ?? null, scope.agentId ?? null, scope.runId ?? null]);

/**
 * The statistics of `scope` last read, whatever has been written since (or undefined): what search
 * guesses the scope's speakers from while it checks the scope's version.
 */
export function lastScopeWords(store: VectorStore, scope: ValidScope): ScopeWords | undefined {
  return kept.get(store)?.get(scopeKey(scope))?.words;
}

/**
 * The word statistics of a scope, read again (only the memories added or changed since, then
 * counted again) whenever the store's token for the scope has changed, whoever wrote. Kept per
 * store and per exact scope: only that scope's filter is ever read into them.
 */
export async function scopeWords(
  store: VectorStore & ScopeVersioned & TimeOrdered,
  scope: ValidScope,
  { now = Date.now }: { now?: () => number } = {},
): Promise<ScopeWords | undefined> {
  const filter: StoreFilter = { scope };
  const version = await store.scopeVersion(filter);
  if (version === undefined) return undefined;
  const key = scopeKey(scope);
  const scopes = kept.get(store) ?? new Map<string, { version: string; reading: Promise<Kept>; words?: ScopeWords }>();
  kept.set(store, scopes);
  let entry = scopes.get(key);
  const settled = entry && (await entry.reading.catch(() => undefined));
  if (!entry || entry.version !== version || !settled || settled.words.expires <= now()) {
    const reading = read(store, filter, version, settled || undefined, now());
    const started: { version: string; reading: Promise<Kept>; words?: ScopeWords } = { version, reading };
    entry = started;
    reading.then(
      (done) => {
        started.words = done.words;
      },
      () => {
        if (scopes.get(key) === started) scopes.delete(key);
      },
    );
  }
  scopes.delete(key);
  scopes.set(key, entry);
  while (scopes.size > KEPT_SCOPES) scopes.delete(scopes.keys().next().value as string);
  return (await entry.reading).words;
}

async function read(
  store: VectorStore & TimeOrdered,
  filter: StoreFilter,
  version: string,
  before: Kept | undefined,
  at: number,
): Promise<Kept> {
  const stamps = await store.stamps(filter);
  const vocabulary = before?.vocabulary ?? new Map<string, number>();
  const idOf = (term: string) => {
    let id = vocabulary.get(term);
    if (id === undefined) {
      id = vocabulary.size;
      vocabulary.set(term, id);
    }
    return id;
  };
  // Per stamp, the position of the same version in the statistics read before, or −1.
  const earlier = new Int32Array(stamps.length).fill(-1);
  const missing: string[] = [];
  for (let k = 0; k < stamps.length; k++) {
    const stamp = stamps[k] as RecordStamp;
    const position = before?.words.position.get(stamp.id);
    if (position !== undefined && before?.table.holds(position, stamp)) earlier[k] = position;
    else missing.push(stamp.id);
  }
  // This read's vectors, quantised as they come (all of the scope's on its first read).
  let fresh = before?.words.rows && new QuantizedBatch(before.words.rows.dimension);
  // Sizes are hints (stems per memory guessed), grown when short.
  const fetchedTable = new MemoryTableBuilder({ memories: missing.length, terms: 10 * missing.length });
  // By id: the record's position in `fetchedTable`, and its vector's index in `fresh` (−1 without one).
  const fetched = new Map<string, { at: number; row: number }>();
  for (let start = 0; start < missing.length; start += PAGE) {
    for (const record of await store.get(missing.slice(start, start + PAGE), filter)) {
      const counts = new Map<number, number>();
      const tokens = tokenize(record.text);
      for (const token of tokens) {
        const id = idOf(stem(token));
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      if (record.vector) fresh ??= new QuantizedBatch(record.vector.length);
      const row = record.vector && fresh?.dimension === record.vector.length ? fresh.add(record.vector) : -1;
      const position = fetchedTable.add(record, counts, tokens.length, originOf(record.metadata)?.name, expiryOf(record));
      fetched.set(record.id, { at: position, row });
    }
  }
  const got = fetchedTable.build();
  const table = new MemoryTableBuilder({
    memories: stamps.length,
    terms: (before?.table.terms.length ?? 0) + got.terms.length,
  });
  // Where each kept memory's quantised vector comes from: its row read before (≥ 0), or this read's
  // (−1 − its index in `fresh`).
  const from: number[] = [];
  const rowsBefore = before?.words.rows;
  let complete = true;
  let expires = Number.POSITIVE_INFINITY;
  for (let k = 0; k < stamps.length; k++) {
    const stamp = stamps[k] as RecordStamp;
    const position = earlier[k] as number;
    let ends: number | undefined;
    let source: number | undefined;
    if (position >= 0 && before) {
      ends = before.table.expires(position);
      if (ends !== undefined && ends <= at) continue;
      table.copy(before.table, position);
      source = rowsBefore ? position : undefined;
    } else {
      const record = fetched.get(stamp.id);
      // Changed or deleted between the two reads: the next change of the token reads it again.
      if (!record || !got.holds(record.at, stamp)) continue;
      ends = got.expires(record.at);
      if (ends !== undefined && ends <= at) continue;
      table.copy(got, record.at);
      source = record.row < 0 ? undefined : -1 - record.row;
    }
    if (ends !== undefined) expires = Math.min(expires, ends);
    if (source === undefined) complete = false;
    else from.push(source);
  }
  const kept = table.build();
  // Without a vector for every memory (one read without a vector, vectors of two dimensions), search
  // asks the store for the vector candidates.
  const dimension = rowsBefore?.dimension ?? fresh?.dimension;
  const rows =
    complete && dimension !== undefined
      ? new QuantizedRows(dimension, Int32Array.from(from), {
          ...(rowsBefore && { before: rowsBefore }),
          ...(fresh && { fresh }),
        })
      : undefined;
  return { version, words: count(version, kept, vocabulary, expires, rows), table: kept, vocabulary };
}

/** Sessions, frequencies, windows and postings of memories in time order (the rules of `buildScopeIndex`). */
function count(
  version: string,
  table: MemoryTable,
  vocabulary: Map<string, number>,
  expires: number,
  rows: QuantizedRows | undefined,
): ScopeWords {
  const n = table.count;
  const size = vocabulary.size;
  const { termStart, terms: memoryTerms, termCounts, lengths } = table;
  const session = new Int32Array(n);
  const days = new Float64Array(n);
  let latestDay = Number.NEGATIVE_INFINITY;
  let createdBefore = Number.NaN;
  let updatedBefore = Number.NaN;
  for (let i = 0; i < n; i++) {
    const { createdAt, updatedAt } = table.stamp(i);
    const at = Date.parse(createdAt);
    if (i > 0) {
      // The memory before was last said when created, or when updated if that was before this one.
      const lastSaid = Math.max(createdBefore, Math.min(updatedBefore, at));
      session[i] = (session[i - 1] as number) + (at - lastSaid <= SESSION_GAP_MS ? 0 : 1);
    }
    createdBefore = at;
    updatedBefore = Date.parse(updatedAt);
    days[i] = dayOf(createdAt);
    latestDay = Math.max(latestDay, days[i] as number);
  }
  const linked = (i: number, j: number) => j >= 0 && j < n && session[i] === session[j];
  // How often the stem `id` occurs in the memory at `position` (0 if not), from its own words.
  const countIn = (position: number, id: number) => {
    for (let k = termStart[position] as number; k < (termStart[position + 1] as number); k++)
      if (memoryTerms[k] === id) return termCounts[k] as number;
    return 0;
  };
  // Scope-sized work arrays for a query's BM25 ranking and best window, made on first use and
  // shared by the queries: each pass runs synchronously and leaves them zeroed.
  let scratch: { scores: Float64Array; counts: Int32Array; seen: Uint8Array; touched: Int32Array; reached: Int32Array } | undefined;
  const scratchOf = () => {
    scratch ??= {
      scores: new Float64Array(n),
      counts: new Int32Array(n),
      seen: new Uint8Array(n),
      touched: new Int32Array(n),
      reached: new Int32Array(n),
    };
    return scratch;
  };
  const documentFrequency = new Int32Array(size);
  const windowFrequency = new Int32Array(size);
  const seen = new Int32Array(size).fill(-1);
  let totalLength = 0;
  let totalWindow = 0;
  const windowLengths = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let windowLength = 0;
    for (let j = i - 1; j <= i + 1; j++) if (linked(i, j)) windowLength += lengths[j] as number;
    windowLengths[i] = windowLength;
    totalWindow += windowLength;
  }
  const averageWindowLength = totalWindow / n || 1;
  // Per stem, the most its occurrences in one window can add to the window's BM25 for an idf of 1:
  // what bounds a stem's share of any window's score (see `bestWindow` in `terms`).
  const windowShare = new Float64Array(size);
  const inWindow = new Int32Array(size);
  const held: number[] = [];
  const speakers = new Map<string, string>();
  // The stems of each speaker's name, tokenised once per name.
  const nameStems = new Map<string, string[]>();
  for (let i = 0; i < n; i++) {
    totalLength += lengths[i] as number;
    for (let k = termStart[i] as number; k < (termStart[i + 1] as number); k++) {
      const term = memoryTerms[k] as number;
      documentFrequency[term] = (documentFrequency[term] as number) + 1;
    }
    for (let j = i - 1; j <= i + 1; j++) {
      if (!linked(i, j)) continue;
      for (let k = termStart[j] as number; k < (termStart[j + 1] as number); k++) {
        const term = memoryTerms[k] as number;
        if (seen[term] !== i) {
          seen[term] = i;
          windowFrequency[term] = (windowFrequency[term] as number) + 1;
          held.push(term);
        }
        inWindow[term] = (inWindow[term] as number) + (termCounts[k] as number);
      }
    }
    for (const term of held) {
      const most = bm25TermScore(1, inWindow[term] as number, windowLengths[i] as number, averageWindowLength);
      if (most > (windowShare[term] as number)) windowShare[term] = most;
      inWindow[term] = 0;
    }
    held.length = 0;
    const speaker = table.speaker(i);
    if (speaker !== undefined) {
      let stems = nameStems.get(speaker);
      if (!stems) {
        stems = tokenize(speaker).map(stem);
        nameStems.set(speaker, stems);
      }
      for (const word of stems) speakers.set(word, speaker);
    }
  }
  const averageLength = totalLength / n || 1;
  // Postings, one array for all stems: per stem (from `postingStart[stem]`), the positions holding it
  // and its count there, interleaved. With them, per stem, the most its occurrences in one memory can
  // add to the memory's BM25 for an idf of 1: what bounds a stem's share of any memory's score (see
  // `rank` in `terms`).
  const share = new Float64Array(size);
  const postingStart = new Int32Array(size + 1);
  for (let term = 0; term < size; term++) postingStart[term + 1] = (postingStart[term] as number) + 2 * (documentFrequency[term] as number);
  const postings = new Int32Array(postingStart[size] as number);
  const filled = postingStart.slice(0, size);
  for (let i = 0; i < n; i++) {
    for (let k = termStart[i] as number; k < (termStart[i + 1] as number); k++) {
      const term = memoryTerms[k] as number;
      const count = termCounts[k] as number;
      const at = filled[term] as number;
      postings[at] = i;
      postings[at + 1] = count;
      filled[term] = at + 2;
      const most = bm25TermScore(1, count, lengths[i] as number, averageLength);
      if (most > (share[term] as number)) share[term] = most;
    }
  }
  const { ids } = table;
  const frequencyOf = (table: Int32Array) => (term: string) => {
    const id = vocabulary.get(term);
    return id === undefined || id >= size ? 0 : (table[id] as number);
  };
  const documentFrequencyOf = frequencyOf(documentFrequency);
  return {
    version,
    count: n,
    ids,
    position: new Map(ids.map((id, i) => [id, i])),
    session,
    averageLength,
    averageWindowLength,
    speakers,
    latestDay: Number.isFinite(latestDay) ? latestDay : dayOf(new Date().toISOString()),
    days,
    expires,
    documentFrequency: documentFrequencyOf,
    windowFrequency: frequencyOf(windowFrequency),
    holds: (position, stamp) => table.holds(position, stamp),
    at: (position) => ({ stamp: table.stamp(position), speaker: table.speaker(position), expires: table.expires(position) }),
    ...(rows && { rows }),
    terms(stems) {
      const wanted = new Map<number, string>();
      for (const term of stems) {
        const id = vocabulary.get(term);
        if (id !== undefined && id < size) wanted.set(id, term);
      }
      // Rarest first: the passes over postings below can then leave most of the most frequent stems'
      // postings unread. Each of them and each memory's BM25 sum the stems in this order, so a memory's
      // score is the same to the bit whichever computed it.
      const ids = [...wanted.keys()].sort((a, b) => (documentFrequency[a] as number) - (documentFrequency[b] as number));
      const named = ids.map((id) => wanted.get(id) as string);
      // By vocabulary id: 1 + the index of the wanted stem in `ids` and `named`, else 0 (`counts` looks up every word of a memory).
      const slot = ids.length < 256 ? new Uint8Array(size) : new Uint16Array(size);
      for (const [k, id] of ids.entries()) slot[id] = k + 1;
      const idfOf = (frequency: number) => bm25Idf(n, frequency);
      const idfs = ids.map((id) => idfOf(documentFrequency[id] as number));
      const windowIdfs = ids.map((id) => idfOf(windowFrequency[id] as number));
      // What the stems from the t-th on can add at most to a memory's score, and to a window's.
      const rest = new Float64Array(ids.length + 1);
      const windowRest = new Float64Array(ids.length + 1);
      for (let t = ids.length - 1; t >= 0; t--) {
        const id = ids[t] as number;
        rest[t] = (rest[t + 1] as number) + (idfs[t] as number) * (share[id] as number);
        windowRest[t] = (windowRest[t + 1] as number) + (windowIdfs[t] as number) * (windowShare[id] as number);
      }
      // BM25 of one memory from its own words, summed stem by stem in the order of `ids` (as `rank` sums them).
      const counted = new Float64Array(named.length);
      // Search asks for the same memories' BM25 several times (bounds, then scores).
      const known = new Map<number, number>();
      const bm25 = (position: number) => {
        let score = known.get(position);
        if (score === undefined) {
          score = bm25Here(position);
          known.set(position, score);
        }
        return score;
      };
      const bm25Here = (position: number) => {
        let any = false;
        for (let k = termStart[position] as number; k < (termStart[position + 1] as number); k++) {
          const at = slot[memoryTerms[k] as number];
          if (!at) continue;
          counted[at - 1] = termCounts[k] as number;
          any = true;
        }
        if (!any) return 0;
        let score = 0;
        for (let t = 0; t < ids.length; t++) {
          const tf = counted[t] as number;
          if (tf === 0) continue;
          counted[t] = 0;
          score += bm25TermScore(idfs[t] as number, tf, lengths[position] as number, averageLength);
        }
        return score;
      };
      // How often each stem occurs in the memory at a position, and its length: computed once per
      // position (search asks for a memory's own counts and for those of the windows around it).
      const single = new Map<number, { tf: ReadonlyMap<string, number>; length: number }>();
      const countsOf = (position: number) => {
        let counted = single.get(position);
        if (!counted) {
          let tf: Map<string, number> | undefined;
          for (let k = termStart[position] as number; k < (termStart[position + 1] as number); k++) {
            const at = slot[memoryTerms[k] as number];
            if (!at) continue;
            const term = named[at - 1] as string;
            tf ??= new Map<string, number>();
            tf.set(term, (tf.get(term) ?? 0) + (termCounts[k] as number));
          }
          counted = { tf: tf ?? NO_COUNTS, length: lengths[position] as number };
          single.set(position, counted);
        }
        return counted;
      };
      // The memories best by BM25, best first, as many as the largest `limit` asked so far (at least RANKED):
      // one pass over the stems' postings in the scope's scratch arrays, reset after.
      let ranked: number[] = [];
      let rankedFor = 0;
      const rank = (limit: number) => {
        if (limit <= rankedFor) return ranked;
        rankedFor = Math.max(limit, RANKED);
        const { scores, touched, seen: held } = scratchOf();
        let count = 0;
        let highest = 0;
        // Once the stems left cannot lift a memory not reached yet to a score `rankedFor` memories
        // reached have, their postings only add to the memories reached that they can still lift to it.
        let restricted = false;
        for (let t = 0; t < ids.length; t++) {
          const left = rest[t] as number;
          if (t > 0 && count >= rankedFor && below(left, highest)) {
            const floor = floorOfBest(scores, touched, count, rankedFor, highest);
            if (below(left, floor)) {
              count = keepReaching(touched, count, scores, held, left, floor);
              restricted = true;
            }
          }
          const id = ids[t] as number;
          if (!documentFrequency[id]) continue;
          const idf = idfs[t] as number;
          if (restricted && count * LOOKUP_COST < (documentFrequency[id] as number)) {
            // Far fewer memories left than the stem's postings: their own words are read instead.
            for (let r = 0; r < count; r++) {
              const position = touched[r] as number;
              const tf = countIn(position, id);
              if (tf === 0) continue;
              const score = (scores[position] as number) + bm25TermScore(idf, tf, lengths[position] as number, averageLength);
              scores[position] = score;
              if (score > highest) highest = score;
            }
            continue;
          }
          for (let k = postingStart[id] as number; k < (postingStart[id + 1] as number); k += 2) {
            const position = postings[k] as number;
            if (restricted && !held[position]) continue;
            if (scores[position] === 0) touched[count++] = position;
            const score =
              (scores[position] as number) + bm25TermScore(idf, postings[k + 1] as number, lengths[position] as number, averageLength);
            scores[position] = score;
            if (score > highest) highest = score;
          }
        }
        ranked = best(touched.subarray(0, count), scores, rankedFor);
        // Summed as `bm25Here` sums them: the same values, kept for the bounds and scores asked next.
        for (const position of ranked) known.set(position, scores[position] as number);
        for (let k = 0; k < count; k++) {
          scores[touched[k] as number] = 0;
          held[touched[k] as number] = 0;
        }
        return ranked;
      };
      let bestWindow: number | undefined | null = null;
      return {
        bm25,
        best: (limit, atLeast = 0) => {
          const top = rank(limit);
          // Scores fall along `top`: those reaching `atLeast` are a prefix.
          let end = 0;
          while (end < top.length && end < limit && bm25(top[end] as number) >= atLeast) end++;
          return top.slice(0, end);
        },
        bestWindow() {
          if (bestWindow !== null) return bestWindow;
          const { scores: windowScores, counts: windowCounts, touched: all, reached, seen: reachedAny } = scratchOf();
          let allCount = 0;
          let highest = 0;
          // Once the stems left cannot lift a window not reached yet to the best reached, their
          // postings only add to the windows reached that they can still lift to it.
          let restricted = false;
          for (let t = 0; t < ids.length; t++) {
            const left = windowRest[t] as number;
            if (t > 0 && below(left, highest)) {
              allCount = keepReaching(all, allCount, windowScores, reachedAny, left, highest);
              restricted = true;
            }
            const id = ids[t] as number;
            const frequency = windowFrequency[id] as number;
            if (!frequency) continue;
            const idf = windowIdfs[t] as number;
            if (restricted && allCount * 3 * LOOKUP_COST < (documentFrequency[id] as number)) {
              // Far fewer windows left than the stem's postings: their memories' own words are read instead.
              for (let r = 0; r < allCount; r++) {
                const j = all[r] as number;
                let tf = 0;
                for (let i = j - 1; i <= j + 1; i++) if (linked(j, i)) tf += countIn(i, id);
                if (tf === 0) continue;
                const score = (windowScores[j] as number) + bm25TermScore(idf, tf, windowLengths[j] as number, averageWindowLength);
                windowScores[j] = score;
                if (score > highest) highest = score;
              }
              continue;
            }
            let reachedCount = 0;
            for (let k = postingStart[id] as number; k < (postingStart[id + 1] as number); k += 2) {
              const position = postings[k] as number;
              for (let j = position - 1; j <= position + 1; j++) {
                if (!linked(position, j) || (restricted && !reachedAny[j])) continue;
                if (windowCounts[j] === 0) reached[reachedCount++] = j;
                windowCounts[j] = (windowCounts[j] as number) + (postings[k + 1] as number);
              }
            }
            for (let r = 0; r < reachedCount; r++) {
              const j = reached[r] as number;
              const tf = windowCounts[j] as number;
              const score = (windowScores[j] as number) + bm25TermScore(idf, tf, windowLengths[j] as number, averageWindowLength);
              windowScores[j] = score;
              if (score > highest) highest = score;
              windowCounts[j] = 0;
              if (!reachedAny[j]) {
                reachedAny[j] = 1;
                all[allCount++] = j;
              }
            }
          }
          bestWindow = undefined;
          for (let k = 0; k < allCount; k++) {
            const j = all[k] as number;
            if (
              bestWindow === undefined ||
              (windowScores[j] as number) > (windowScores[bestWindow] as number) ||
              (windowScores[j] === windowScores[bestWindow] && j < bestWindow)
            )
              bestWindow = j;
          }
          for (let k = 0; k < allCount; k++) {
            const j = all[k] as number;
            windowScores[j] = 0;
            reachedAny[j] = 0;
          }
          return bestWindow;
        },
        counts(position, only = false) {
          if (only) return countsOf(position);
          // A window's counts are its memories' own, summed in the order they were said.
          let tf: Map<string, number> | undefined;
          let length = 0;
          for (let j = position - 1; j <= position + 1; j++) {
            if (!linked(position, j)) continue;
            const own = countsOf(j);
            length += own.length;
            if (own.tf.size === 0) continue;
            tf ??= new Map<string, number>();
            const window = tf;
            own.tf.forEach((count, term) => {
              window.set(term, (window.get(term) ?? 0) + count);
            });
          }
          return { tf: tf ?? NO_COUNTS, length };
        },
      };
    },
  };
}

/**
 * Once a pass over postings is left with few memories (or windows) that can still reach the best,
 * a stem whose postings outnumber them this many times over is counted from those memories' own
 * words instead: a lookup in a memory's few stems, at a random place, costs about that many steps of
 * the walk along the postings.
 */
const LOOKUP_COST = 32;

/** Whether a bound stays below `floor` by more than rounding could account for (`BOUND_MARGIN`). */
const below = (bound: number, floor: number) => bound * (1 + BOUND_MARGIN) < floor;

/**
 * Of the first `count` of `positions`, keeps at the front, in order, those whose score plus `left`
 * can still reach `floor`, and marks them in `marks`; clears the others' scores and marks. Returns
 * how many are kept.
 */
function keepReaching(positions: Int32Array, count: number, scores: Float64Array, marks: Uint8Array, left: number, floor: number): number {
  let kept = 0;
  for (let k = 0; k < count; k++) {
    const position = positions[k] as number;
    if (below((scores[position] as number) + left, floor)) {
      scores[position] = 0;
      marks[position] = 0;
    } else {
      positions[kept++] = position;
      marks[position] = 1;
    }
  }
  return kept;
}

/**
 * A score that at least `rank` of the first `count` positions reach, their highest being `highest`:
 * the lower edge of the histogram bucket where the count from the top reaches `rank`, less the
 * rounding margin. 0 when fewer reach any.
 */
function floorOfBest(scores: Float64Array, positions: Int32Array, count: number, rank: number, highest: number): number {
  const buckets = 256;
  const histogram = new Int32Array(buckets);
  const scale = buckets / highest;
  for (let k = 0; k < count; k++) {
    const bucket = Math.min(buckets - 1, Math.floor((scores[positions[k] as number] as number) * scale));
    histogram[bucket] = (histogram[bucket] as number) + 1;
  }
  let above = 0;
  for (let bucket = buckets - 1; bucket >= 0; bucket--) {
    above += histogram[bucket] as number;
    if (above >= rank) return (bucket / scale) * (1 - BOUND_MARGIN);
  }
  return 0;
}

/** The `limit` positions best by score, best first, ties by the smaller position (a bounded heap: most are never sorted). */
function best(positions: Iterable<number>, scores: Float64Array, limit: number): number[] {
  const heap: number[] = [];
  // Worse: the lower score, or the same score and the later position.
  const worse = (a: number, b: number) => (scores[a] as number) < (scores[b] as number) || (scores[a] === scores[b] && a > b);
  const swap = (i: number, j: number) => {
    const t = heap[i] as number;
    heap[i] = heap[j] as number;
    heap[j] = t;
  };
  for (const position of positions) {
    if (!((scores[position] as number) > 0) || limit <= 0) continue;
    if (heap.length < limit) {
      heap.push(position);
      for (let i = heap.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1;
        if (!worse(heap[i] as number, heap[parent] as number)) break;
        swap(i, parent);
        i = parent;
      }
    } else if (worse(heap[0] as number, position)) {
      heap[0] = position;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && worse(heap[l] as number, heap[m] as number)) m = l;
        if (r < heap.length && worse(heap[r] as number, heap[m] as number)) m = r;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
    }
  }
  return heap.sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
}
