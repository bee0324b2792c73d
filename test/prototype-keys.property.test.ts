import type { LanguageModelV4CallOptions } from "@ai-sdk/provider";
import { RequestContext } from "@mastra/core/request-context";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { generateText } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { withMemory } from "../integrations/ai-sdk/index.js";
import { callScope, memoryIdsOf } from "../integrations/mastra/call-scope.js";
import { createMcpServer } from "../integrations/mcp/index.js";
import { runScope } from "../integrations/openai-agents/run-turn.js";
import { objectEntries, readScope } from "../integrations/shared/scope.js";
import { EngramError, Memory, type MemoryItem, type Scope } from "../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../src/testing/index.js";

// Objects with keys named like Object.prototype's members (`__proto__`, `constructor`, …), holding
// scope-looking values, at the top of a call's options, in filters, in metadata, in adapter
// contexts and in MCP tool arguments. Two users hold distinct facts: whatever the keys, a call
// reads and writes only the scope given by own properties, never Bob's, and every refusal is an
// EngramError whose message does not print a native function.

const prototypeKeys = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "__defineGetter__",
  "__defineSetter__",
  "__lookupGetter__",
  "__lookupSetter__",
] as const;

const bobSecret = "Bob's locker PIN is quetzal";
const bobLooking: unknown[] = [
  { userId: "bob" },
  "bob",
  { allScopes: true },
  { userId: "bob", agentId: "coder" },
  ["bob"],
  { owner: "bob" },
  { resource: "bob", thread: "t-bob" },
  { memory: { userId: "bob" } },
  { id: "bob" },
];

type How = "own" | "inherited";

/**
 * `base` plus `key`: an own property (as JSON.parse makes `__proto__`), or, "inherited", an
 * object whose prototype carries it (as an assignment to `__proto__` would make).
 */
function inject(base: Record<string, unknown>, key: string, value: unknown, how: How): Record<string, unknown> {
  if (how === "own") {
    const copy = { ...base };
    Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true });
    return copy;
  }
  const prototype = value !== null && typeof value === "object" ? (value as object) : { [key]: value };
  return Object.assign(Object.create(prototype), base);
}

const injection = fc.record({
  key: fc.constantFrom(...prototypeKeys),
  value: fc.constantFrom(...bobLooking),
  how: fc.constantFrom<How>("own", "inherited"),
});
type Injection = { key: string; value: unknown; how: How };

const at = (base: Record<string, unknown>, { key, value, how }: Injection) => inject(base, key, value, how);

function checkRefusal(error: unknown, where: string): void {
  expect(EngramError.isInstance(error), `${where}: ${String(error)}`).toBe(true);
  expect((error as Error).message, where).not.toContain("[native code]");
}

function texts(value: unknown): string {
  return JSON.stringify(value) ?? "";
}

let memory: Memory;
let bobId: string;
let aliceId: string;
let bobBefore: string;

async function bobState(): Promise<string> {
  const { results } = await memory.getAll({ userId: "bob" });
  const history = await memory.history(bobId, { userId: "bob" });
  const pending = await memory.pending({ userId: "bob" });
  return JSON.stringify({ results, history, pending });
}

beforeEach(async () => {
  memory = new Memory({
    embedder: deterministicEmbedder(),
    vectorStore: inMemoryStore(),
    historyStore: inMemoryHistory(),
    writeBehind: { pollIntervalMs: 10 },
  });
  bobId = (await memory.add(bobSecret, { userId: "bob", metadata: { owner: "bob" } })).results[0]?.id as string;
  aliceId = (await memory.add("Alice drinks green tea", { userId: "alice", metadata: { owner: "alice" } })).results[0]?.id as string;
  bobBefore = await bobState();
});

afterEach(async () => {
  await memory.close();
});

type Placement = "options" | "filters" | "metadata" | "nested metadata";
type Entry = (options: { scope: Record<string, unknown>; filters?: Record<string, unknown>; metadata?: Record<string, unknown> }) => {
  run: () => Promise<unknown>;
  /** What the call returned that must lie in Alice's scope. */
  items?: (result: unknown) => unknown[];
};

let counter = 0;

