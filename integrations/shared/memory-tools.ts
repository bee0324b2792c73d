import { createHash } from "node:crypto";
import { z } from "zod";
import {
  EngramError,
  InvalidScopeError,
  type Memory,
  type MemoryItem,
  MemoryNotFoundError,
  type Scope,
  scopeKeyFor,
  validateScope,
} from "../../src/index.js";
import { ownEntries } from "../../src/internal/plain-data.js";
import { parse } from "../../src/validation.js";
import { recallScope } from "./scope.js";

// The memory tools' names, descriptions and argument schemas: one definition for the MCP server and
// for the tools of every framework adapter.

export const toolText = {
  add_memory: {
    title: "Remember",
    description:
      "Store a fact worth remembering across conversations (a preference, a decision, a detail about the user). Returns the stored memory with its id; a text already stored is reported as NONE.",
  },
  search_memories: {
    title: "Search memories",
    description: "Find memories relevant to a query (by meaning and keywords), best first, each with a relevance score in [0, 1].",
  },
  list_memories: { title: "List memories", description: "List stored memories, oldest first." },
  update_memory: {
    title: "Update a memory",
    description: "Replace a memory's text (for a fact that changed). The previous text stays in the memory's history.",
  },
  delete_memory: {
    title: "Delete a memory",
    description: "Delete one memory by its id (for a fact that is wrong or no longer true).",
  },
  get_profile: {
    title: "Read the profile",
    description: "Read the profile: the few facts that matter in every conversation (name, language, diet, ...), as `key: value` lines.",
  },
  update_profile: {
    title: "Update the profile",
    description:
      "Change the profile: the few facts that matter in every conversation whatever the question (name, preferred language, diet, ...), shown with the memories on every call. Set or remove `key: value` fields; keep it to a few short lines. For any other fact use add_memory.",
  },
} as const;

export type MemoryToolName = keyof typeof toolText;

export const textField = z.string().min(1).describe("What to remember, as a short self-contained statement.");
export const queryField = z.string().min(1).describe("What to look for, in natural language.");
export const memoryIdField = z.string().min(1).describe("The memory's id, as returned by the other tools.");
export const newTextField = z.string().min(1).describe("The new text.");
export const profileChangesField = z
  .array(
    z.strictObject({
      field: z.string().min(1).max(40).describe('The field name, e.g. "name", "language", "diet".'),
      value: z.string().nullable().describe("Its new value, one short line; null removes the field."),
    }),
  )
  .max(20)
  .describe("Fields to set or remove; the other fields stay as they are.");
export const profileTextField = z.string().describe('The whole new profile, replacing it ("" clears it). Prefer changes.');

// Optional arguments are nullish: strict tool schemas (OpenAI's) make every field required and send null for "not given".
const limitField = (max: number, fallback: number) =>
  z.number().int().min(1).max(max).nullish().describe(`How many memories to return, 1-${max}. Default ${fallback}.`);

/** What a framework's tool takes: strict objects with no scope field, so a model can never name a scope. */
export const toolInputs = {
  add_memory: z.strictObject({ text: textField }),
  search_memories: z.strictObject({ query: queryField, limit: limitField(20, 5) }),
  list_memories: z.strictObject({ limit: limitField(50, 10) }),
  update_memory: z.strictObject({ memoryId: memoryIdField, text: newTextField }),
  delete_memory: z.strictObject({ memoryId: memoryIdField }),
  get_profile: z.strictObject({}),
  update_profile: z.strictObject({ changes: profileChangesField.nullish(), text: profileTextField.nullish() }),
} satisfies Record<MemoryToolName, z.ZodType>;

/** The tools a framework adapter offers (get_profile is left out: the profile is in every call's block already). */
export const frameworkToolNames = [
  "add_memory",
  "search_memories",
  "list_memories",
  "update_memory",
  "delete_memory",
  "update_profile",
] as const;
export type FrameworkToolName = (typeof frameworkToolNames)[number];

