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
 * Adds every turn of every conversation to `memory` (through `addMany`, as one add per turn), the speaker as the message's
 * `name`, in its own scope (userId = sample_id), session by session, the session date as the
 * timestamp (plus the turn's index in milliseconds, so memories list in turn order). Conversations
 * are ingested concurrently (each in order) so an embedder that batches gets batches.
 */
const BATCH = 100;

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
  // A conversation's turns go in with addMany, 100 per embedding call and transaction: the same
  // memories as one add per turn.
  const ingestSample = async (sample: Sample) => {
    const owned = new Map<string, Set<string>>();
    sources.set(sample.sampleId, owned);
    const turns = sample.sessions.flatMap((session) =>
      session.turns.map((turn, index) => ({
        turn,
        timestamp: session.date ? new Date(session.date.getTime() + index) : undefined,
      })),
    );
    for (let start = 0; start < turns.length; start += BATCH) {
      const slice = turns.slice(start, start + BATCH);
      const { results } = await memory.addMany(
        slice.map(({ turn, timestamp }) => ({
          messages: [{ role: "user" as const, ...(turn.speaker ? { name: turn.speaker } : {}), content: turn.text }],
          userId: sample.sampleId,
          infer,
          metadata: { dia_id: turn.diaId },
          ...(timestamp ? { timestamp } : {}),
        })),
      );
      results.forEach((result, i) => {
        const { turn } = slice[i] as (typeof slice)[number];
        adds++;
        onAdd?.(result.usage);
        if (result.results.length === 0) dropped++;
        for (const item of result.results) {
          if (item.event === "DELETE") owned.delete(item.id);
          else owned.set(item.id, (owned.get(item.id) ?? new Set()).add(turn.diaId));
        }
      });
    }
  };
  await Promise.all(samples.map(ingestSample));
  return { sources, adds, dropped };
}
