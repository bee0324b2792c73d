import { statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import type { Scope } from "../../scope.js";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { isAllScopes, type ScopeFlags, scopeFlags, scopeOrAll } from "../options.js";
import { print, printJson, table } from "../output.js";

export const statsCommand: RegisterCommand = (program) => {
  scopeFlags(program.command("stats").description("how many memories and queued turns a scope (or every scope) holds"), {
    allScopes: true,
  }).action(async (options: ScopeFlags, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOrAll(options, "stats");
    const stats = await withMemory(globals, {}, async (memory) => {
      let scopes: (Scope & { count: number })[];
      if (isAllScopes(scope)) scopes = await memory.scopes({ allScopes: true });
      else {
        let count = 0;
        for await (const _ of memory.iterate(scope)) count++;
        scopes = [{ ...scope, count }];
      }
      const outbox = { pending: 0, processing: 0, failed: 0 };
      for (const turn of await memory.pending(scope)) outbox[turn.status]++;
      return {
        memories: scopes.reduce((sum, entry) => sum + entry.count, 0),
        scopes,
        outbox,
        databaseBytes: statSync(join(globals.dataDir, "engram.db")).size,
      };
    });
    if (globals.json) return printJson(stats);
    print(
      table(
        [{ header: "user" }, { header: "agent" }, { header: "run" }, { header: "memories", width: 9 }],
        stats.scopes.map((entry) => [entry.userId ?? "", entry.agentId ?? "", entry.runId ?? "", entry.count]),
      ),
    );
    print(
      `${stats.memories} ${stats.memories === 1 ? "memory" : "memories"}${isAllScopes(scope) ? ` in ${stats.scopes.length} ${stats.scopes.length === 1 ? "scope" : "scopes"}` : ""}; outbox: ${stats.outbox.pending} pending, ${stats.outbox.processing} in progress, ${stats.outbox.failed} failed; database ${(stats.databaseBytes / 1024 / 1024).toFixed(1)} MB.`,
    );
  });
};
