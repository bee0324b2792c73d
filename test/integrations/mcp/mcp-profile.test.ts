import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, beforeEach, expect, test } from "vitest";
import { createMcpServer, type McpServerOptions } from "../../../integrations/mcp/index.js";
import { toolText } from "../../../integrations/shared/memory-tools.js";
import { Memory } from "../../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../../../src/testing/index.js";

let memory: Memory;
const clients: Client[] = [];
beforeEach(() => {
  memory = new Memory({
    embedder: deterministicEmbedder(),
    vectorStore: inMemoryStore(),
    historyStore: inMemoryHistory(),
    writeBehind: { enabled: false },
  });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await memory.close();
});

async function connect(options: Omit<McpServerOptions, "memory">): Promise<Client> {
  const server = createMcpServer({ memory, ...options } as McpServerOptions);
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "test", version: "1.0.0" });
  await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
  clients.push(client);
  return client;
}

const call = async (client: Client, name: string, args: Record<string, unknown>) =>
  (await client.callTool({ name, arguments: args })) as CallToolResult;
const json = (result: CallToolResult) => JSON.parse((result.content[0] as { text: string }).text);

test("the tools an adapter also offers have the same descriptions on the MCP server (one definition)", async () => {
  const client = await connect({ scope: { userId: "alice" } });
  const { tools } = await client.listTools();
  for (const name of Object.keys(toolText) as (keyof typeof toolText)[]) {
    expect(tools.find((tool) => tool.name === name)?.description, name).toBe(toolText[name].description);
  }
});

test("get_profile and update_profile read and change the profile of the server's fixed scope only", async () => {
  await memory.setProfile({ userId: "bob" }, "name: Bob");
  const client = await connect({ scope: { userId: "alice" } });
  expect(json(await call(client, "get_profile", {}))).toEqual({ text: null });
  const updated = await call(client, "update_profile", {
    changes: [
      { field: "name", value: "Alice" },
      { field: "language", value: "French" },
    ],
  });
  expect(updated.isError).toBeFalsy();
  expect(json(updated)).toMatchObject({ text: "name: Alice\nlanguage: French", fields: { name: "Alice", language: "French" } });
  expect(json(await call(client, "get_profile", {}))).toMatchObject({ text: "name: Alice\nlanguage: French" });
  expect((await memory.profile({ userId: "alice" }))?.text).toBe("name: Alice\nlanguage: French");
  // A scope in the arguments is refused, and Bob's profile is untouched.
  const refused = await call(client, "update_profile", { text: "name: Eve", userId: "bob" });
  expect(refused.isError).toBe(true);
  expect((await memory.profile({ userId: "bob" }))?.text).toBe("name: Bob");
  const both = await call(client, "update_profile", { text: "x", changes: [] });
  expect(both.isError).toBe(true);
  expect((both.content[0] as { text: string }).text).toMatch(/either changes or text/);
  const tooLong = await call(client, "update_profile", { text: "word ".repeat(1000) });
  expect(tooLong.isError).toBe(true);
  expect((tooLong.content[0] as { text: string }).text).toMatch(/budget is 300/);
});

test("with scopeFromArguments, each profile call names its scope and scopes stay apart", async () => {
  const client = await connect({ scopeFromArguments: true });
  await call(client, "update_profile", { text: "name: Ana", userId: "ana" });
  expect(json(await call(client, "get_profile", { userId: "ana" }))).toMatchObject({ text: "name: Ana" });
  expect(json(await call(client, "get_profile", { userId: "bob" }))).toEqual({ text: null });
  expect((await call(client, "get_profile", {})).isError).toBe(true);
});
