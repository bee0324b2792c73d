import type { Command } from "commander";
import type { PendingTurn } from "../../types.js";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { type ScopeFlags, scopeFlags, scopeOrAll } from "../options.js";
import { formatScope, print, printJson, shortDate, table } from "../output.js";

function pendingTable(turns: PendingTurn[]): string {
  return table(
    [
      { header: "id", width: 36 },
      { header: "status", width: 10 },
      { header: "tries", width: 5 },
      { header: "scope", width: 18 },
      { header: "next attempt", width: 16 },
      { header: "last error" },
    ],
    turns.map((turn) => [turn.id, turn.status, turn.attempts, formatScope(turn), shortDate(turn.nextAttemptAt), turn.lastError ?? ""]),
    { breakWords: true },
  );
}

export const pendingCommand: RegisterCommand = (program) => {
  scopeFlags(
    program
      .command("pending")
      .description("turns in the write-behind outbox that are not done yet: waiting, in progress, or failed")
      .option("--retry", "put turns that failed every attempt back in the queue"),
    { allScopes: true },
  ).action(async (options: ScopeFlags & { retry?: boolean }, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOrAll(options, "pending");
    await withMemory(globals, {}, async (memory) => {
      if (options.retry) {
        const { requeued } = await memory.retryFailed(scope);
        if (globals.json) return printJson({ requeued });
        return print(
          `Requeued ${requeued} failed ${requeued === 1 ? "turn" : "turns"}: the next process with a write-behind worker (e.g. engram import) writes them.`,
        );
      }
      const pending = await memory.pending(scope);
      if (globals.json) return printJson({ pending });
      print(pending.length ? pendingTable(pending) : "Nothing pending.");
    });
  });
};
