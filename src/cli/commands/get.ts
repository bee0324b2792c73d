import type { Command } from "commander";
import { MemoryNotFoundError } from "../../errors.js";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { itemRecord, print, printJson, recordTable } from "../output.js";

export const getCommand: RegisterCommand = (program) => {
  scopeFlags(program.command("get").description("show one memory").argument("<id>", "memory id")).action(
    async (id: string, options: ScopeFlags, command: Command) => {
      const globals = globalsOf(command);
      const scope = scopeOf(options, "get");
      const item = await withMemory(globals, {}, (memory) => memory.get(id, scope));
      if (!item) throw new MemoryNotFoundError({ memoryId: id });
      if (globals.json) return printJson(item);
      print(recordTable(itemRecord(item)));
    },
  );
};
