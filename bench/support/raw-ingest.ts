import type { Memory } from "../../src/index.js";
import type { Sample } from "./locomo.js";

/** What ingesting conversations verbatim gives: per conversation, memory id → the dia_ids it holds. */
export interface RawIngest {
  sources: Map<string, Map<string, Set<string>>>;
  adds: number;
  /** Turns no memory holds (filler). */
  dropped: number;
}

/**
 * Adds every turn of every conversation to `memory`, one add per turn, the speaker as the message's
 * `name`, in its own scope (userId = sample_id), session by session, the session date as the
 * timestamp (plus the turn's index in milliseconds, so memories list in turn order). Conversations
 * are ingested concurrently (each in order) so an embedder that batches gets batches.
 */
export async function ingestTurns(
  memory: Memory,
  samples: readonly Sample[],
  {
    infer = false,
    onAdd,
  }: { infer?: boolean; onAdd?: (usage: { llmCalls: number; inputTokens: number; outputTokens: number }) => void } = {},
): Promise<RawIngest> {
  const sources = new Map<string, Map<string, Set<string>>>();
  let adds = 0;
  let dropped = 0;
  const ingestSample = async (sample: Sample) => {
    const owned = new Map<string, Set<string>>();
    sources.set(sample.sampleId, owned);
    for (const session of sample.sessions) {
      for (const [index, turn] of session.turns.entries()) {
        const timestamp = session.date ? new Date(session.date.getTime() + index) : undefined;
        const result = await memory.add([{ role: "user", ...(turn.speaker ? { name: turn.speaker } : {}), content: turn.text }], {
          userId: sample.sampleId,
          infer,
          metadata: { dia_id: turn.diaId },
          ...(timestamp ? { timestamp } : {}),
        });
        adds++;
        onAdd?.(result.usage);
        if (result.results.length === 0) dropped++;
        for (const item of result.results) {
          if (item.event === "DELETE") owned.delete(item.id);
          else owned.set(item.id, (owned.get(item.id) ?? new Set()).add(turn.diaId));
        }
      }
    }
  };
  await Promise.all(samples.map(ingestSample));
  return { sources, adds, dropped };
}
