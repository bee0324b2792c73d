import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import packageJson from "../../package.json" with { type: "json" };
import { ConfigError, MemoryNotFoundError } from "../../src/errors.js";
import type { Memory } from "../../src/memory.js";
import { type Scope, scopeKeys, type ValidScope, validateScope } from "../../src/scope.js";
import { filtersSchema, metadataSchema, parseConfig } from "../../src/validation.js";

export type McpServerOptions = {
  /** The memory the tools read and write. The server never closes it. */
  memory: Memory;
  /** Name the server reports to clients. @default "engram" */
  name?: string;
} & (
  | {
      /**
       * The one scope every tool call uses, fixed here: tool schemas have no scope fields, and a
       * call that passes one is refused, so a client can never widen or switch it.
       */
      scope: Scope;
      scopeFromArguments?: never;
    }
  | {
      /**
       * Take the scope from each tool call's `userId` / `agentId` / `runId` arguments, required on
       * every call. Only for trusted clients that serve several users themselves.
       */
      scopeFromArguments: true;
      scope?: never;
    }
);

const isMemory = (value: unknown) =>
  value != null &&
  typeof value === "object" &&
  ["add", "search", "getAll", "get", "update", "delete", "deleteAll"].every(
    (m) => typeof (value as Record<string, unknown>)[m] === "function",
  );

const optionsSchema = z.strictObject({
  memory: z.custom<Memory>(isMemory, "memory must be an Engram Memory"),
  name: z.string().min(1).optional(),
  // Checked by validateScope, which reads every own key (a record schema would drop "__proto__").
  scope: z
    .custom<Scope>((value) => value != null && typeof value === "object", 'scope must be an object, e.g. { userId: "alice" }')
    .optional(),
  scopeFromArguments: z.literal(true).optional(),
});

const scopeFields = {
  userId: z.string().optional().describe("Id of the user whose memories to use."),
  agentId: z.string().optional().describe("Id of the agent whose memories to use."),
  runId: z.string().optional().describe("Id of the run (conversation, session) whose memories to use."),
};

const scopeNote = " Give userId, agentId and/or runId (at least one): they are AND-ed exact matches.";

const memoryId = z.string().min(1).describe("The memory's id, as returned by the other tools.");
const limitOf = (max: number, fallback: number) =>
  z.number().int().min(1).max(max).optional().describe(`How many memories to return, 1-${max}. Default ${fallback}.`);

function result(value: unknown): CallToolResult {
  return {
    content: [{ type: "text", text: JSON.stringify(value, null, 2) }],
    structuredContent: value as Record<string, unknown>,
  };
}

/**
 * An MCP server whose tools read and write Engram memory: `add_memory`, `search_memories`,
 * `list_memories`, `get_memory`, `update_memory`, `delete_memory`, `delete_all_memories`.
 *
 * Scope is a security boundary: either fixed by `scope` (tool calls cannot change it) or, with
 * `scopeFromArguments: true`, required on every call. Connect it to any transport of
 * `@modelcontextprotocol/sdk` (stdio, Streamable HTTP: see `createMcpHttpHandler`).
 *
 * @example
 * const server = createMcpServer({ memory: new Memory(), scope: { userId: "alice" } });
 * await server.connect(new StdioServerTransport());
 */
