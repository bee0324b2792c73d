import { join } from "node:path";
import { exactScopeKey } from "../graph/entity-key.js";
import { memoryGraph } from "../graph/graph-index.js";
import type { MemoryGraph, Relation } from "../graph/graph-store.js";
import { sqliteGraph } from "../graph/sqlite-graph.js";
import type { Memory } from "../memory.js";
import { type Scope, scopeOf } from "../scope.js";
import type { ImportRelation } from "./import-file.js";

/** A relation line of `engram export`: the relation, the exported memories of its scope that support it, the scope. */
export type RelationLine = Relation & { memoryIds: string[] } & Scope;

/** The graph file of a data dir: the memories' own engram.db. */
const graphOf = (dataDir: string) => sqliteGraph({ path: join(dataDir, "engram.db") });

/**
 * The relation lines of the exported memories: per exact scope, its relations with the memories
 * of exactly that scope that support them (a relation no exported memory supports is left out).
 */
export async function* relationLines(dataDir: string, exported: ReadonlyMap<string, { scope: Scope; ids: Set<string> }>) {
  const graph = graphOf(dataDir);
  try {
    for (const { scope, ids } of exported.values()) {
      for (const stored of await graph.relations(scope, { depth: 1, limit: Number.MAX_SAFE_INTEGER })) {
        const memoryIds = stored.memoryIds.filter((id) => ids.has(id));
        if (memoryIds.length === 0) continue;
        const line: RelationLine = { source: stored.source, relation: stored.relation, target: stored.target, memoryIds, ...scope };
        yield line;
      }
    }
  } finally {
    await graph.close();
  }
}

/**
 * Re-attaches imported relations: each memory of the relation's scope whose text is one of its
 * supporting texts gets exactly the relations the file gives it (replacing those derived while it
 * was written), so a model's labels survive a move to a data dir that has no model.
 * Returns how many relations were attached.
 */
export async function attachRelations(memory: Memory, dataDir: string, relations: readonly ImportRelation[]): Promise<number> {
  const byScope = new Map<string, { scope: Scope; byText: Map<string, Relation[]> }>();
  for (const { scope, relation, memories } of relations) {
    const key = exactScopeKey(scope);
    const entry = byScope.get(key) ?? { scope, byText: new Map<string, Relation[]>() };
    byScope.set(key, entry);
    for (const text of memories) {
      const given = entry.byText.get(text) ?? [];
      const same = (other: Relation) =>
        other.source === relation.source && other.relation === relation.relation && other.target === relation.target;
      if (!given.some(same)) entry.byText.set(text, [...given, relation]);
    }
  }
  const graph = graphOf(dataDir);
  let attached = 0;
  try {
    for (const [key, { scope, byText }] of byScope) {
      const changes: MemoryGraph[] = [];
      const found = new Set<string>();
      for await (const item of memory.iterate(scope)) {
        // iterate() also returns the memories of narrower scopes: only this exact scope's count.
        if (exactScopeKey(scopeOf(item)) !== key) continue;
        const given = byText.get(item.memory);
        if (!given) continue;
        found.add(item.memory);
        changes.push(await memoryGraph({ id: item.id, text: item.memory, ...scopeOf(item) }, given));
      }
      await graph.write(changes, { at: new Date().toISOString() });
      for (const { scope: lineScope, memories } of relations) {
        if (exactScopeKey(lineScope) === key && memories.some((text) => found.has(text))) attached++;
      }
    }
  } finally {
    await graph.close();
  }
  return attached;
}
