import type { WrappedEmbedder } from "../embedders/wrap-embedder.js";
import type { ValidScope } from "../scope.js";
import { matchesFilter } from "../store-kit/filter.js";
import type { MemoryRecord, MetadataValue, VectorStore } from "../stores/vector-store.js";
import type { ScoreExplanation } from "../types.js";
import { withinTokenBudget } from "./budget.js";
import { type CutoffModel, defaultCutoff, keptByCutoff, keptBySimilarity, SMALL_SCOPE } from "./cutoff.js";
import {
  analyseQueryText,
  completeFeatures,
  type PreparedFeatures,
  prepareFeatures,
  type QueryVectors,
  type QueryWords,
  type RankQuery,
} from "./features.js";
import { isLargeScope, rankLargeScope } from "./large-scope.js";
import { loadNlp } from "./nlp.js";
import { defaultRanker, type LinearModel, logitOf, sigmoid } from "./ranker.js";
import type { IndexedMemory, ScopeIndex, ScopeIndexCache } from "./scope-index.js";
import { allocateSlots } from "./slots.js";
import { withoutSpeakerNames } from "./speaker-names.js";

// The search pipeline, stage by stage:
//   candidates  every memory of the scope (ScopeIndexCache), first-stage score, best POOL_SIZE kept
//   features    FEATURES rows of the pool (features.ts)
//   score       the learned ranker's logit per memory (ranker.ts)
//   slots       which memories fill the results, in which order (slots.ts)
//   cut-off     the gate and the gap (cutoff.ts; a cosine floor in scopes under SMALL_SCOPE), or the
//               caller's threshold on the probability: which of them may be shown
//   budget      results in rank order within maxTokens (budget.ts)

export interface RankOptions {
  limit: number;
  /** undefined: the calibrated cut-off; 0: none; else the least probability a result needs. */
  threshold?: number;
  /** Estimated tokens the results' texts may take together. */
  maxTokens?: number;
  keywordWeight?: number;
  metadata?: Readonly<Record<string, MetadataValue>>;
  explain?: boolean;
  ranker?: LinearModel;
  cutoff?: CutoffModel;
}

export interface RankedHit {
  record: MemoryRecord;
  /** The ranker's probability that the memory holds what the query asks. */
  score: number;
  logit: number;
  explain?: ScoreExplanation;
}

/** Ranks a scope's index for an analysed query: the pure part of the pipeline. */
export function rankIndex(index: ScopeIndex, scope: ValidScope, query: RankQuery, options: RankOptions): RankedHit[] {
  return completeRanking(prepareRanking(index, scope, query, options), query);
}

/** `rankIndex` before the query's embeddings (see `prepareFeatures`). */
export interface PreparedRanking {
  readonly options: RankOptions;
  /** Undefined in an empty index. */
  readonly features?: PreparedFeatures;
}

/** The part of `rankIndex` that does not read the query's embeddings: search runs it while the query is embedded. */
export function prepareRanking(index: ScopeIndex, scope: ValidScope, query: QueryWords, options: RankOptions): PreparedRanking {
  if (index.memories.length === 0) return { options };
  const { keywordWeight, metadata } = options;
  // The pool by the query with and without the speakers' names: a second cosine per memory, cheap
  // for a scope read whole; a large scope's candidates were chosen by the query's own vector.
  const features = prepareFeatures(index, query, {
    topicPool: !index.scopeWide,
    ...(keywordWeight === undefined ? {} : { keywordWeight }),
    ...(metadata ? { eligible: (memory) => matchesFilter(memory.record, { scope, metadata }) } : {}),
  });
  return { options, features };
}

/** `rankIndex` from its prepared part and the query's embeddings. */
export function completeRanking({ options, features }: PreparedRanking, vectors: QueryVectors): RankedHit[] {
  if (!features) return [];
  const { index } = features;
  const { limit, threshold, maxTokens, explain = false } = options;
  const ranker = options.ranker ?? defaultRanker;
  const cutoff = options.cutoff ?? defaultCutoff;
  const scored = completeFeatures(features, vectors);
  const logits = scored.rows.map((row) => logitOf(ranker, row));
  const order = [...logits.keys()].sort((a, b) => (logits[b] as number) - (logits[a] as number) || a - b);
  const sorted = order.map((k) => logits[k] as number);
  // The cut-off decides which memories may be shown (by logit); slot allocation, in which order.
  const slotted = allocateSlots(index, scored, logits, order, limit);
  let kept = slotted;
  if (threshold === undefined && index.memories.length < SMALL_SCOPE) {
    const keep = keptBySimilarity(logits.map((_, k) => (scored.rows[k] as Float64Array)[0] as number));
    kept = slotted.filter((k) => keep[k]);
  } else if (threshold === undefined) {
    const count = keptByCutoff(cutoff, scored, sorted);
    const floor = count === 0 ? Number.POSITIVE_INFINITY : (sorted[count - 1] as number);
    kept = slotted.filter((k) => (logits[k] as number) >= floor);
  } else if (threshold > 0) kept = slotted.filter((k) => sigmoid(logits[k] as number) >= threshold);
  let hits: RankedHit[] = kept.slice(0, limit).map((k) => {
    const row = scored.rows[k] as Float64Array;
    const logit = logits[k] as number;
    const { vector: _vector, ...record } = (index.memories[scored.pool[k] as number] as IndexedMemory).record;
    const hit: RankedHit = { record, score: sigmoid(logit), logit };
    if (explain) hit.explain = explanation(row, logit);
    return hit;
  });
  if (maxTokens !== undefined) hits = withinTokenBudget(hits, (hit) => hit.record.text, maxTokens);
  return hits;
}

