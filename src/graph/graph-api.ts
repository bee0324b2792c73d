import { z } from "zod";
import type { Components } from "../components.js";
import { ConfigError } from "../errors.js";
import type { Scope } from "../scope.js";
import { validateScope } from "../scope.js";
import { parse, parseText } from "../validation.js";
import type { GraphChange, Neighbor, StoredRelation } from "./graph-store.js";

const depth = z
  .number()
  .int("depth must be a whole number")
  .min(1, "depth must be between 1 and 5")
  .max(5, "depth must be between 1 and 5")
  .optional();
const limit = (max: number) =>
  z
    .number()
    .int("limit must be a whole number")
    .min(1, `limit must be between 1 and ${max}`)
    .max(max, `limit must be between 1 and ${max}`)
    .optional();
const name = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(500, `${what} must be at most 500 characters`);

export const relationsSchema = z.strictObject({
  entity: name("entity").optional(),
  relation: name("relation").optional(),
  depth,
  limit: limit(1000),
});
export const neighborsSchema = z.strictObject({ depth, limit: limit(1000) });
export const graphHistorySchema = z.strictObject({ memoryId: name("memoryId").optional(), limit: limit(10_000) });

export type RelationsOptions = z.input<typeof relationsSchema>;
export type NeighborsOptions = z.input<typeof neighborsSchema>;
export type GraphHistoryOptions = z.input<typeof graphHistorySchema>;

/**
 * Graph memory of a `Memory` (`new Memory({ graph: true })`): the entities its memories name and
 * the relations between them, per scope. Every call takes a scope, AND-ed like `search`:
 * `{ userId }` reads the graph of all that user's agents and runs.
 */
export interface MemoryGraphApi {
  /**
   * Relations inside the scope, each with the memories that support it. With `entity`, those on
   * paths of at most `depth` relations from it (default 1: its own relations). Without a model the
   * only label is "co-occurs" (two names in one memory).
   *
   * @example
   * await memory.graph.relations({ userId: "alice" }, { entity: "Bob", depth: 2 });
   * // [{ source: "Alice", relation: "manages", target: "Bob", memoryIds: ["…"] }, …]
   */
  relations(scope: Scope, options?: RelationsOptions): Promise<StoredRelation[]>;
  /** Entities at most `depth` relations from `entity` (default 1), nearest first. */
  neighbors(scope: Scope, entity: string, options?: NeighborsOptions): Promise<Neighbor[]>;
  /** How the graph changed inside the scope, oldest first: which memory started or stopped supporting which relation. */
  history(scope: Scope, options?: GraphHistoryOptions): Promise<GraphChange[]>;
}

/** The `memory.graph` of a Memory, over its components. */
export function memoryGraphApi(ready: () => Promise<Components>, assertOpen: () => void): MemoryGraphApi {
  const graphOf = async () => {
    const { graph } = await ready();
    if (!graph) {
      throw new ConfigError({ message: "Graph memory is off: create the Memory with new Memory({ graph: true }) (see docs/graph.md)." });
    }
    return graph;
  };
  return {
    async relations(scope, options = {}) {
      assertOpen();
      const valid = validateScope("graph.relations", scope);
      const { entity, relation, depth = 1, limit = 100 } = parse(relationsSchema, options ?? {}, "graph.relations");
      return (await graphOf()).relations(valid, {
        ...(entity === undefined ? {} : { entity }),
        ...(relation ? { relation } : {}),
        depth,
        limit,
      });
    },
    async neighbors(scope, entity, options = {}) {
      assertOpen();
      const valid = validateScope("graph.neighbors", scope);
      const name = parseText("graph.neighbors", "entity", entity, 500);
      const { depth = 1, limit = 100 } = parse(neighborsSchema, options ?? {}, "graph.neighbors");
      return (await graphOf()).neighbors(valid, name, { depth, limit });
    },
    async history(scope, options = {}) {
      assertOpen();
      const valid = validateScope("graph.history", scope);
      const { memoryId, limit = 1000 } = parse(graphHistorySchema, options ?? {}, "graph.history");
      return (await graphOf()).changes(valid, { ...(memoryId === undefined ? {} : { memoryId }), limit });
    },
  };
}
