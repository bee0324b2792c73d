import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { InvalidInputError } from "../../errors.js";
import { exitCodes, globalsOf, log, type RegisterCommand, withMemory } from "../context.js";
import { type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { describeScope, print, printJson } from "../output.js";

async function confirm(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    prompt.close();
  }
}

export const forgetCommand: RegisterCommand = (program, state) => {
  scopeFlags(
    program
      .command("forget")
      .description("the right to be forgotten: delete every memory of a scope, with its history text and queued turns, for good")
      .option("-y, --yes", "do not ask for confirmation"),
  ).action(async (options: ScopeFlags & { yes?: boolean }, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOf(options, "forget");
    return withMemory(globals, {}, async (memory) => {
      if (!options.yes) {
        if (!process.stdin.isTTY || !process.stderr.isTTY) {
          throw new InvalidInputError({
            message: "forget deletes for good and asks for confirmation first, but there is no terminal to ask on: pass --yes to confirm.",
          });
        }
        let count = 0;
        for await (const _ of memory.iterate(scope)) count++;
        const ok = await confirm(
          `Forget ${describeScope(scope)} for good: ${count} ${count === 1 ? "memory" : "memories"}, their history text and queued turns? This cannot be undone.`,
        );
        if (!ok) {
          log("Cancelled: nothing was deleted.");
          state.code = exitCodes.failure;
          return;
        }
      }
      const { deleted } = await memory.deleteAll({ ...scope, purge: true });
      if (globals.json) printJson({ ...scope, deleted, purged: true });
      else
        print(
          `Forgot ${describeScope(scope)}: ${deleted} ${deleted === 1 ? "memory" : "memories"} deleted, history text and queued turns erased.`,
        );
    });
  });
};
