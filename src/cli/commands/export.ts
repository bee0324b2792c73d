import { open } from "node:fs/promises";
import type { Command } from "commander";
import { exactScopeKey } from "../../graph/entity-key.js";
import { type Scope, scopeOf } from "../../scope.js";
import { exitCodes, globalsOf, hasGraph, log, type RegisterCommand, withMemory } from "../context.js";
import { everyMemory, scopeMemories, type UnreadableScope } from "../every-memory.js";
import { relationLines } from "../graph-lines.js";
import { isAllScopes, type ScopeFlags, scopeFlags, scopeOrAll } from "../options.js";
import { describeScope, print, printJson } from "../output.js";

export const exportCommand: RegisterCommand = (program, state) => {
  scopeFlags(
    program
      .command("export")
      .description(
        "write memories as JSONL (one memory with its scope and metadata per line), then each scope's profile and graph relations, for backups and moving between stores",
      )
      .option("-o, --output <file>", "write to this file instead of stdout"),
    { allScopes: true },
  ).action(async (options: ScopeFlags & { output?: string }, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOrAll(options, "export");
    const file = options.output ? await open(options.output, "w") : undefined;
    let exported = 0;
    let profiles = 0;
    let relations = 0;
    const graph = hasGraph(globals.dataDir);
    // The exported memories' ids by exact scope: relation lines name the memories that support them.
    const exportedIds = new Map<string, { scope: Scope; ids: Set<string> }>();
    // A damaged file: export what is readable, scope by scope, and say what was not.
    const unreadable: UnreadableScope[] = [];
    const onUnreadable = (entry: UnreadableScope) => {
      unreadable.push(entry);
    };
    try {
      await withMemory(globals, {}, async (memory) => {
        const items = isAllScopes(scope) ? everyMemory(memory, { onUnreadable }) : scopeMemories(memory, scope, { onUnreadable });
        const write = async (value: object) => {
          const line = `${JSON.stringify(value)}\n`;
          if (file) await file.write(line);
          else if (!process.stdout.write(line)) await new Promise((resolve) => process.stdout.once("drain", resolve));
        };
        for await (const { score: _score, ...item } of items) {
          await write(item);
          exported++;
          if (!graph) continue;
          const key = exactScopeKey(item);
          const entry = exportedIds.get(key) ?? { scope: scopeOf(item), ids: new Set<string>() };
          entry.ids.add(item.id);
          exportedIds.set(key, entry);
        }
        // Current profiles only: an import sets each one, recorded as one change in the target's history.
        for (const profileScope of await memory.profileScopes(scope)) {
          const profile = await memory.profile(profileScope);
          if (!profile) continue;
          await write({ profile: profile.text, updatedAt: profile.updatedAt, ...profileScope });
          profiles++;
        }
        // Last, after the memories they name: an import re-attaches them to the memories it wrote.
        if (!graph) return;
        for await (const line of relationLines(globals.dataDir, exportedIds)) {
          await write(line);
          relations++;
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
    if (globals.json) {
      printJson({
        exported,
        ...(profiles ? { profiles } : {}),
        ...(relations ? { relations } : {}),
        file: options.output,
        ...(skipped.length ? { unreadable: skipped } : {}),
      });
    } else {
      const withProfiles = profiles ? ` and ${profiles} ${profiles === 1 ? "profile" : "profiles"}` : "";
      const withRelations = relations ? `, ${relations} graph ${relations === 1 ? "relation" : "relations"}` : "";
      print(`Exported ${exported} ${exported === 1 ? "memory" : "memories"}${withProfiles}${withRelations} to ${options.output}.`);
    }
  });
};
