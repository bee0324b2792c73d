import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { createMcpServer, type McpServerOptions } from "../../../integrations/mcp/index.js";
import { ConfigError, Memory, type MemoryItem } from "../../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../../../src/testing/index.js";
import { mcpToolNames } from "./tool-names.js";

let memory: Memory;
const clients: Client[] = [];

beforeEach(() => {
  // A clock an hour further at each reading: each fact added is a memory of its own, not the
  // continuation of the previous one (a speaker's messages within 30 minutes form one memory).
  let now = Date.UTC(2026, 0, 1);
  memory = new Memory({
    embedder: deterministicEmbedder(),
    vectorStore: inMemoryStore(),
    historyStore: inMemoryHistory(),
    writeBehind: { enabled: false },
    _internal: { now: () => (now += 3_600_000) },
  });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await memory.close();
});

/** A client of the SDK connected to our server through the SDK's in-memory transport pair. */
async function connect(options: Omit<McpServerOptions, "memory"> & { memory?: Memory }): Promise<Client> {
  const server = createMcpServer({ memory, ...options } as McpServerOptions);
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "test", version: "1.0.0" });
  await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
  clients.push(client);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

/** The tool's JSON result; fails the test when the call returned an error. */
async function ok<T = Record<string, unknown>>(client: Client, name: string, args: Record<string, unknown>): Promise<T> {
  const result = await call(client, name, args);
  const text = (result.content[0] as { text: string }).text;
  expect(result.isError, text).toBeFalsy();
  expect(result.structuredContent).toEqual(JSON.parse(text));
  return JSON.parse(text) as T;
}

async function refused(client: Client, name: string, args: Record<string, unknown>): Promise<string> {
  const result = await call(client, name, args);
  expect(result.isError).toBe(true);
  return (result.content[0] as { text: string }).text;
}