function explanation(row: Float64Array, logit: number): ScoreExplanation {
  const at = (k: number) => row[k] as number;
  return {
    vector: at(0),
    keyword: at(2),
    window: at(3),
    neighbours: at(4),
    session: at(5),
    entity: at(6),
    speaker: at(7) ? "named" : at(8) ? "other named" : "not named",
    date: at(9),
    logit,
    probability: sigmoid(logit),
  };
}

/**
 * Memory.search: embeds the query while the scope's index is brought up to date (the NLP loads
 * meanwhile on first use) and everything ranking reads besides the query's vectors is computed;
 * once they are there, the cosines and what follows from them.
 */
export async function rankedSearch(
  { store, embedder, cache }: { store: VectorStore; embedder: WrappedEmbedder; cache: ScopeIndexCache },
  { text, scope, signal, ...options }: RankOptions & { text: string; scope: ValidScope; signal?: AbortSignal },
): Promise<RankedHit[]> {
  const nlp = loadNlp();
  if (await isLargeScope(store, scope)) {
    return rankLargeScope({ store, embedder }, { text, scope, ...(signal ? { signal } : {}), nlp, ...options });
  }
  // The query without the speakers' names is embedded with the query when the scope's speakers are
  // known from an earlier search, else once the index is read.
  const last = cache.lastIndexOf(scope);
  const query = embedQuery(embedder, text, last && speakerTermsOf(last), signal);
  // While the query is embedded (in the local model's worker, or by a remote model), the index is
  // brought up to date, the query's words are analysed and the ranking's keyword, name and noun
  // signals are computed.
  const [index, loaded] = await Promise.all([cache.index(store, scope, nlp), nlp]);
  const topic = query.withoutNames(speakerTermsOf(index));
  const prepared = prepareRanking(index, scope, analyseQueryText(text, loaded, index.latestDay), options);
  const vector = await query.vector;
  const topicVector = await topic;
  signal?.throwIfAborted();
  return completeRanking(prepared, { vector, ...(topicVector ? { topicVector } : {}) });
}

/** A scope's speakers by the stems of their names, and whether a stem is a word its memories use (`withoutSpeakerNames`). */
export interface SpeakerTerms {
  readonly speakers: ReadonlyMap<string, string>;
  readonly isTerm: (stem: string) => boolean;
}

export const speakerTermsOf = (index: Pick<ScopeIndex, "speakers" | "documentFrequency">): SpeakerTerms => ({
  speakers: index.speakers,
  isTerm: (term) => index.documentFrequency.has(term),
});

/**
 * A search's query sent to the embedder at once: with the query without the speakers' names in the
 * same call when `guess` (the scope's speakers as last seen) says it names some. `withoutNames`, once
 * the scope's speakers are known, gives that version's vector (`RankQuery.topicVector`): the guess's
 * when it proved right, else embedded then; undefined when the query names none.
 */
export function embedQuery(embedder: WrappedEmbedder, text: string, guess: SpeakerTerms | undefined, signal?: AbortSignal) {
  const guessed = guess && withoutSpeakerNames(text, guess.speakers, guess.isTerm);
  const embedding = embedder.embed(guessed === undefined ? [text] : [text, guessed], { signal });
  // Awaited by the caller, which may fail first (reading the scope): no unhandled rejection meanwhile.
  embedding.catch(() => {});
  return {
    vector: embedding.then(([vector]) => vector as Float32Array),
    withoutNames(known: SpeakerTerms): Promise<Float32Array | undefined> {
      const topic = withoutSpeakerNames(text, known.speakers, known.isTerm);
      if (topic === undefined) return Promise.resolve(undefined);
      const vector =
        topic === guessed ? embedding.then(([, second]) => second) : embedder.embed([topic], { signal }).then(([first]) => first);
      vector.catch(() => {});
      return vector;
    },
  };
}
