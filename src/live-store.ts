import { isExpired } from "./lifecycle.js";
import {
  isKeywordSearchable,
  isTimeOrdered,
  type MemoryRecord,
  type ScoredRecord,
  type StoreFilter,
  type VectorStore,
} from "./stores/vector-store.js";

/** How far a top-k read widens its request at most when expired memories take its places. */
const MAX_WIDENING = 64;

/**
 * The store as readers see it at `now()`: memories that have expired are never returned, from the
 * instant they expire, whether or not a sweep has deleted them yet. Reads that return the best or
 * newest `limit` ask the store again for more when expired memories took places, so a limit still
 * yields live memories; `list` pages on until its page is full. Writes, `stamps` and `scopes`
 * pass through (the scope index drops expired memories itself; scope counts include them until a
 * sweep). Works over any `VectorStore`: the expiry is kept in each memory's metadata.
 */
export function liveStore(store: VectorStore, now: () => number): VectorStore {
  // The clock is read only for memories that have an expiry.
  const live = <T extends MemoryRecord>(records: readonly T[]) => records.filter((record) => !isExpired(record, now));
  const topK = async <T>(limit: number, read: (limit: number) => Promise<T[]>, recordOf: (item: T) => MemoryRecord): Promise<T[]> => {
    for (let asked = limit; ; asked *= 2) {
      const items = await read(asked);
      const kept = items.filter((item) => !isExpired(recordOf(item), now));
      if (kept.length >= limit || items.length < asked || asked >= limit * MAX_WIDENING) return kept.slice(0, limit);
    }
  };
  const reads: Record<string, (...args: never[]) => unknown> = {
    search: (request: { vector: Float32Array; filter: StoreFilter; limit: number }) =>
      topK<ScoredRecord>(
        request.limit,
        (limit) => store.search({ ...request, limit }),
        (hit) => hit.record,
      ),
    get: async (ids: readonly string[], filter: StoreFilter) => live(await store.get(ids, filter)),
    list: async ({ filter, limit, cursor }: { filter: StoreFilter; limit: number; cursor?: string }) => {
      const records: MemoryRecord[] = [];
      let next = cursor;
      do {
        const page = await store.list({ filter, limit: limit - records.length, ...(next ? { cursor: next } : {}) });
        records.push(...live(page.records));
        next = page.cursor;
      } while (next && records.length < limit);
      return { records, ...(next ? { cursor: next } : {}) };
    },
  };
  if (isKeywordSearchable(store)) {
    reads.keywordSearch = (request: { text: string; filter: StoreFilter; limit: number }) =>
      topK<ScoredRecord>(
        request.limit,
        (limit) => store.keywordSearch({ ...request, limit }),
        (hit) => hit.record,
      );
  }
  if (isTimeOrdered(store)) {
    reads.latest = (request: { filter: StoreFilter; limit: number }) =>
      topK<MemoryRecord>(
        request.limit,
        (limit) => store.latest({ ...request, limit }),
        (record) => record,
      );
  }
  // Everything else (writes, stamps, scopes, capabilities kept under symbols) passes through.
  return new Proxy(store, {
    get(target, property, receiver) {
      if (typeof property === "string" && Object.hasOwn(reads, property)) return reads[property];
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
