import { type RunContext, tool } from "@openai/agents";
import { z } from "zod";
import { EngramError, MissingScopeError } from "../../src/index.js";
import { parseConfig } from "../../src/validation.js";
import {
  type FrameworkToolName,
  frameworkToolNames,
  MemoryToolRunner,
  type MemoryToolsOptions,
  memoryToolsOptionsShape,
  toolInputs,
  toolText,
} from "../shared/memory-tools.js";
import { objectEntries, readScope } from "../shared/scope.js";

export type { MemoryToolsOptions } from "../shared/memory-tools.js";

const missingScope =
  'The memory tools need a scope in the run context: run(agent, input, { context: { userId: "alice" } }). ' +
  "Engram has no global namespace, and a tool never takes its scope from the model.";

/**
 * Memory as OpenAI Agents tools, for the agent to use when it decides to: `add_memory`,
 * `search_memories`, `list_memories`, `update_memory`, `delete_memory`, `update_profile` (the names
 * and descriptions of the MCP server's tools). The scope comes from the run context
 * (`run(agent, input, { context: { userId } })`), as for `withMemory`, never from the model: no tool
 * has a scope argument, a call whose arguments name one is refused, and a call without a scope fails
 * with MissingScopeError before memory is touched: the run fails with it, as a `withMemory` run without a scope does.
 *
 * @example
 * const agent = new Agent({ name: "assistant", instructions, tools: memoryTools({ memory }) });
 * await run(agent, "I'm vegetarian", { context: { userId: "ana" } });
 */
export function memoryTools(options: MemoryToolsOptions) {
  const runner = new MemoryToolRunner(parseConfig(z.strictObject(memoryToolsOptionsShape), options, "memoryTools") as MemoryToolsOptions);
  const make = (name: FrameworkToolName) =>
    tool({
      name,
      description: toolText[name].description,
      parameters: toolInputs[name] as unknown as z.ZodObject,
      execute: async (input: unknown, runContext?: RunContext<unknown>) => {
        const scope = readScope(`the ${name} tool`, objectEntries(runContext?.context), { missing: missingScope });
        return JSON.stringify(await runner.run(name, scope, input));
      },
      errorFunction: (_context, error) => {
        // A run without a scope is the app's bug: it fails, as withMemory fails such a run.
        if (MissingScopeError.isInstance(error)) throw error;
        if (EngramError.isInstance(error) && !error.isUserError) return `${error.name}: memory is unavailable right now.`;
        return error instanceof Error ? `${error.name}: ${error.message}` : "The tool call failed.";
      },
    });
  return frameworkToolNames.map(make);
}
