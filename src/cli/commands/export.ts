import { open } from "node:fs/promises";
import type { Command } from "commander";
import { exitCodes, globalsOf, log, type RegisterCommand, withMemory } from "../context.js";
import { everyMemory, scopeMemories, type UnreadableScope } from "../every-memory.js";
import { isAllScopes, type ScopeFlags, scopeFlags, scopeOrAll } from "../options.js";
import { describeScope, print, printJson } from "../output.js";

export const exportCommand: RegisterCommand = (program, state) => {
  scopeFlags(
    program
      .command("export")
      .description("write memories as JSONL (one memory with its scope and metadata per line), for backups and moving between stores")
      .option("-o, --output <file>", "write to this file instead of stdout"),
    { allScopes: true },
  ).action(async (options: ScopeFlags & { output?: string }, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOrAll(options, "export");
    const file = options.output ? await open(options.output, "w") : undefined;
    let exported = 0;
    // A damaged file: export what is readable, scope by scope, and say what was not.
    const unreadable: UnreadableScope[] = [];
    const onUnreadable = (entry: UnreadableScope) => {
      unreadable.push(entry);
    };
    try {
      await withMemory(globals, {}, async (memory) => {
        const items = isAllScopes(scope) ? everyMemory(memory, { onUnreadable }) : scopeMemories(memory, scope, { onUnreadable });
        for await (const { score: _score, ...item } of items) {
          const line = `${JSON.stringify(item)}\n`;
          if (file) await file.write(line);
          else if (!process.stdout.write(line)) await new Promise((resolve) => process.stdout.once("drain", resolve));
          exported++;
        }
      });
    } finally {
      await file?.close();
    }
    for (const { scope: damaged, read, total } of unreadable) {
      log(
        `engram: export: ${describeScope(damaged)}: ${read}${total === undefined ? "" : ` of ${total}`} memories read, the rest is on damaged pages and was skipped.`,
      );
    }
    if (unreadable.length > 0) {
      log(
        `engram: ${unreadable[0]?.error.path} is damaged: the export holds what was readable. Keep the damaged file, then restore a backup or import this export into a new data dir (docs/operations.md).`,
      );
      state.code = exitCodes.corrupt;
    }
    if (!options.output) return;
    const skipped = unreadable.map(({ scope: damaged, read, total }) => ({ ...damaged, read, ...(total === undefined ? {} : { total }) }));
    if (globals.json) printJson({ exported, file: options.output, ...(skipped.length ? { unreadable: skipped } : {}) });
    else print(`Exported ${exported} ${exported === 1 ? "memory" : "memories"} to ${options.output}.`);
  });
};
