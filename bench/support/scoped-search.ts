// The timing loop both store benchmarks share: what Memory.search does after embedding the query
// (the store's vector search, its keyword search, the hybrid fusion), timed part by part.
import { performance } from "node:perf_hooks";
import { fuseHits } from "../../src/retrieval/hybrid.js";
import { isKeywordSearchable, type StoreFilter, type VectorStore } from "../../src/stores/vector-store.js";

export interface ScopedQuery {
  userId: string;
  text: string;
}

export interface SearchTimes {
  /** Vector + keyword + fusion, per query, ms. */
  total: number[];
  vector: number[];
  keyword: number[];
}

/** Results per search, as Memory.search asks the store for `limit` results. */
export const searchLimit = 10;
const candidates = Math.max(searchLimit * 3, 30);

/**
 * Times each query against `store` after a warm-up (statement planning, connections and caches are
 * not search latency), and checks that no result left its scope.
 */
export async function timeScopedSearches(
  store: VectorStore,
  queries: readonly ScopedQuery[],
  vectors: readonly Float32Array[],
  { warmUp = 10, keywordWeight = 0.3 }: { warmUp?: number; keywordWeight?: number } = {},
): Promise<SearchTimes> {
  const keywords = isKeywordSearchable(store) ? store : undefined;
  const run = async (i: number) => {
    const query = queries[i] as ScopedQuery;
    const queryVector = vectors[i] as Float32Array;
    const filter: StoreFilter = { scope: { userId: query.userId } };
    const t0 = performance.now();
    const vectorHits = await store.search({ vector: queryVector, filter, limit: candidates });
    const t1 = performance.now();
    const keywordHits = (await keywords?.keywordSearch({ text: query.text, filter, limit: candidates })) ?? [];
    const t2 = performance.now();
    const fused = fuseHits(vectorHits, keywordHits, queryVector, keywordWeight).slice(0, searchLimit);
    const t3 = performance.now();
    if (fused.some((hit) => hit.record.userId !== query.userId)) throw new Error("A search returned a record outside its scope");
    return { total: t3 - t0, vector: t1 - t0, keyword: t2 - t1 };
  };
  for (let i = 0; i < Math.min(warmUp, queries.length); i++) await run(i);
  const times: SearchTimes = { total: [], vector: [], keyword: [] };
  for (let i = 0; i < queries.length; i++) {
    const { total, vector, keyword } = await run(i);
    times.total.push(total);
    times.vector.push(vector);
    times.keyword.push(keyword);
  }
  return times;
}