describe("a server with a fixed scope", () => {
  test("lists its tools, none of which has a scope field, and all of which refuse unknown arguments", async () => {
    const client = await connect({ scope: { userId: "alice" } });
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual(mcpToolNames);
    for (const tool of tools) {
      const properties = Object.keys(tool.inputSchema.properties ?? {});
      expect(
        properties.some((key) => /user|agent|run/i.test(key)),
        `${tool.name}: ${properties}`,
      ).toBe(false);
      expect(tool.inputSchema.additionalProperties, tool.name).toBe(false);
      expect(tool.description?.length, tool.name).toBeGreaterThan(20);
    }
  });

  test("every tool works inside the scope: add, search, list, get, update, delete, delete all", async () => {
    const client = await connect({ scope: { userId: "alice" } });

    const added = await ok<{ results: { id: string; event: string; memory: string }[] }>(client, "add_memory", {
      text: "I prefer Postgres for everything except analytics",
      metadata: { topic: "databases" },
    });
    expect(added.results).toEqual([{ id: expect.any(String), event: "ADD", memory: "I prefer Postgres for everything except analytics" }]);
    const id = added.results[0]!.id;
    await ok(client, "add_memory", { text: "My dog is called Rex" });
    const again = await ok<{ results: { event: string }[] }>(client, "add_memory", { text: "My dog is called Rex" });
    expect(again.results[0]?.event).toBe("NONE");

    const found = await ok<{ results: MemoryItem[] }>(client, "search_memories", { query: "Postgres analytics", limit: 1, threshold: 0 });
    expect(found.results.map((item) => [item.id, item.userId, item.metadata])).toEqual([[id, "alice", { topic: "databases" }]]);
    const filtered = await ok<{ results: MemoryItem[] }>(client, "search_memories", {
      query: "dog",
      threshold: 0,
      filters: { topic: "databases" },
    });
    expect(filtered.results.map((item) => item.id)).toEqual([id]);

    const listed = await ok<{ results: MemoryItem[] }>(client, "list_memories", {});
    expect(listed.results.map((item) => item.memory).sort()).toEqual([
      "I prefer Postgres for everything except analytics",
      "My dog is called Rex",
    ]);
    expect((await ok<{ results: MemoryItem[] }>(client, "list_memories", { limit: 1 })).results).toHaveLength(1);

    expect((await ok<MemoryItem>(client, "get_memory", { memoryId: id })).memory).toBe("I prefer Postgres for everything except analytics");

    const updated = await ok<MemoryItem>(client, "update_memory", { memoryId: id, text: "I prefer Postgres, analytics included" });
    expect(updated).toMatchObject({ id, memory: "I prefer Postgres, analytics included", userId: "alice" });
    expect((await memory.history(id, { userId: "alice" })).map((entry) => entry.event)).toEqual(["ADD", "UPDATE"]);

    expect(await ok(client, "delete_memory", { memoryId: id })).toEqual({
      id,
      deleted: true,
      memory: "I prefer Postgres, analytics included",
    });
    expect(await refused(client, "get_memory", { memoryId: id })).toMatch(/No memory .* in this scope/);

    expect(await ok(client, "delete_all_memories", { confirm: true })).toEqual({ deleted: 1 });
    expect((await memory.getAll({ userId: "alice" })).results).toEqual([]);
  });

  test("a scope passed in arguments is refused, not used: the scope cannot be widened or switched", async () => {
    await memory.add("Bob's secret: the safe code is 1234", { userId: "bob" });
    const [bobsMemory] = (await memory.getAll({ userId: "bob" })).results;
    const client = await connect({ scope: { userId: "alice" } });

    for (const args of [
      { query: "safe code", userId: "bob" },
      { query: "safe code", user_id: "bob" },
      { query: "safe code", agentId: "coder" },
    ]) {
      expect(await refused(client, "search_memories", args)).toMatch(/scope is fixed when it starts/);
    }
    expect(await refused(client, "list_memories", { runId: "r1" })).toMatch(/scope is fixed/);
    expect(await refused(client, "add_memory", { text: "planted", userId: "bob" })).toMatch(/scope is fixed/);
    expect(await refused(client, "delete_all_memories", { confirm: true, userId: "bob" })).toMatch(/scope is fixed/);

    // By id, another scope's memory does not exist for this server.
    const id = bobsMemory!.id;
    expect(await refused(client, "get_memory", { memoryId: id })).toMatch(/No memory/);
    expect(await refused(client, "update_memory", { memoryId: id, text: "overwritten" })).toMatch(/No memory/);
    expect(await refused(client, "delete_memory", { memoryId: id })).toMatch(/No memory/);
    expect((await ok<{ results: MemoryItem[] }>(client, "search_memories", { query: "safe code" })).results).toEqual([]);

    expect((await memory.getAll({ userId: "bob" })).results.map((item) => item.memory)).toEqual(["Bob's secret: the safe code is 1234"]);
    expect((await memory.getAll({ userId: "alice" })).results).toEqual([]);
  });

  test("a narrower fixed scope sees only its slice", async () => {
    await memory.add("general fact", { userId: "alice" });
    await memory.add("coder fact", { userId: "alice", agentId: "coder" });
    const client = await connect({ scope: { userId: "alice", agentId: "coder" } });
    const listed = await ok<{ results: MemoryItem[] }>(client, "list_memories", {});
    expect(listed.results.map((item) => item.memory)).toEqual(["coder fact"]);
    const added = await ok<{ results: { id: string }[] }>(client, "add_memory", { text: "new coder fact" });
    expect(await memory.get(added.results[0]!.id, { userId: "alice", agentId: "coder" })).not.toBeNull();
  });

  test("delete_all_memories deletes nothing without confirm: true", async () => {
    await memory.add("keep me", { userId: "alice" });
    const client = await connect({ scope: { userId: "alice" } });
    expect(await refused(client, "delete_all_memories", {})).toMatch(/confirm/);
    expect(await refused(client, "delete_all_memories", { confirm: false })).toMatch(/confirm: true/);
    expect(await refused(client, "delete_all_memories", { confirm: "yes" })).toMatch(/confirm: true/);
    expect((await memory.getAll({ userId: "alice" })).results).toHaveLength(1);
  });

  test("delete_all_memories purges: the text is gone from history too", async () => {
    const { results } = await memory.add("forget this", { userId: "alice" });
    const client = await connect({ scope: { userId: "alice" } });
    await ok(client, "delete_all_memories", { confirm: true });
    const history = await memory.history(results[0]!.id, { userId: "alice" });
    expect(history.every((entry) => entry.previousValue === null && entry.newValue === null)).toBe(true);
  });

  test("bad input is a tool error whose message says what to do, and stores nothing", async () => {
    const client = await connect({ scope: { userId: "alice" } });
    expect(await refused(client, "add_memory", { text: "x", metadata: { userId: "bob" } })).toMatch(/metadata cannot hold the scope key/);
    expect(await refused(client, "add_memory", { text: "" })).toMatch(/text/);
    expect(await refused(client, "search_memories", { query: "x", limit: 1000 })).toMatch(/limit/);
    expect((await memory.getAll({ userId: "alice" })).results).toEqual([]);
  });
});

describe("a server taking the scope from arguments", () => {
  test("its tools have optional userId, agentId, runId fields", async () => {
    const client = await connect({ scopeFromArguments: true });
    const { tools } = await client.listTools();
    for (const tool of tools)
      expect(Object.keys(tool.inputSchema.properties ?? {})).toEqual(expect.arrayContaining(["userId", "agentId", "runId"]));
  });

  test("requires a scope on every call and keeps scopes apart", async () => {
    const client = await connect({ scopeFromArguments: true });
    for (const [name, args] of [
      ["add_memory", { text: "no scope" }],
      ["search_memories", { query: "x" }],
      ["list_memories", {}],
      ["get_memory", { memoryId: "m" }],
      ["update_memory", { memoryId: "m", text: "t" }],
      ["delete_memory", { memoryId: "m" }],
      ["delete_all_memories", { confirm: true }],
    ] as const) {
      expect(await refused(client, name, args), name).toMatch(/needs a scope/);
    }
    expect(await refused(client, "list_memories", { userId: "" })).toMatch(/needs a scope|empty/);
    expect(await refused(client, "list_memories", { userId: "alice", user_id: "bob" })).toMatch(/Unknown argument/);

    const added = await ok<{ results: { id: string }[] }>(client, "add_memory", { text: "alice likes tea", userId: "alice" });
    await ok(client, "add_memory", { text: "bob likes coffee", userId: "bob" });
    const alice = await ok<{ results: MemoryItem[] }>(client, "list_memories", { userId: "alice" });
    expect(alice.results.map((item) => item.memory)).toEqual(["alice likes tea"]);
    expect(await refused(client, "get_memory", { memoryId: added.results[0]!.id, userId: "bob" })).toMatch(/No memory/);
    expect(await ok(client, "delete_all_memories", { confirm: true, userId: "bob" })).toEqual({ deleted: 1 });
    expect((await memory.getAll({ userId: "alice" })).results).toHaveLength(1);
  });
});

