import type { Command } from "commander";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { collectFilter, fraction, integer, type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { memoryTable, print, printJson } from "../output.js";

export const searchCommand: RegisterCommand = (program) => {
  scopeFlags(
    program
      .command("search")
      .description("find memories by meaning and keywords, best first")
      .argument("<query>", "what to look for")
      .option("-l, --limit <n>", "how many results, 1-100", integer("--limit", { min: 1, max: 100 }), 10)
      .option("--threshold <score>", "minimum score, 0-1", fraction)
      .option("--filter <key=value>", "metadata equality filter, repeatable", collectFilter),
  ).action(
    async (
      query: string,
      options: ScopeFlags & { limit: number; threshold?: number; filter?: Record<string, never> },
      command: Command,
    ) => {
      const globals = globalsOf(command);
      const scope = scopeOf(options, "search");
      const result = await withMemory(globals, {}, (memory) =>
        memory.search(query, { ...scope, limit: options.limit, threshold: options.threshold, filters: options.filter }),
      );
      if (globals.json) return printJson(result);
      print(result.results.length ? memoryTable(result.results, { score: true }) : "No memories found.");
    },
  );
};