/** The part of `Memory` the tools use. */
export type ToolMemory = Pick<Memory, "add" | "search" | "getAll" | "update" | "delete" | "profile" | "setProfile">;

const isFunction = (value: unknown) => typeof value === "function";
const toolMemoryMethods = ["add", "search", "getAll", "update", "delete", "profile", "setProfile"] as const;

/** Options of `memoryTools` in every framework. */
export interface MemoryToolsOptions {
  /** The memory the tools read and write. */
  memory: ToolMemory;
  /** Longest memory text a tool returns, in characters; longer ones are cut with "…". @default 300 */
  maxMemoryLength?: number;
  /**
   * Searches, lists and by-id calls cover every run of the call's user (as the adapters' recall does);
   * new memories always carry the full scope, run included. Without a userId the run is the boundary. @default true
   */
  searchAcrossRuns?: boolean;
}

export const memoryToolsOptionsShape = {
  memory: z.custom<ToolMemory>(
    (value) =>
      value != null && typeof value === "object" && toolMemoryMethods.every((m) => isFunction((value as Record<string, unknown>)[m])),
    "memory must be an Engram Memory instance: new Memory()",
  ),
  maxMemoryLength: z.number().int().min(20).max(10_000).optional(),
  searchAcrossRuns: z.boolean().optional(),
};

/** One memory as a tool returns it: a short id, the text (cut to size), the date it was last stated. */
interface ToolMemoryItem {
  id: string;
  memory: string;
  date: string;
  score?: number;
}

const notFound = (id: string) =>
  `No memory with id "${id}" here: it may have been deleted. Use an id returned by search_memories or list_memories.`;

/**
 * Short id → full id, per memory and scope; bounded, oldest first out. Kept per memory, not per
 * tool set, so an id recalled through the tools of one call works with the tools made for the next.
 * A short id unknown here is taken as a full id (and is then simply not found).
 */
const shortIds = new WeakMap<object, Map<string, string>>();

function shortIdsOf(memory: ToolMemory): Map<string, string> {
  let ids = shortIds.get(memory);
  if (!ids) {
    ids = new Map();
    shortIds.set(memory, ids);
  }
  return ids;
}

/**
 * Runs the memory tools for one scope, which the caller takes from the call's context (never from
 * the model). Results are small: few memories, each cut to `maxMemoryLength`, with 8-character ids.
 */
export class MemoryToolRunner {
  readonly #memory: ToolMemory;
  readonly #maxLength: number;
  readonly #acrossRuns: boolean;
  readonly #ids: Map<string, string>;

  constructor({ memory, maxMemoryLength = 300, searchAcrossRuns = true }: MemoryToolsOptions) {
    this.#memory = memory;
    this.#ids = shortIdsOf(memory);
    this.#maxLength = maxMemoryLength;
    this.#acrossRuns = searchAcrossRuns;
  }