export function createMcpServer(options: McpServerOptions): McpServer {
  const { memory, name = "engram", scope, scopeFromArguments } = parseConfig(optionsSchema, options, "createMcpServer");
  if ((scope === undefined) === (scopeFromArguments === undefined)) {
    throw new ConfigError({
      message:
        'createMcpServer() needs exactly one of scope (e.g. { userId: "alice" }, fixed for every tool call) or scopeFromArguments: true (scope required in every tool call).',
    });
  }
  const fixed: ValidScope | undefined = scope === undefined ? undefined : validateScope("createMcpServer", scope);

  const server = new McpServer({ name, version: packageJson.version });

  /** The tool's input schema: strict, so unknown arguments (a scope on a fixed-scope server) are refused, not ignored. */
  function input<Shape extends z.ZodRawShape>(shape: Shape) {
    const full = fixed ? shape : { ...shape, ...scopeFields };
    return z.strictObject(full, {
      error: (issue) => {
        if (issue.code !== "unrecognized_keys") return undefined;
        const keys = issue.keys.join(", ");
        return fixed && issue.keys.some((key) => (scopeKeys as readonly string[]).includes(key) || /user|agent|run/i.test(key))
          ? `Unknown argument ${keys}: this server's scope is fixed when it starts, and a tool call cannot choose or widen it.`
          : `Unknown argument ${keys}.`;
      },
    });
  }

  function scopeOf(tool: string, args: Record<string, unknown>): ValidScope {
    if (fixed) return fixed;
    const given: Record<string, unknown> = {};
    for (const key of scopeKeys) if (args[key] !== undefined) given[key] = args[key];
    return validateScope(tool, given);
  }

  const describe = (text: string) => (fixed ? text : text + scopeNote);

  server.registerTool(
    "add_memory",
    {
      title: "Remember",
      description: describe(
        "Store a fact worth remembering across conversations (a preference, a decision, a detail about the user). Returns the stored memory with its id; a text already stored is reported as NONE.",
      ),
      inputSchema: input({
        text: z.string().min(1).describe("What to remember, as a short self-contained statement."),
        metadata: (metadataSchema as z.ZodType<Record<string, unknown>>)
          .optional()
          .describe("Optional JSON object stored with the memory."),
      }),
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async (args) => {
      const { results } = await memory.add(args.text, { ...scopeOf("add_memory", args), metadata: args.metadata });
      return result({ results });
    },
  );

  server.registerTool(
    "search_memories",
    {
      title: "Search memories",
      description: describe(
        "Find memories relevant to a query (by meaning and keywords), best first, each with a relevance score in [0, 1].",
      ),
      inputSchema: input({
        query: z.string().min(1).describe("What to look for, in natural language."),
        limit: limitOf(100, 10),
        threshold: z
          .number()
          .min(0)
          .max(1)
          .optional()
          .describe(
            "Minimum score in [0, 1]; 0 returns the best matches whatever their score. Default: a calibrated cut-off that returns nothing for an unrelated query.",
          ),
        filters: (filtersSchema as z.ZodType<Record<string, string | number | boolean | null>>)
          .optional()
          .describe("Metadata equality filters, AND-ed."),
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args) => {
      const { query, limit, threshold, filters } = args;
      return result(await memory.search(query, { ...scopeOf("search_memories", args), limit, threshold, filters }));
    },
  );

  server.registerTool(
    "list_memories",
    {
      title: "List memories",
      description: describe("List stored memories, oldest first."),
      inputSchema: input({
        limit: limitOf(1000, 100),
        filters: (filtersSchema as z.ZodType<Record<string, string | number | boolean | null>>)
          .optional()
          .describe("Metadata equality filters, AND-ed."),
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args) => result(await memory.getAll({ ...scopeOf("list_memories", args), limit: args.limit, filters: args.filters })),
  );

  server.registerTool(
    "get_memory",
    {
      title: "Get a memory",
      description: describe("Read one memory by its id."),
      inputSchema: input({ memoryId }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args) => {
      const item = await memory.get(args.memoryId, scopeOf("get_memory", args));
      if (!item) throw new MemoryNotFoundError({ memoryId: args.memoryId });
      return result(item);
    },
  );

  server.registerTool(
    "update_memory",
    {
      title: "Update a memory",
      description: describe("Replace a memory's text (for a fact that changed). The previous text stays in the memory's history."),
      inputSchema: input({ memoryId, text: z.string().min(1).describe("The new text.") }),
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args) => result(await memory.update(args.memoryId, args.text, scopeOf("update_memory", args))),
  );

  server.registerTool(
    "delete_memory",
    {
      title: "Delete a memory",
      description: describe("Delete one memory by its id (for a fact that is wrong or no longer true)."),
      inputSchema: input({ memoryId }),
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args) => {
      await memory.delete(args.memoryId, scopeOf("delete_memory", args));
      return result({ id: args.memoryId, deleted: true });
    },
  );

  server.registerTool(
    "delete_all_memories",
    {
      title: "Delete all memories",
      description: describe(
        "Delete EVERY memory of this scope, for good (their text is erased from history too). Only when the user explicitly asks to be forgotten; requires confirm: true.",
      ),
      inputSchema: input({
        confirm: z.literal(true, { error: "delete_all_memories deletes every memory of the scope: pass confirm: true to do it" }),
      }),
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args) => result(await memory.deleteAll({ ...scopeOf("delete_all_memories", args), purge: true })),
  );

  return server;
}
