import { loadNlp } from "../retrieval/nlp.js";
import type { RankedHit } from "../retrieval/rank.js";
import type { ValidScope } from "../scope.js";
import type { GraphStore, StoredRelation } from "./graph-store.js";

/** Memories the graph may reach from a query's entities, before they are ranked. */
const MAX_REACHED = 200;
/** Relations returned beside the results. */
const MAX_RELATIONS = 20;

/**
 * `search(query, { graph: true })`: the relations of the entities the query names (one step), and
 * the ranked results completed, up to `limit`, with memories reached through those entities: the
 * memories that name them, and those that name an entity one relation away (multi-hop). Reached
 * memories come in the ranker's order (`ranked` scores the whole scope without a cut-off); the
 * ranked results are never displaced, so a search that filled its limit gains only `relations`.
 */
export async function graphSearch(
  graph: GraphStore,
  { text, scope, limit }: { text: string; scope: ValidScope; limit: number },
  hits: readonly RankedHit[],
  rankAll: () => Promise<RankedHit[]>,
): Promise<{ hits: RankedHit[]; relations: StoredRelation[] }> {
  const entities = await graph.known(scope, (await loadNlp()).names(text));
  if (entities.length === 0) return { hits: [...hits], relations: [] };
  const relations = new Map<string, StoredRelation>();
  for (const entity of entities) {
    for (const relation of await graph.relations(scope, { entity, depth: 1, limit: MAX_RELATIONS })) {
      const key = JSON.stringify([relation.source, relation.relation, relation.target]);
      if (!relations.has(key) && relations.size < MAX_RELATIONS) relations.set(key, relation);
    }
  }
  if (hits.length >= limit) return { hits: [...hits], relations: [...relations.values()] };
  const reached = new Map(
    (await graph.memories(scope, entities, { depth: 1, limit: MAX_REACHED })).map((memory) => [memory.memoryId, memory.depth]),
  );
  const shown = new Set(hits.map((hit) => hit.record.id));
  const added = (await rankAll())
    .filter((hit) => reached.has(hit.record.id) && !shown.has(hit.record.id))
    // Nearest first (a memory naming the query's entity before one a step away), then as ranked.
    .sort((a, b) => (reached.get(a.record.id) as number) - (reached.get(b.record.id) as number) || b.score - a.score)
    .slice(0, limit - hits.length);
  return { hits: [...hits, ...added], relations: [...relations.values()] };
}
