import { createTool } from "@mastra/core/tools";
import { z } from "zod";
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
import { callScope } from "./call-scope.js";

export type { MemoryToolsOptions } from "../shared/memory-tools.js";

/** The memory tools, by name, for an Agent's `tools`. */
export type MemoryTools = Record<FrameworkToolName, ReturnType<typeof createTool>>;

/**
 * Memory as Mastra tools, for the agent to use when it decides to: `add_memory`, `search_memories`,
 * `list_memories`, `update_memory`, `delete_memory`, `update_profile` (the names and descriptions of
 * the MCP server's tools). The scope comes from the call, as for `withMemory`: `userId` / `agentId` /
 * `runId` on the RequestContext, else Mastra's memory ids (resource, thread). No tool has a scope
 * argument, a call whose arguments name one is refused, and a call without a scope fails with
 * MissingScopeError before memory is touched.
 *
 * @example
 * const agent = new Agent({ id: "assistant", name: "assistant", instructions, model, tools: memoryTools({ memory }) });
 * await agent.generate("I'm vegetarian", { requestContext }); // requestContext.set("userId", "ana")
 */
export function memoryTools(options: MemoryToolsOptions): MemoryTools {
  const runner = new MemoryToolRunner(parseConfig(z.strictObject(memoryToolsOptionsShape), options, "memoryTools") as MemoryToolsOptions);
  const make = (name: FrameworkToolName) =>
    createTool({
      id: name,
      description: toolText[name].description,
      inputSchema: toolInputs[name] as unknown as z.ZodType<Record<string, unknown>>,
      execute: async (input, context) => {
        const call = `the ${name} tool`;
        const scope = callScope(call, context?.requestContext, {
          resourceId: context?.agent?.resourceId,
          threadId: context?.agent?.threadId,
        });
        return runner.run(name, scope, input);
      },
    });
  return Object.fromEntries(frameworkToolNames.map((name) => [name, make(name)])) as MemoryTools;
}
