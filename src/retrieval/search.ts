import type { WrappedEmbedder } from "../embedders/wrap-embedder.js";
import { isKeywordSearchable, type ScoredRecord, type StoreFilter, type VectorStore } from "../stores/vector-store.js";
import { type FusedHit, fuseHits } from "./hybrid.js";

export interface SearchRequest {
  text: string;
  filter: StoreFilter;
  limit: number;
  threshold: number;
  keywordWeight: number;
  /** Passed on to the embedder and the store. */
  signal?: AbortSignal;
}

/**
 * Hybrid search inside a filter: the query goes to the embedder first and the keyword lookup,
 * which needs no vector, runs meanwhile; then the vector search; then fusion, the threshold and
 * the limit. Both sides fetch `max(3 · limit, 30)` candidates.
 */
export async function hybridSearch(
  { store, embedder }: { store: VectorStore; embedder: WrappedEmbedder },
  { text, filter, limit, threshold, keywordWeight, signal }: SearchRequest,
): Promise<FusedHit[]> {
  const candidates = Math.max(limit * 3, 30);
  const embedding = embedder.embed([text], { signal });
  const keywordSearch: Promise<ScoredRecord[]> =
    keywordWeight > 0 && isKeywordSearchable(store) ? store.keywordSearch({ text, filter, limit: candidates }) : Promise.resolve([]);
  const [[vector], keywordHits] = (await Promise.all([embedding, keywordSearch])) as [[Float32Array], ScoredRecord[]];
  const vectorHits = await store.search({ vector, filter, limit: candidates });
  return fuseHits(vectorHits, keywordHits, vector, keywordWeight)
    .filter((hit) => hit.score >= threshold)
    .slice(0, limit);
}
