import type { Command } from "commander";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { itemRecord, print, printJson, recordTable } from "../output.js";

export const updateCommand: RegisterCommand = (program) => {
  scopeFlags(
    program
      .command("update")
      .description("replace a memory's text (the old text stays in its history)")
      .argument("<id>", "memory id")
      .argument("<text>", "the new text"),
  ).action(async (id: string, text: string, options: ScopeFlags, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOf(options, "update");
    const item = await withMemory(globals, {}, (memory) => memory.update(id, text, scope));
    if (globals.json) return printJson(item);
    print(recordTable(itemRecord(item)));
  });
};