const list = (result: unknown) => (result as { results: MemoryItem[] }).results;
const entries: Record<string, Entry> = {
  // Each note an hour after the last: a memory of its own, not the continuation of the previous one.
  add: ({ scope, metadata }) => ({
    run: () => {
      const n = counter++;
      return memory.add(`Alice note ${n}`, {
        ...scope,
        timestamp: new Date(Date.UTC(2026, 0, 1) + n * 3_600_000),
        ...(metadata && { metadata }),
      });
    },
  }),
  enqueue: ({ scope, metadata }) => ({ run: () => memory.enqueue(`Alice turn ${counter++}`, { ...scope, ...(metadata && { metadata }) }) }),
  search: ({ scope, filters }) => ({
    run: () => memory.search("locker PIN tea", { ...scope, limit: 10, ...(filters && { filters: filters as never }) }),
    items: list,
  }),
  getAll: ({ scope, filters }) => ({ run: () => memory.getAll({ ...scope, ...(filters && { filters: filters as never }) }), items: list }),
  iterate: ({ scope, filters }) => ({
    run: async () => {
      const all: MemoryItem[] = [];
      for await (const item of memory.iterate({ ...scope, ...(filters && { filters: filters as never }) })) all.push(item);
      return all;
    },
    items: (result) => result as MemoryItem[],
  }),
  "get bob's id": ({ scope }) => ({ run: () => memory.get(bobId, scope), items: (result) => (result ? [result] : []) }),
  "get alice's id": ({ scope }) => ({ run: () => memory.get(aliceId, scope), items: (result) => (result ? [result] : []) }),
  "update bob's id": ({ scope }) => ({ run: () => memory.update(bobId, `changed ${counter++}`, scope), items: (result) => [result] }),
  "delete bob's id": ({ scope }) => ({ run: () => memory.delete(bobId, scope) }),
  "delete bob's id with purge": ({ scope }) => ({ run: () => memory.delete(bobId, { ...scope, purge: true }) }),
  deleteAll: ({ scope }) => ({ run: () => memory.deleteAll(scope) }),
  "history of bob's id": ({ scope }) => ({ run: () => memory.history(bobId, scope), items: () => [] }),
  pending: ({ scope }) => ({ run: () => memory.pending(scope as Scope), items: (result) => result as unknown[] }),
  retryFailed: ({ scope }) => ({ run: () => memory.retryFailed(scope as Scope) }),
  scopes: ({ scope }) => ({ run: () => memory.scopes(scope as never) }),
  flush: ({ scope }) => ({ run: () => memory.flush(scope) }),
};
const scopeFree = new Set(["scopes", "flush"]);

