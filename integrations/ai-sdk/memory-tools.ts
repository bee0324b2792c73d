import { type Tool, tool } from "ai";
import { z } from "zod";
import type { Scope } from "../../src/index.js";
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

/** What each memory tool takes as its AI SDK tool context: the scope of the call. */
export type MemoryToolContext = Scope;

/** The memory tools, by name: pass them as `tools`, with `toolsContext: memoryToolsContext(scope)`. */
export type MemoryTools = Record<FrameworkToolName, Tool<Record<string, unknown>, Record<string, unknown>, MemoryToolContext>>;

const missingScope =
  'The memory tools need a scope in their tool context: generateText({ tools, toolsContext: memoryToolsContext({ userId: "alice" }) }). ' +
  "Engram has no global namespace, and a tool never takes its scope from the model.";

// The context is checked by readScope when the tool runs (a typed MissingScopeError / InvalidScopeError);
// this schema only gives `toolsContext` its type.
const contextSchema = z.custom<MemoryToolContext>(() => true);

/**
 * Memory as AI SDK tools, for the model to use when it decides to: `add_memory`, `search_memories`,
 * `list_memories`, `update_memory`, `delete_memory`, `update_profile` (the names and descriptions of
 * the MCP server's tools). The scope comes from each call's tool context, never from the model: no
 * tool has a scope argument, a call whose arguments name one is refused, and a call without a scope
 * in context fails with MissingScopeError before memory is touched.
 *
 * Used beside `withMemory`, each turn is still written once by the write-behind (see docs/tools.md).
 *
 * @example
 * const { text } = await generateText({
 *   model, prompt, tools: memoryTools({ memory }),
 *   toolsContext: memoryToolsContext({ userId: "alice" }),
 * });
 */
export function memoryTools(options: MemoryToolsOptions): MemoryTools {
  const runner = new MemoryToolRunner(parseConfig(z.strictObject(memoryToolsOptionsShape), options, "memoryTools") as MemoryToolsOptions);
  const make = (name: FrameworkToolName) =>
    tool({
      title: toolText[name].title,
      description: toolText[name].description,
      inputSchema: toolInputs[name] as unknown as z.ZodType<Record<string, unknown>>,
      contextSchema,
      execute: (input: Record<string, unknown>, { context }: { context: MemoryToolContext }) =>
        runner.run(name, readScope(`the ${name} tool`, objectEntries(context), { missing: missingScope }), input),
    });
  return Object.fromEntries(frameworkToolNames.map((name) => [name, make(name)])) as MemoryTools;
}

/**
 * The `toolsContext` that gives every memory tool the call's scope.
 *
 * @example
 * generateText({ model, prompt, tools: { ...memoryTools({ memory }), weather }, toolsContext: memoryToolsContext({ userId }) });
 */
export function memoryToolsContext(scope: Scope): Record<FrameworkToolName, Scope> {
  return Object.fromEntries(frameworkToolNames.map((name) => [name, scope])) as Record<FrameworkToolName, Scope>;
}
