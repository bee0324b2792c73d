import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, expect, test } from "vitest";
import { createMcpHttpHandler, type McpHttpHandlerOptions } from "../../../integrations/mcp/index.js";
import { Memory } from "../../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../../../src/testing/index.js";
import { mcpToolNames } from "./tool-names.js";

const token = "0123456789abcdef0123456789abcdef";
const cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function serve(options: Omit<McpHttpHandlerOptions, "memory">): Promise<{ url: URL; memory: Memory }> {
  const memory = new Memory({
    embedder: deterministicEmbedder(),
    vectorStore: inMemoryStore(),
    historyStore: inMemoryHistory(),
    writeBehind: { enabled: false },
  });
  const handler = createMcpHttpHandler({ memory, ...options } as McpHttpHandlerOptions);
  const server: Server = createServer((request, response) => void handler(request, response));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanup.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await memory.close();
  });
  return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`), memory };
}

async function connect(url: URL, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: "test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
  cleanup.push(() => client.close());
  return client;
}

const initialize = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
});
const post = (url: URL, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: initialize,
  });

test("the SDK client uses every tool over Streamable HTTP with the token, inside the fixed scope", async () => {
  const { url, memory } = await serve({ scope: { userId: "alice" }, token });
  await memory.add("bob's note", { userId: "bob" });
  const client = await connect(url, { authorization: `Bearer ${token}` });
  const { tools } = await client.listTools();
  expect(tools.map((tool) => tool.name).sort()).toEqual(mcpToolNames);
  const json = async (name: string, args: Record<string, unknown>) => {
    const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    return result.structuredContent as Record<string, unknown>;
  };
  const { results } = await json("add_memory", { text: "I prefer Postgres" });
  const id = (results as { id: string }[])[0]!.id;
  expect((await json("search_memories", { query: "Postgres" })).results).toHaveLength(1);
  expect((await json("list_memories", {})).results).toHaveLength(1);
  expect(await json("get_memory", { memoryId: id })).toMatchObject({ id, userId: "alice" });
  expect(await json("update_memory", { memoryId: id, text: "I prefer SQLite" })).toMatchObject({ memory: "I prefer SQLite" });
  expect(await json("delete_memory", { memoryId: id })).toEqual({ id, deleted: true, memory: "I prefer SQLite" });
  await json("add_memory", { text: "one more" });
  expect(await json("delete_all_memories", { confirm: true })).toEqual({ deleted: 1 });

  const widened = (await client.callTool({ name: "list_memories", arguments: { userId: "bob" } })) as CallToolResult;
  expect(widened.isError).toBe(true);
  expect((await memory.getAll({ userId: "bob" })).results.map((item) => item.memory)).toEqual(["bob's note"]);
});

test("a request without the token, or with a wrong one, gets 401 and reaches no tool", async () => {
  const { url, memory } = await serve({ scope: { userId: "alice" }, token });
  const attempts: Record<string, string>[] = [
    {},
    { authorization: "Bearer wrong" },
    { authorization: token },
    { authorization: `Bearer ${token}x` },
  ];
  for (const headers of attempts) {
    const response = await post(url, headers);
    expect(response.status, JSON.stringify(headers)).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe("Bearer");
  }
  await expect(connect(url)).rejects.toThrow(/401|Unauthorized/);
  await expect(connect(url, { authorization: "Bearer nope" })).rejects.toThrow(/401|Unauthorized/);
  expect((await post(url, { authorization: `Bearer ${token}` })).status).toBe(200);
  expect((await memory.getAll({ userId: "alice" })).results).toEqual([]);
});

/** A POST with a chosen Host header (fetch does not let a caller set it). */
function postWithHost(url: URL, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      url,
      { method: "POST", headers: { host, "content-type": "application/json", accept: "application/json, text/event-stream" } },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    outgoing.on("error", reject);
    outgoing.end(initialize);
  });
}

test("with allowedHosts, a request naming another host gets 403 (DNS rebinding)", async () => {
  const { url } = await serve({ scope: { userId: "alice" }, allowedHosts: ["localhost", "127.0.0.1", "[::1]"] });
  expect((await post(url)).status).toBe(200);
  expect(await postWithHost(url, "evil.example")).toBe(403);
  expect(await postWithHost(url, "evil.example:8765")).toBe(403);
  expect(await postWithHost(url, `localhost:${url.port}`)).toBe(200);
  await connect(url);
});

test("GET and DELETE get 405: the server is stateless", async () => {
  const { url } = await serve({ scope: { userId: "alice" } });
  expect((await fetch(url, { method: "GET", headers: { accept: "text/event-stream" } })).status).toBe(405);
  expect((await fetch(url, { method: "DELETE" })).status).toBe(405);
});

test("a short token is refused at creation", () => {
  const memory = new Memory({ embedder: deterministicEmbedder(), vectorStore: inMemoryStore(), historyStore: inMemoryHistory() });
  expect(() => createMcpHttpHandler({ memory, scope: { userId: "a" }, token: "short" })).toThrow(/at least 16 characters/);
  expect(() => createMcpHttpHandler({ memory, scope: {} })).toThrow(/needs a scope/);
});
