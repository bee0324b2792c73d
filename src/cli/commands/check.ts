import { resolve } from "node:path";
import type { Command } from "commander";
import { checkSqliteFile } from "../../internal/sqlite.js";
import { assertDatabase, exitCodes, globalsOf, log, type RegisterCommand } from "../context.js";
import { print, printJson } from "../output.js";

export const checkCommand: RegisterCommand = (program, state) => {
  program
    .command("check")
    .description("check the database file for damage (SQLite integrity check): prints ok or what is wrong; exit 3 when damaged")
    .action(async (_options: unknown, command: Command) => {
      const globals = globalsOf(command);
      assertDatabase(globals.dataDir);
      const file = resolve(globals.dataDir, "engram.db");
      const { ok, problems } = await checkSqliteFile(file);
      if (globals.json) printJson({ file, ok, problems });
      else if (ok) print(`ok: ${file} passed the integrity check.`);
      else print([`damaged: ${file}`, ...problems.map((problem) => `  ${problem}`)].join("\n"));
      if (ok) return;
      log(
        "engram: recovery: stop every process using the file, keep a copy of it, export what is readable (engram export --all-scopes -o salvage.jsonl), then restore a backup or import the export into a new data dir (docs/operations.md).",
      );
      state.code = exitCodes.corrupt;
    });
};
