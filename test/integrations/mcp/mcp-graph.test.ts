import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, test } from "vitest";
import { createMcpServer, type McpServerOptions } from "../../../integrations/mcp/index.js";
import { Memory, sqliteGraph } from "../../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../../../src/testing/index.js";

const memories: Memory[] = [];
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(memories.splice(0).map((memory) => memory.close()));
});

function newMemory(graph: boolean): Memory {
  const memory = new Memory({
    embedder: deterministicEmbedder(),
    vectorStore: inMemoryStore(),
    historyStore: inMemoryHistory(),
    writeBehind: { enabled: false },
    ...(graph ? { graph: { store: sqliteGraph({ path: ":memory:" }) } } : {}),
  });
  memories.push(memory);
  return memory;
}

async function connect(options: McpServerOptions): Promise<Client> {
  const server = createMcpServer(options);
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "test", version: "1.0.0" });
  await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
  clients.push(client);
  return client;
}

const call = async (client: Client, args: Record<string, unknown>) =>
  (await client.callTool({ name: "related_memories", arguments: args })) as CallToolResult;
const json = (result: CallToolResult) => JSON.parse((result.content[0] as { text: string }).text);

describe("MCP related_memories", () => {
  test("returns an entity's relations and the memories that state them, inside the server's scope only", async () => {
    const memory = newMemory(true);
    await memory.add("Alice manages Bob", { userId: "alice" });
    await memory.add("Bob lives in Oslo", { userId: "alice" });
    await memory.add("Bob lives in Rome", { userId: "mallory" });
    const client = await connect({ memory, scope: { userId: "alice" } });
    const result = await call(client, { entity: "Bob" });
    expect(result.isError).toBeFalsy();
    const { relations, memories } = json(result);
    expect(relations.map((r: { source: string; target: string }) => `${r.source}-${r.target}`).sort()).toEqual(["Alice-Bob", "Bob-Oslo"]);
    expect(memories.map((m: { memory: string }) => m.memory).sort()).toEqual(["Alice manages Bob", "Bob lives in Oslo"]);
    // A scope in the arguments is refused: the tool cannot widen or switch it.
    const widened = await call(client, { entity: "Bob", userId: "mallory" });
    expect(widened.isError).toBe(true);
  });

  test("with scopes from arguments, a call needs one and sees only it", async () => {
    const memory = newMemory(true);
    await memory.add("Bob lives in Rome", { userId: "mallory" });
    const client = await connect({ memory, scopeFromArguments: true });
    expect((await call(client, { entity: "Bob" })).isError).toBe(true);
    expect(json(await call(client, { entity: "Bob", userId: "alice" }))).toEqual({ relations: [], memories: [] });
  });

  test("on a Memory without graph memory it is an error that says how to turn it on", async () => {
    const client = await connect({ memory: newMemory(false), scope: { userId: "alice" } });
    const result = await call(client, { entity: "Bob" });
    expect(result.isError).toBe(true);
    expect((result.content[0] as { text: string }).text).toMatch(/graph: true/);
  });
});
