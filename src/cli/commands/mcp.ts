import { type Command, Option } from "commander";
import { InvalidInputError, MissingScopeError } from "../../errors.js";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { hasScopeFlags, integer, type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { serveMcp } from "../serve-mcp.js";

export const mcpCommand: RegisterCommand = (program) => {
  scopeFlags(
    program
      .command("mcp")
      .description("serve memory as MCP tools, over stdio (default) or Streamable HTTP")
      .option(
        "--scope-from-arguments",
        "take the scope from each tool call (required on every call) instead of fixing it with --user / --agent / --run",
      )
      .option("--http", "serve Streamable HTTP at /mcp instead of stdio")
      .option("-p, --port <n>", "HTTP port (0 picks a free one)", integer("--port", { min: 0, max: 65535 }), 8765)
      .option("--host <address>", "HTTP bind address; anything but loopback requires --token", "127.0.0.1")
      .addOption(new Option("--token <token>", "bearer token every HTTP request must carry (16+ characters)").env("ENGRAM_MCP_TOKEN"))
      .addHelpText(
        "after",
        `
The scope is a security boundary: with --user / --agent / --run it is fixed for every tool call and a
call cannot widen it. Only --scope-from-arguments takes it from the calls, for trusted clients.`,
      ),
  ).action(
    async (
      options: ScopeFlags & { scopeFromArguments?: boolean; http?: boolean; port: number; host: string; token?: string },
      command: Command,
    ) => {
      const globals = globalsOf(command);
      const given = hasScopeFlags(options);
      if (options.scopeFromArguments && given) {
        throw new InvalidInputError({ message: "mcp: pass either --scope-from-arguments or --user / --agent / --run, not both." });
      }
      if (!options.scopeFromArguments && !given) {
        throw new MissingScopeError({
          call: "mcp",
          message:
            "mcp needs a scope: pass --user, --agent and/or --run (fixed for every tool call), or --scope-from-arguments to require one in every call.",
        });
      }
      if (!options.http && ["port", "host", "token"].some((name) => command.getOptionValueSource(name) === "cli")) {
        throw new InvalidInputError({ message: "mcp: --port, --host and --token apply to --http only." });
      }
      const scope = options.scopeFromArguments ? undefined : scopeOf(options, "mcp");
      await withMemory(globals, { create: true }, (memory) =>
        serveMcp(memory, {
          scope,
          scopeFromArguments: options.scopeFromArguments,
          http: options.http,
          port: options.port,
          host: options.host,
          token: options.token,
        }),
      );
    },
  );
};
