import { type Command, Option } from "commander";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { hasScopeFlags, integer, type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { assertUiBinding, serveUi } from "../serve-ui.js";

export const uiCommand: RegisterCommand = (program) => {
  scopeFlags(
    program
      .command("ui")
      .description("open the memory inspector in a browser: memories, searches with their scores, histories, the outbox, plots")
      .option("-p, --port <n>", "HTTP port (0 picks a free one)", integer("--port", { min: 0, max: 65535 }), 8766)
      .option("--host <address>", "bind address; anything but loopback requires --token", "127.0.0.1")
      .addOption(new Option("--token <token>", "token every request must carry (16+ characters)").env("ENGRAM_UI_TOKEN"))
      .addHelpText(
        "after",
        `
Without --user / --agent / --run it is the operator view: every scope, with counts. With them, the
inspector shows that scope only, and no page or form reaches another.`,
      ),
  ).action(async (options: ScopeFlags & { port: number; host: string; token?: string }, command: Command) => {
    const globals = globalsOf(command);
    const scope = hasScopeFlags(options) ? scopeOf(options, "ui") : undefined;
    assertUiBinding(options);
    // The inspector reads and edits; turns it requeues are written by a process with a worker.
    await withMemory(globals, {}, (memory) =>
      serveUi(memory, {
        ...(scope ? { scope } : {}),
        port: options.port,
        host: options.host,
        ...(options.token === undefined ? {} : { token: options.token }),
      }),
    );
  });
};
