import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import packageJson from "../../package.json" with { type: "json" };
import { ConfigError, InvalidInputError, MemoryNotFoundError } from "../../src/errors.js";
import type { Memory } from "../../src/memory.js";
import { type Scope, scopeKeyFor, scopeKeys, type ValidScope, validateScope } from "../../src/scope.js";
import type { MemoryItem } from "../../src/types.js";
import { filtersSchema, parseConfig } from "../../src/validation.js";
import {
  memoryIdField,
  newTextField,
  profileChangesField,
  profileTextField,
  queryField,
  textField,
  toolText,
} from "../shared/memory-tools.js";

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

const memoryId = memoryIdField;
const limitOf = (max: number, fallback: number) =>
  z.number().int().min(1).max(max).optional().describe(`How many memories to return, 1-${max}. Default ${fallback}.`);

// Metadata is checked by the memory (JSON values, no scope keys). Its own schema is recursive (a
// `$ref`), which several tool-schema converters reject: the tool schema only says "an object".
const metadataInput = z.record(z.string(), z.unknown());

const details = z
  .boolean()
  .optional()
  .describe("Also return each memory's content hash and exact createdAt / updatedAt. Default false: text, id, scope, metadata, date.");

/**
 * A memory as a tool returns it: sized for a context window. The 64-character hash and
 * millisecond timestamps cost tokens and tell a model nothing, so they come only with `details`.
 */
function shown(item: MemoryItem, withDetails = false): Record<string, unknown> {
  if (withDetails) return { ...item };
  const { hash: _hash, createdAt, updatedAt, score, ...rest } = item;
  const compact: Record<string, unknown> = { ...rest };
  if (score !== undefined) compact.score = Math.round(score * 1000) / 1000;
  compact.date = (updatedAt ?? createdAt).slice(0, 10);
  return compact;
}

function result(value: unknown): CallToolResult {
  return {
    content: [{ type: "text", text: JSON.stringify(value) }],
    structuredContent: value as Record<string, unknown>,
  };
}

/**
 * An MCP server whose tools read and write Engram memory: `add_memory`, `search_memories`,
 * `list_memories`, `get_memory`, `update_memory`, `delete_memory`, `delete_all_memories`, the
 * scope's profile: `get_profile`, `update_profile`, and graph memory: `related_memories`.
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
        if (fixed && issue.keys.some((key) => (scopeKeys as readonly string[]).includes(key) || /user|agent|run/i.test(key))) {
          return `Unknown argument ${keys}: this server's scope is fixed when it starts, and a tool call cannot choose or widen it.`;
        }
        const suggestions = issue.keys.flatMap((key) => {
          const right = fixed ? undefined : scopeKeyFor(key);
          return right ? [`${key} → ${right}`] : [];
        });
        return suggestions.length > 0 ? `Unknown argument ${keys}: did you mean ${suggestions.join(", ")}?` : `Unknown argument ${keys}.`;
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
      title: toolText.add_memory.title,
      description: describe(toolText.add_memory.description),
      inputSchema: input({
        text: textField,
        metadata: metadataInput.optional().describe("Optional JSON object stored with the memory."),
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
      title: toolText.search_memories.title,
      description: describe(toolText.search_memories.description),
      inputSchema: input({
        query: queryField,
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
        details,
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args) => {
      const { query, limit, threshold, filters } = args;
      const { results } = await memory.search(query, { ...scopeOf("search_memories", args), limit, threshold, filters });
      return result({ results: results.map((item) => shown(item, args.details)) });
    },
  );

  server.registerTool(
    "list_memories",
    {
      title: toolText.list_memories.title,
      description: describe(toolText.list_memories.description),
      inputSchema: input({
        limit: limitOf(1000, 100),
        filters: (filtersSchema as z.ZodType<Record<string, string | number | boolean | null>>)
          .optional()
          .describe("Metadata equality filters, AND-ed."),
        details,
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args) => {
      const { results } = await memory.getAll({ ...scopeOf("list_memories", args), limit: args.limit, filters: args.filters });
      return result({ results: results.map((item) => shown(item, args.details)) });
    },
  );

  server.registerTool(
    "related_memories",
    {
      title: "Related memories",
      description: describe(
        "Graph memory: the relations of an entity (a person, place or thing named in memories), up to depth relations away, and the memories that state them. Needs a Memory created with graph: true.",
      ),
      inputSchema: input({
        entity: z.string().min(1).max(500).describe('The entity\'s name, e.g. "Alice".'),
        depth: z.number().int().min(1).max(5).optional().describe("How many relations away to follow, 1-5. Default 1."),
        limit: limitOf(100, 20),
        details,
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args) => {
      const scope = scopeOf("related_memories", args);
      const limit = args.limit ?? 20;
      const relations = await memory.graph.relations(scope, { entity: args.entity, depth: args.depth ?? 1, limit });
      const ids = [...new Set(relations.flatMap((relation) => relation.memoryIds))].slice(0, limit);
      const memories = (await Promise.all(ids.map((id) => memory.get(id, scope)))).filter((item) => item !== null);
      return result({ relations, memories: memories.map((item) => shown(item, args.details)) });
    },
  );

  server.registerTool(
    "get_memory",
    {
      title: "Get a memory",
      description: describe("Read one memory by its id."),
      inputSchema: input({ memoryId, details }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args) => {
      const item = await memory.get(args.memoryId, scopeOf("get_memory", args));
      if (!item) throw new MemoryNotFoundError({ memoryId: args.memoryId });
      return result(shown(item, args.details));
    },
  );

  server.registerTool(
    "update_memory",
    {
      title: toolText.update_memory.title,
      description: describe(toolText.update_memory.description),
      inputSchema: input({ memoryId, text: newTextField }),
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args) => result(shown(await memory.update(args.memoryId, args.text, scopeOf("update_memory", args)))),
  );

  server.registerTool(
    "delete_memory",
    {
      title: toolText.delete_memory.title,
      description: describe(toolText.delete_memory.description),
      inputSchema: input({ memoryId }),
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args) => {
      const { memory: text } = await memory.delete(args.memoryId, scopeOf("delete_memory", args));
      return result({ id: args.memoryId, deleted: true, memory: text });
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

  server.registerTool(
    "get_profile",
    {
      title: toolText.get_profile.title,
      description: describe(toolText.get_profile.description),
      inputSchema: input({}),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args) => {
      const profile = await memory.profile(scopeOf("get_profile", args));
      return result(profile ?? { text: null });
    },
  );

  server.registerTool(
    "update_profile",
    {
      title: toolText.update_profile.title,
      description: describe(toolText.update_profile.description),
      inputSchema: input({ changes: profileChangesField.optional(), text: profileTextField.optional() }),
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args) => {
      if ((args.changes === undefined) === (args.text === undefined)) {
        throw new InvalidInputError({
          message: "update_profile: pass either changes or text, not both and not neither.",
          field: "changes",
        });
      }
      const update = args.text ?? Object.fromEntries((args.changes ?? []).map(({ field, value }) => [field, value]));
      const profile = await memory.setProfile(scopeOf("update_profile", args), update);
      return result(profile ?? { text: null });
    },
  );

  return server;
}
