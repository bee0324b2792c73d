import type { Command } from "commander";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { print, printJson } from "../output.js";

export const deleteCommand: RegisterCommand = (program) => {
  scopeFlags(
    program
      .command("delete")
      .description("delete one memory (its text stays in history unless --purge)")
      .argument("<id>", "memory id")
      .option("--purge", "erase the text for good, from history and the database file too"),
  ).action(async (id: string, options: ScopeFlags & { purge?: boolean }, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOf(options, "delete");
    await withMemory(globals, {}, (memory) => memory.delete(id, { ...scope, purge: options.purge }));
    if (globals.json) return printJson({ id, deleted: true, purged: Boolean(options.purge) });
    print(`Deleted ${id}${options.purge ? " and erased its text for good" : ""}.`);
  });
};
