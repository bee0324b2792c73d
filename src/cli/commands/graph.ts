import type { Command } from "commander";
import { ConfigError, InvalidInputError } from "../../errors.js";
import { assertDatabase, globalsOf, hasGraph, type RegisterCommand, withMemory } from "../context.js";
import { integer, type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { print, printJson, table } from "../output.js";

interface GraphFlags extends ScopeFlags {
  entity?: string;
  relation?: string;
  depth?: number;
  limit: number;
  neighbors?: boolean;
}

export const graphCommand: RegisterCommand = (program) => {
  scopeFlags(
    program
      .command("graph")
      .description("the relations between the entities a scope's memories name (graph memory), or an entity's neighbours")
      .option("-e, --entity <name>", "only relations on paths from this entity")
      .option("--relation <label>", "only relations with this label, e.g. manages or co-occurs")
      .option("--depth <n>", "with --entity: relations at most n steps away, 1-5 (default 1)", integer("--depth", { min: 1, max: 5 }))
      .option("--neighbors", "with --entity: the entities reached, nearest first, instead of the relations")
      .option("-l, --limit <n>", "how many results, 1-1000", integer("--limit", { min: 1, max: 1000 }), 100)
      .addHelpText(
        "after",
        `
The graph holds what was written with graph memory on (new Memory({ graph: true }), engram import --graph): see docs/graph.md.`,
      ),
  ).action(async (options: GraphFlags, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOf(options, "graph");
    if (options.entity === undefined && (options.depth !== undefined || options.neighbors)) {
      throw new InvalidInputError({
        message: "graph: --depth and --neighbors need --entity <name>, the entity to start from.",
        field: "entity",
      });
    }
    if (options.neighbors && options.relation !== undefined) {
      throw new InvalidInputError({ message: "graph: --relation filters relations: leave it out with --neighbors.", field: "relation" });
    }
    assertDatabase(globals.dataDir);
    if (!hasGraph(globals.dataDir)) {
      throw new ConfigError({
        message: `No graph in ${globals.dataDir}: its memories were written with graph memory off. Write them with new Memory({ graph: true }) or engram import --graph (docs/graph.md).`,
      });
    }
    const depth = options.depth ?? 1;
    if (options.neighbors && options.entity !== undefined) {
      const entity = options.entity;
      const neighbors = await withMemory(globals, { graph: true }, (memory) =>
        memory.graph.neighbors(scope, entity, { depth, limit: options.limit }),
      );
      if (globals.json) return printJson({ neighbors });
      return print(
        neighbors.length
          ? table(
              [{ header: "entity" }, { header: "depth", width: 5 }],
              neighbors.map((neighbor) => [neighbor.entity, neighbor.depth]),
            )
          : `No entity related to "${entity}" in this scope.`,
      );
    }
    const relations = await withMemory(globals, { graph: true }, (memory) =>
      memory.graph.relations(scope, {
        ...(options.entity === undefined ? {} : { entity: options.entity, depth }),
        ...(options.relation === undefined ? {} : { relation: options.relation }),
        limit: options.limit,
      }),
    );
    if (globals.json) return printJson({ relations });
    print(
      relations.length
        ? table(
            [{ header: "source" }, { header: "relation", width: 16 }, { header: "target" }, { header: "memories", width: 36 }],
            relations.map((relation) => [relation.source, relation.relation, relation.target, relation.memoryIds.join("\n")]),
            { breakWords: true },
          )
        : "No relations in this scope.",
    );
  });
};