  /**
   * Runs tool `name` with the model's `args` inside `scope`.
   * @throws MissingScopeError / InvalidScopeError for a bad scope, InvalidScopeError for arguments that name one, before memory is touched.
   */
  async run(name: MemoryToolName, scope: Scope, args: unknown): Promise<Record<string, unknown>> {
    const call = `the ${name} tool`;
    const full = validateScope(call, scope);
    refuseScopeArguments(call, args);
    const input = parse(toolInputs[name] as z.ZodType<Record<string, unknown>>, args ?? {}, name);
    const wide = validateScope(call, recallScope(full, this.#acrossRuns));
    const memory = this.#memory;
    try {
      switch (name) {
        case "add_memory": {
          const { results } = await memory.add(input.text as string, { ...full });
          return {
            remembered: results.map((result) => ({
              id: this.#short(wide, result.id),
              memory: this.#cut(result.memory),
              event: result.event,
            })),
          };
        }
        case "search_memories": {
          const { results } = await memory.search(input.query as string, { ...wide, limit: (input.limit as number | null) ?? 5 });
          return this.#list(wide, results, "No memories match this query.");
        }
        case "list_memories": {
          const { results } = await memory.getAll({ ...wide, limit: (input.limit as number | null) ?? 10 });
          return this.#list(wide, results, "No memories are stored yet.");
        }
        case "update_memory": {
          const id = this.#full(wide, input.memoryId as string);
          const item = await memory.update(id, input.text as string, wide);
          return { updated: this.#item(wide, item) };
        }
        case "delete_memory": {
          await memory.delete(this.#full(wide, input.memoryId as string), wide);
          return { deleted: true, id: input.memoryId };
        }
        case "get_profile": {
          const profile = await memory.profile(wide);
          return profile ? { profile: profile.text } : { profile: null, note: "The profile is empty." };
        }
        case "update_profile": {
          const changes = input.changes as { field: string; value: string | null }[] | null | undefined;
          const text = input.text as string | null | undefined;
          if ((changes == null) === (text == null)) {
            return { error: "Pass either changes (fields to set or remove) or text (the whole new profile), not both and not neither." };
          }
          const update = text ?? Object.fromEntries((changes ?? []).map(({ field, value }) => [field, value]));
          const profile = await memory.setProfile(wide, update);
          return { profile: profile?.text ?? null };
        }
      }
    } catch (error) {
      if (MemoryNotFoundError.isInstance(error)) return { error: notFound(input.memoryId as string) };
      // The model can correct its own mistake (a text too long, a profile over its budget); scope errors and failures are the app's.
      if (EngramError.isInstance(error) && error.isUserError && error.code !== "MISSING_SCOPE" && error.code !== "INVALID_SCOPE") {
        return { error: error.message };
      }
      throw error;
    }
  }

  #list(scope: Scope, items: MemoryItem[], none: string): Record<string, unknown> {
    if (items.length === 0) return { memories: [], note: none };
    return { memories: items.map((item) => this.#item(scope, item)) };
  }

  #item(scope: Scope, item: MemoryItem): ToolMemoryItem {
    const shown: ToolMemoryItem = {
      id: this.#short(scope, item.id),
      memory: this.#cut(item.memory),
      date: (item.updatedAt || item.createdAt).slice(0, 10),
    };
    if (item.score !== undefined) shown.score = Math.round(item.score * 100) / 100;
    return shown;
  }

  #cut(text: string): string {
    return text.length > this.#maxLength ? `${text.slice(0, this.#maxLength - 1)}…` : text;
  }

  #key(scope: Scope, short: string): string {
    return JSON.stringify([scope.userId ?? null, scope.agentId ?? null, scope.runId ?? null, short]);
  }

  #short(scope: Scope, id: string): string {
    const short = createHash("sha256").update(id).digest("hex").slice(0, 8);
    const key = this.#key(scope, short);
    this.#ids.delete(key);
    this.#ids.set(key, id);
    if (this.#ids.size > 10_000) this.#ids.delete(this.#ids.keys().next().value as string);
    return short;
  }

  /** The full id of a short one given out in this scope; anything else is passed on as it is (and is then simply not found). */
  #full(scope: Scope, id: string): string {
    return this.#ids.get(this.#key(scope, id)) ?? id;
  }
}

/**
 * Refuses tool arguments that carry a scope key (or a misspelling of one): the scope comes from
 * the call, never from the model. Own properties only.
 */
export function refuseScopeArguments(call: string, args: unknown): void {
  if (args == null || typeof args !== "object") return;
  for (const [key] of ownEntries(args, call, "arguments")) {
    if (scopeKeyFor(key)) {
      throw new InvalidScopeError({
        key,
        message: `${call} was called with "${key}" in its arguments: a tool call cannot choose its scope. The scope comes from the call's context, set by the app.`,
      });
    }
  }
}
