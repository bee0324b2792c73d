import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { MemoryItem } from "../../../src/index.js";
import { assertBuilt, cliJson, cliPath, startCli } from "../../cli/run-cli.js";
import { mcpToolNames } from "./tool-names.js";

const root = mkdtempSync(join(tmpdir(), "engram-mcp-cli-"));
beforeAll(assertBuilt);
afterAll(() => rmSync(root, { recursive: true, force: true }));

function environment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith("ENGRAM_")) env[key] = value;
  return env;
}

async function structured(client: Client, name: string, args: Record<string, unknown>) {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
  return result.structuredContent as Record<string, unknown>;
}

test("engram mcp over stdio: the SDK client uses the tools inside the scope fixed by --user, and cannot widen it", {
  timeout: 120_000,
}, async () => {
  const dataDir = join(root, "stdio");
  // Stated well before the session: the fact the tool adds next is a memory of its own.
  const added = await cliJson<{ results: { id: string }[] }>([
    "add",
    "I prefer Postgres for everything",
    "--user",
    "alice",
    "--timestamp",
    "2026-01-01T00:00:00Z",
    "--data-dir",
    dataDir,
  ]);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [cliPath, "mcp", "--user", "alice", "--data-dir", dataDir],
    env: environment(),
    stderr: "pipe",
  });
  const client = new Client({ name: "test", version: "1.0.0" });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual(mcpToolNames);
    expect(tools.flatMap((tool) => Object.keys(tool.inputSchema.properties ?? {})).filter((key) => /user|agent|run/i.test(key))).toEqual(
      [],
    );

    const id = added.results[0]!.id;
    expect(await structured(client, "add_memory", { text: "My dog is called Rex" })).toMatchObject({ results: [{ event: "ADD" }] });
    const found = (await structured(client, "search_memories", { query: "which database?", limit: 1, threshold: 0 })) as {
      results: MemoryItem[];
    };
    expect(found.results.map((item) => item.id)).toEqual([id]);
    expect(((await structured(client, "list_memories", {})) as { results: MemoryItem[] }).results).toHaveLength(2);

    const widened = (await client.callTool({ name: "list_memories", arguments: { userId: "bob" } })) as CallToolResult;
    expect(widened.isError).toBe(true);
    expect(JSON.stringify(widened.content)).toMatch(/scope is fixed/);
    const unconfirmed = (await client.callTool({ name: "delete_all_memories", arguments: {} })) as CallToolResult;
    expect(unconfirmed.isError).toBe(true);
  } finally {
    await client.close();
  }
  // What the server stored is alice's, as the CLI sees it.
  const listed = await cliJson<{ results: MemoryItem[] }>(["list", "--user", "alice", "--data-dir", dataDir]);
  expect(listed.results.map((item) => item.memory).sort()).toEqual(["I prefer Postgres for everything", "My dog is called Rex"]);
});

test("engram mcp --http: a client with the token works, requests without it get 401, SIGTERM stops it cleanly", {
  timeout: 120_000,
}, async () => {
  const dataDir = join(root, "http");
  const token = "test-token-0123456789abcdef";
  const server = startCli(["mcp", "--http", "--port", "0", "--scope-from-arguments", "--data-dir", dataDir], {
    env: { ENGRAM_MCP_TOKEN: token },
  });
  try {
    const deadline = Date.now() + 60_000;
    const started = () => server.stderr().match(/on (http:\/\/127\.0\.0\.1:\d+\/mcp) \(bearer token required\)/);
    while (!started()) {
      if (server.child.exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start: ${server.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const match = started() as RegExpMatchArray;
    const url = new URL(match[1]!);

    const unauthorised = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(unauthorised.status).toBe(401);
    const anonymous = new Client({ name: "anonymous", version: "1.0.0" });
    await expect(anonymous.connect(new StreamableHTTPClientTransport(url))).rejects.toThrow(/401|Unauthorized/);

    const client = new Client({ name: "test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    await structured(client, "add_memory", { text: "Carol plays chess", userId: "carol" });
    const missing = (await client.callTool({ name: "list_memories", arguments: {} })) as CallToolResult;
    expect(missing.isError).toBe(true);
    expect(JSON.stringify(missing.content)).toMatch(/needs a scope/);
    expect(((await structured(client, "list_memories", { userId: "carol" })) as { results: MemoryItem[] }).results).toHaveLength(1);
    expect(((await structured(client, "list_memories", { userId: "dave" })) as { results: MemoryItem[] }).results).toEqual([]);
    await client.close();
  } finally {
    server.child.kill("SIGTERM");
  }
  expect((await server.done).code).toBe(0);
});
