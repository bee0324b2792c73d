import type { Command } from "commander";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { print, printJson, shortDate, table } from "../output.js";

export const historyCommand: RegisterCommand = (program) => {
  scopeFlags(program.command("history").description("every change of a memory, oldest first").argument("<id>", "memory id")).action(
    async (id: string, options: ScopeFlags, command: Command) => {
      const globals = globalsOf(command);
      const scope = scopeOf(options, "history");
      const history = await withMemory(globals, {}, (memory) => memory.history(id, scope));
      if (globals.json) return printJson({ history });
      print(
        table(
          [{ header: "event", width: 6 }, { header: "previous" }, { header: "new" }, { header: "when (UTC)", width: 16 }],
          history.map((entry) => [entry.event, entry.previousValue ?? "", entry.newValue ?? "", shortDate(entry.createdAt)]),
        ),
      );
    },
  );
};
