import type { Plan } from "../plan.js";
import { loadNlp } from "../retrieval/nlp.js";
import { type Scope, scopeOf } from "../scope.js";
import { entityKey } from "./entity-key.js";
import type { GraphStore, MemoryGraph, Relation } from "./graph-store.js";

/** The label of relations found without a model: two entities named in one memory. No other label is invented. */
export const coOccurs = "co-occurs";

/** Most names of one memory linked pairwise without a model (8 names: 28 relations). */
const MAX_LINKED_NAMES = 8;

/**
 * What a memory contributes to the graph. With relations from the extraction model (even none),
 * those; without, the names the text mentions, each pair linked as `co-occurs` (ordered by key,
 * so the pair is one relation whichever name came first).
 */
export async function memoryGraph(
  memory: { id: string; text: string } & Scope,
  relations: readonly Relation[] | undefined,
): Promise<MemoryGraph> {
  const names = (await loadNlp()).names(memory.text);
  const scope = scopeOf(memory);
  if (relations !== undefined) {
    const endpoints = relations.flatMap((relation) => [relation.source, relation.target]);
    return { memoryId: memory.id, scope, entities: [...endpoints, ...names], relations };
  }
  const linked = [...new Map(names.map((name) => [entityKey(name), name])).entries()]
    .slice(0, MAX_LINKED_NAMES)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  const pairs: Relation[] = [];
  for (let i = 0; i < linked.length; i++) {
    for (let j = i + 1; j < linked.length; j++) {
      pairs.push({ source: (linked[i] as [string, string])[1], relation: coOccurs, target: (linked[j] as [string, string])[1] });
    }
  }
  return { memoryId: memory.id, scope, entities: names, relations: pairs };
}

/** Writes what an applied plan changes in the graph: written memories (re)derived, deleted ones removed. */
export async function indexPlan(graph: GraphStore, plan: Plan, at: string): Promise<void> {
  const written = new Set(plan.upsert.map((record) => record.id));
  const scopes = new Map(plan.history.map((entry) => [entry.memoryId, scopeOf(entry)]));
  const changes: MemoryGraph[] = [];
  for (const record of plan.upsert) {
    const given = plan.graph && Object.hasOwn(plan.graph, record.id) ? plan.graph[record.id] : undefined;
    // A metadata-only update keeps the text, and so the memory's relations.
    const previous = plan.revert.upsert.find((before) => before.id === record.id);
    if (previous && previous.text === record.text && given === undefined) continue;
    changes.push(await memoryGraph(record, given));
  }
  for (const id of plan.delete) {
    if (!written.has(id)) changes.push({ memoryId: id, scope: scopes.get(id) ?? {}, entities: [], relations: [] });
  }
  await graph.write(changes, { at });
}

/** Removes memories from the graph; `erase` (a purge) deletes their graph changes too. */
export async function forgetInGraph(graph: GraphStore, memories: readonly ({ id: string } & Scope)[], erase: boolean, at: string) {
  await graph.write(
    memories.map((memory) => ({ memoryId: memory.id, scope: scopeOf(memory), entities: [], relations: [] })),
    { at, erase },
  );
}
