import { cosineSimilarity } from "../store-kit/filter.js";
import type { MemoryRecord, ScoredRecord } from "../stores/vector-store.js";

export interface FusedHit {
  record: MemoryRecord;
  /** (1 − keywordWeight) · vectorScore + keywordWeight · keywordScore, in [0, 1]. */
  score: number;
  /** Cosine similarity clamped to [0, 1]. */
  vectorScore: number;
  /** BM25 divided by the best BM25 of the query's keyword hits, in [0, 1]; 0 when not a keyword hit. */
  keywordScore: number;
}

/**
 * Hybrid scoring. Vector hits carry their cosine similarity; keyword hits carry BM25 and their
 * vector, so both kinds get both scores. The fused score is a convex combination, so it stays in
 * [0, 1] and a threshold means the same thing with or without keyword hits.
 */
export function fuseHits(
  vectorHits: readonly ScoredRecord[],
  keywordHits: readonly ScoredRecord[],
  queryVector: Float32Array,
  keywordWeight: number,
): FusedHit[] {
  const hits = new Map<string, FusedHit>();
  for (const { record, score } of vectorHits) {
    hits.set(record.id, { record, score: 0, vectorScore: Math.max(0, score), keywordScore: 0 });
  }
  const best = keywordHits.reduce((max, hit) => Math.max(max, hit.score), 0);
  for (const { record, score } of keywordHits) {
    const keywordScore = best > 0 ? score / best : 0;
    const existing = hits.get(record.id);
    if (existing) existing.keywordScore = keywordScore;
    else {
      const vectorScore = record.vector ? Math.max(0, cosineSimilarity(queryVector, record.vector)) : 0;
      const { vector: _vector, ...rest } = record;
      hits.set(record.id, { record: rest, score: 0, vectorScore, keywordScore });
    }
  }
  for (const hit of hits.values()) hit.score = (1 - keywordWeight) * hit.vectorScore + keywordWeight * hit.keywordScore;
  return [...hits.values()].sort((a, b) => b.score - a.score || (a.record.id < b.record.id ? -1 : 1));
}
