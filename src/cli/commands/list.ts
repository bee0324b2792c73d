import type { Command } from "commander";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { collectFilter, integer, type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { memoryTable, print, printJson } from "../output.js";

export const listCommand: RegisterCommand = (program) => {
  scopeFlags(
    program
      .command("list")
      .description("list memories, oldest first (engram export for all of them)")
      .option("-l, --limit <n>", "how many, 1-1000", integer("--limit", { min: 1, max: 1000 }), 100)
      .option("--filter <key=value>", "metadata equality filter, repeatable", collectFilter),
  ).action(async (options: ScopeFlags & { limit: number; filter?: Record<string, never> }, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOf(options, "list");
    const result = await withMemory(globals, {}, (memory) => memory.getAll({ ...scope, limit: options.limit, filters: options.filter }));
    if (globals.json) return printJson(result);
    print(result.results.length ? memoryTable(result.results) : "No memories in this scope.");
  });
};