describe("createMcpServer options", () => {
  test("need exactly one of scope and scopeFromArguments, and a valid scope", () => {
    expect(() => createMcpServer({ memory } as McpServerOptions)).toThrow(ConfigError);
    expect(() => createMcpServer({ memory, scope: { userId: "a" }, scopeFromArguments: true } as unknown as McpServerOptions)).toThrow(
      /exactly one of scope/,
    );
    expect(() => createMcpServer({ memory, scope: {} })).toThrow(/needs a scope/);
    expect(() => createMcpServer({ memory, scope: { user_id: "alice" } as never })).toThrow(/did you mean "userId"/);
    expect(() => createMcpServer({ memory: {} as Memory, scope: { userId: "a" } })).toThrow(/memory must be an Engram Memory/);
  });
});

describe("results sized for a context window, schemas every converter takes", () => {
  test("regression: tool results carried the 64-character hash, millisecond timestamps and indented JSON; now only with details: true", async () => {
    const client = await connect({ scope: { userId: "alice" } });
    const [added] = (await memory.add("I prefer Postgres", { userId: "alice", metadata: { topic: "db" } })).results;
    const id = added?.id as string;
    const stored = (await memory.get(id, { userId: "alice" })) as MemoryItem;
    for (const [name, args] of [
      ["search_memories", { query: "Postgres" }],
      ["list_memories", {}],
    ] as const) {
      const result = await call(client, name, args);
      const text = (result.content[0] as { text: string }).text;
      expect(text, name).not.toContain(stored.hash);
      expect(text, name).not.toContain(stored.createdAt);
      expect(text, name).not.toMatch(/\n/);
      const [item] = (JSON.parse(text) as { results: Record<string, unknown>[] }).results;
      expect(Object.keys(item ?? {}).sort(), name).toEqual(
        [...(name === "search_memories" ? ["score"] : []), "date", "id", "memory", "metadata", "userId"].sort(),
      );
      expect(item?.date, name).toBe(stored.updatedAt.slice(0, 10));
    }
    expect(await ok(client, "get_memory", { memoryId: id })).toEqual({
      id,
      memory: "I prefer Postgres",
      userId: "alice",
      metadata: { topic: "db" },
      date: stored.updatedAt.slice(0, 10),
    });
    expect(await ok(client, "get_memory", { memoryId: id, details: true })).toEqual(stored);
    const [detailed] = (await ok<{ results: MemoryItem[] }>(client, "search_memories", { query: "Postgres", details: true })).results;
    expect(detailed).toMatchObject({ hash: stored.hash, createdAt: stored.createdAt, updatedAt: stored.updatedAt });
  });

  test("regression: the metadata input schema was a recursive $ref, which tool-schema converters reject; no tool schema has a $ref now", async () => {
    for (const options of [{ scope: { userId: "alice" } }, { scopeFromArguments: true as const }]) {
      const client = await connect(options);
      const { tools } = await client.listTools();
      for (const tool of tools) expect(JSON.stringify(tool.inputSchema), tool.name).not.toMatch(/"\$(ref|defs)"/);
      const add = tools.find((tool) => tool.name === "add_memory");
      expect(add?.inputSchema.properties?.metadata).toMatchObject({ type: "object" });
    }
    // The memory still checks metadata: a scope key in it is refused, nothing is stored.
    const client = await connect({ scope: { userId: "alice" } });
    expect(await refused(client, "add_memory", { text: "x y z", metadata: { userId: "bob" } })).toMatch(/scope/i);
    expect((await memory.getAll({ userId: "alice" })).results).toEqual([]);
  });

  test("regression: with scopeFromArguments a misspelled user_id was only 'Unknown argument'; now it names userId", async () => {
    const client = await connect({ scopeFromArguments: true });
    expect(await refused(client, "search_memories", { query: "tea", user_id: "alice" })).toMatch(/did you mean user_id → userId\?/);
    expect(await refused(client, "list_memories", { agent_id: "coder", runID: "r" })).toMatch(/agent_id → agentId, runID → runId/);
    expect(await refused(client, "list_memories", { userId: "alice", colour: "red" })).toMatch(/Unknown argument colour\.$/);
  });
});