describe("prototype-named keys never reach another scope", () => {
  test("every public call of Memory: own-property scope only, refusals are EngramErrors", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...Object.keys(entries)),
        fc.constantFrom<Placement>("options", "filters", "metadata", "nested metadata"),
        fc.boolean(),
        injection,
        async (name, placement, givesAlice, injected) => {
          const base: Record<string, unknown> = givesAlice ? { userId: "alice" } : {};
          const scope = placement === "options" ? at(base, injected) : base;
          const filters = placement === "filters" ? at({}, injected) : undefined;
          const metadata =
            placement === "metadata"
              ? at({ note: "kept" }, injected)
              : placement === "nested metadata"
                ? { nested: at({ note: "kept" }, injected) }
                : undefined;
          const where = `${name} with ${placement} ${injected.how} ${injected.key}=${texts(injected.value)}${givesAlice ? " and userId alice" : ""}`;
          const { run, items } = (entries[name] as Entry)({ scope, filters, metadata });
          let result: unknown;
          let refused = false;
          try {
            result = await run();
          } catch (error) {
            refused = true;
            checkRefusal(error, where);
          }
          if (!refused) {
            expect(givesAlice || scopeFree.has(name), `${where}: accepted without an own scope id`).toBe(true);
            expect(name, `${where}: scopes() ran without an own { allScopes: true }`).not.toBe("scopes");
            expect(texts(result), where).not.toContain("quetzal");
            for (const item of items?.(result) ?? []) expect((item as Scope).userId, where).toBe("alice");
            if (name === "add") {
              // Metadata is stored as given (own properties only) or refused: never changed on the way.
              const added = (result as { results: { id: string; event: string }[] }).results[0];
              expect(added?.event, where).toBe("ADD");
              const stored = await memory.get(added?.id as string, { userId: "alice" });
              expect(stored?.metadata, where).toEqual(metadata === undefined ? {} : JSON.parse(JSON.stringify(metadata)));
            }
          }
          expect(await bobState(), `${where}: Bob's memory changed`).toBe(bobBefore);
        },
      ),
      { numRuns: 400 },
    );
    // Nothing accepted at enqueue fails later.
    expect((await memory.flush()).failed).toBe(0);
    expect(await bobState()).toBe(bobBefore);
  });

  test("adapter scope readers: readScope, Agents JS run context, Mastra RequestContext and memory ids", () => {
    fc.assert(
      fc.property(fc.boolean(), injection, fc.constantFrom("plain", "RequestContext"), (givesAlice, injected, kind) => {
        const base: Record<string, unknown> = givesAlice ? { userId: "alice" } : {};
        const context = at(base, injected);
        const where = `${injected.how} ${injected.key}=${texts(injected.value)}${givesAlice ? " with userId alice" : ""}`;
        const readers: [string, () => Scope][] = [
          ["readScope", () => readScope("run()", objectEntries(context))],
          ["runScope", () => runScope(context)],
          [
            "callScope",
            () => {
              let requestContext: RequestContext | Record<string, unknown> = context;
              if (kind === "RequestContext") {
                const real = new RequestContext();
                for (const [key, value] of Object.entries(context)) real.set(key, value);
                requestContext = real;
              }
              return callScope("agent.generate()", requestContext as RequestContext, memoryIdsOf(at({}, injected)));
            },
          ],
        ];
        for (const [reader, read] of readers) {
          let scope: Scope | undefined;
          try {
            scope = read();
          } catch (error) {
            checkRefusal(error, `${reader}: ${where}`);
          }
          if (scope !== undefined) expect({ ...scope }, `${reader}: ${where}`).toEqual({ userId: "alice" });
          else if (reader !== "callScope") expect(givesAlice && injected.how === "inherited", `${reader}: ${where}: refused`).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  test("AI SDK middleware: providerOptions.memory with prototype-named keys", async () => {
    const searched: Scope[] = [];
    const spied = {
      search: (query: string, options: Parameters<Memory["search"]>[1]) => {
        const { limit: _limit, threshold: _threshold, filters: _filters, ...scope } = options;
        searched.push(scope);
        return memory.search(query, options);
      },
      enqueue: async () => ({ id: "not-queued", queued: false }),
    };
    const prompts: LanguageModelV4CallOptions[] = [];
    const model = new MockLanguageModelV4({
      doGenerate: async (call) => {
        prompts.push(call);
        return {
          content: [{ type: "text", text: "ok" }],
          finishReason: { unified: "stop", raw: "stop" },
          usage: {
            inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
            outputTokens: { total: 1, text: 1, reasoning: undefined },
          },
          warnings: [],
        };
      },
    });
    const wrapped = withMemory(model, { memory: spied, remember: false, failOpen: false });
    await fc.assert(
      fc.asyncProperty(fc.boolean(), injection, async (givesAlice, injected) => {
        const where = `${injected.how} ${injected.key}=${texts(injected.value)}${givesAlice ? " with userId alice" : ""}`;
        searched.length = 0;
        prompts.length = 0;
        try {
          await generateText({
            model: wrapped,
            prompt: "What is the locker PIN? Any tea?",
            providerOptions: { memory: at(givesAlice ? { userId: "alice" } : {}, injected) as never },
          });
        } catch (error) {
          checkRefusal(error, where);
          expect(prompts, `${where}: the model was called`).toEqual([]);
        }
        for (const scope of searched) expect({ ...scope }, where).toEqual({ userId: "alice" });
        expect(texts(prompts), where).not.toContain("quetzal");
      }),
      { numRuns: 150 },
    );
  });

  test("MCP tools: argument objects with prototype-named keys", async () => {
    const clients: Client[] = [];
    const connect = async (options: { scope: Scope } | { scopeFromArguments: true }) => {
      const server = createMcpServer({ memory, ...options });
      const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
      const client = new Client({ name: "test", version: "1.0.0" });
      await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
      clients.push(client);
      return client;
    };
    const fromArguments = await connect({ scopeFromArguments: true });
    const fixed = await connect({ scope: { userId: "alice" } });
    const tools: [string, Record<string, unknown>][] = [
      ["search_memories", { query: "locker PIN tea" }],
      ["list_memories", {}],
      ["get_memory", { memoryId: "BOB" }],
      ["update_memory", { memoryId: "BOB", text: "changed" }],
      ["delete_memory", { memoryId: "BOB" }],
      ["add_memory", { text: "Alice likes MCP" }],
      ["delete_all_memories", { confirm: true }],
    ];
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...tools),
          fc.constantFrom("arguments", "filters", "metadata"),
          fc.boolean(),
          fc.boolean(),
          injection,
          async ([tool, args], placement, scoped, givesAlice, injected) => {
            const concrete = Object.fromEntries(Object.entries(args).map(([key, value]) => [key, value === "BOB" ? bobId : value]));
            const base = { ...concrete, ...(scoped && givesAlice ? { userId: "alice" } : {}) };
            const built =
              placement === "filters"
                ? { ...base, filters: at({}, injected) }
                : placement === "metadata"
                  ? { ...base, metadata: at({ note: "kept" }, injected) }
                  : at(base, injected);
            // The wire carries JSON: own keys only, `__proto__` included.
            const wire = JSON.parse(JSON.stringify(built));
            const where = `${tool} on a ${scoped ? "scope-from-arguments" : "fixed-scope"} server, ${placement} ${injected.how} ${injected.key}=${texts(injected.value)}`;
            const result = (await (scoped ? fromArguments : fixed).callTool({ name: tool, arguments: wire })) as CallToolResult;
            const text = texts(result);
            expect(text, where).not.toContain("quetzal");
            expect(text, where).not.toContain("[native code]");
            if (!result.isError && scoped) expect(givesAlice, `${where}: accepted without an own scope id`).toBe(true);
            expect(await bobState(), `${where}: Bob's memory changed`).toBe(bobBefore);
          },
        ),
        { numRuns: 200 },
      );
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });
});
