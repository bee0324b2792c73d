import { Command, CommanderError, Option } from "commander";
import packageJson from "../../package.json" with { type: "json" };
import { CorruptionError, EngramError, isUserError } from "../errors.js";
import { addCommand } from "./commands/add.js";
import { checkCommand } from "./commands/check.js";
import { consolidateCommand } from "./commands/consolidate.js";
import { deleteCommand } from "./commands/delete.js";
import { exportCommand } from "./commands/export.js";
import { forgetCommand } from "./commands/forget.js";
import { getCommand } from "./commands/get.js";
import { graphCommand } from "./commands/graph.js";
import { historyCommand } from "./commands/history.js";
import { importCommand } from "./commands/import.js";
import { listCommand } from "./commands/list.js";
import { mcpCommand } from "./commands/mcp.js";
import { pendingCommand } from "./commands/pending.js";
import { profileCommand } from "./commands/profile.js";
import { reviewCommand } from "./commands/review.js";
import { searchCommand } from "./commands/search.js";
import { statsCommand } from "./commands/stats.js";
import { sweepCommand } from "./commands/sweep.js";
import { uiCommand } from "./commands/ui.js";
import { updateCommand } from "./commands/update.js";
import { exitCodes, type RegisterCommand, type RunState } from "./context.js";

export { exitCodes, type RunState } from "./context.js";

/** In the order `engram --help` lists them. */
const commands: RegisterCommand[] = [
  addCommand,
  searchCommand,
  listCommand,
  getCommand,
  updateCommand,
  deleteCommand,
  forgetCommand,
  consolidateCommand,
  historyCommand,
  graphCommand,
  reviewCommand,
  sweepCommand,
  profileCommand,
  pendingCommand,
  importCommand,
  exportCommand,
  checkCommand,
  statsCommand,
  mcpCommand,
  uiCommand,
];

export function buildProgram(state: RunState = { code: exitCodes.ok }): Command {
  const program = new Command("engram");
  program
    .description("Engram: long-term memory for LLM apps, scoped by user, agent and run. Inspect, import, export and serve it.")
    .version(packageJson.version)
    .addOption(new Option("-d, --data-dir <path>", "where memories are stored (engram.db)").env("ENGRAM_DATA_DIR").default("./.engram"))
    .option("--json", "machine-readable JSON output")
    .showSuggestionAfterError()
    .exitOverride()
    // With --json, main() reports commander's usage errors as JSON instead.
    .configureOutput({ outputError: (text, write) => (state.json ? undefined : write(text)) })
    .configureHelp({ showGlobalOptions: true })
    .addHelpText(
      "after",
      `
Every command that reads or writes memory needs a scope: --user, --agent and/or --run.
Exit codes: 0 ok, 1 failure, 2 usage error (bad input, missing scope, unknown id), 3 damaged database
(see engram check), 130 interrupted.`,
    );
  // Commands are added after the settings above: `program.command()` copies them into each one.
  for (const register of commands) register(program, state);
  return program;
}

/** One line, whatever the error: the message says what to do. */
function report(error: unknown, json: boolean): number {
  const engram = EngramError.isInstance(error);
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, " ");
  const code = engram ? (error as EngramError).code : "INTERNAL";
  if (json) process.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
  else process.stderr.write(`engram: ${message}\n`);
  if (CorruptionError.isInstance(error)) return exitCodes.corrupt;
  return engram && isUserError(error) ? exitCodes.usage : exitCodes.failure;
}

/** Runs the CLI on `argv` (as `process.argv`) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const state: RunState = { code: exitCodes.ok, json: argv.includes("--json") };
  const program = buildProgram(state);
  try {
    await program.parseAsync(argv);
    return state.code;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return exitCodes.ok;
      if (state.json) {
        const message = error.message
          .replace(/^error: /, "")
          .replace(/\s*\n\s*/g, " ")
          .trim();
        process.stderr.write(`${JSON.stringify({ error: { code: "USAGE", message } })}\n`);
      }
      return exitCodes.usage;
    }
    return report(error, state.json === true);
  }
}
