import type { Command } from "commander";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { isAllScopes, type ScopeFlags, scopeFlags, scopeOrAll } from "../options.js";
import { describeScope, print, printJson } from "../output.js";

export const sweepCommand: RegisterCommand = (program) => {
  scopeFlags(
    program
      .command("sweep")
      .description("delete expired memories now (they are never returned once expired; this frees their space)")
      .option("--purge", "erase their text from history too, instead of keeping it there"),
    { allScopes: true },
  ).action(async (options: ScopeFlags & { purge?: boolean }, command: Command) => {
    const globals = globalsOf(command);
    const target = scopeOrAll(options, "sweep");
    const result = await withMemory(globals, {}, (memory) => memory.sweep(target, { purge: options.purge === true }));
    if (globals.json) return printJson(result);
    const where = isAllScopes(target) ? "every scope" : describeScope(target);
    const erased = result.purged ? ", their text erased from history too" : ", their text kept in history";
    print(`Deleted ${result.deleted} expired ${result.deleted === 1 ? "memory" : "memories"} of ${where}${result.deleted ? erased : ""}.`);
  });
};
