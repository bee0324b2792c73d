import type { Scored } from "./features.js";
import type { ScopeIndex } from "./scope-index.js";

// Slot allocation: which of the ranked pool fill the results. The ranker scores each memory alone,
// so a run of memories said together (a memory, its neighbours, theirs: the context signals lift
// them together) can take most of the slots, and a question about two speakers can get one
// speaker's memories only. Each slot goes to the memory best by its logit minus a penalty for
// what the slots already hold. Measured by bench/slot-trials.ts, held-out (docs/retrieval.md).

/** A memory said at most this many memories from a result, in the same session, counts as nearby. */
export const NEARBY_DISTANCE = 2;
/** Logits off a memory per result nearby it. */
export const NEARBY_PENALTY = 0.2;
/** When the query names two speakers or more: logits off a memory per result said by the same speaker. */
export const SPEAKER_PENALTY = 1;

export interface SlotPenalties {
  nearbyDistance?: number;
  nearbyPenalty?: number;
  speakerPenalty?: number;
}

/**
 * The pool positions in result order: each of the first `slots` goes to the position best by
 * `logit − nearbyPenalty · (results within nearbyDistance memories of it in its session) −
 * speakerPenalty · (results of its speaker, when the query names two speakers or more)`, ties
 * to the better logit; the rest follow by logit. `order`: the pool positions best logit first.
 */
export function allocateSlots(
  index: ScopeIndex,
  scored: Scored,
  logits: readonly number[],
  order: readonly number[],
  slots: number,
  { nearbyDistance = NEARBY_DISTANCE, nearbyPenalty = NEARBY_PENALTY, speakerPenalty = SPEAKER_PENALTY }: SlotPenalties = {},
): number[] {
  const bySpeaker = scored.query.speakersNamed >= 2 && speakerPenalty > 0;
  if (nearbyPenalty <= 0 && !bySpeaker) return [...order];
  const at = (k: number) => scored.pool[k] as number;
  const left = [...order];
  // Per pool position: its penalty from the results chosen so far, added to as each is chosen (in
  // the order chosen, nearby before speaker), so each sum is the one a fresh count would give.
  const penalties = new Float64Array(scored.pool.length);
  const chosen: number[] = [];
  while (chosen.length < slots && left.length > 0) {
    let best = 0;
    let bestValue = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < left.length; j++) {
      const k = left[j] as number;
      const value = (logits[k] as number) - (penalties[k] as number);
      if (value > bestValue) {
        bestValue = value;
        best = j;
      }
    }
    const c = left.splice(best, 1)[0] as number;
    chosen.push(c);
    if (chosen.length === slots) break;
    const m = at(c);
    const speaker = bySpeaker ? index.memories[m]?.speaker : undefined;
    for (const k of left) {
      const i = at(k);
      let penalty = penalties[k] as number;
      if (index.session[m] === index.session[i] && Math.abs(m - i) <= nearbyDistance) penalty += nearbyPenalty;
      if (speaker !== undefined && index.memories[i]?.speaker === speaker) penalty += speakerPenalty;
      penalties[k] = penalty;
    }
  }
  return [...chosen, ...left];
}
