import { createServer, type Server } from "node:http";
import { ConfigError } from "../errors.js";
import type { Memory } from "../memory.js";
import type { Scope } from "../scope.js";
import { describeScope } from "./output.js";

export interface ServeOptions {
  scope?: Scope;
  scopeFromArguments?: boolean;
  http?: boolean;
  port: number;
  host: string;
  token?: string;
}

const loopbackHosts = new Set(["127.0.0.1", "::1", "localhost"]);

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return loopbackHosts.has(host.toLowerCase().replace(/^\[|\]$/g, ""));
}

function isMissingSdk(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  return (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") && String(message).includes("@modelcontextprotocol/sdk");
}

/** The MCP integration and the SDK, loaded only when `engram mcp` runs: the SDK is an optional peer dependency. */
async function loadMcp() {
  try {
    const [integration, stdio] = await Promise.all([
      import("../../integrations/mcp/index.js"),
      import("@modelcontextprotocol/sdk/server/stdio.js"),
    ]);
    return { ...integration, StdioServerTransport: stdio.StdioServerTransport };
  } catch (error) {
    if (isMissingSdk(error)) {
      throw new ConfigError({
        message: "mcp needs the MCP SDK, an optional dependency: install it with `npm install @modelcontextprotocol/sdk@^1`.",
        cause: error,
      });
    }
    throw error;
  }
}

/** Resolves on the first SIGINT or SIGTERM (or when `also` resolves). */
export function untilStopped(also?: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    also?.then(stop);
  });
}

/** Serves the memory tools over stdio or Streamable HTTP until stopped. */
export async function serveMcp(memory: Memory, options: ServeOptions): Promise<void> {
  const scopeOptions = options.scopeFromArguments ? { scopeFromArguments: true as const } : { scope: options.scope as Scope };
  const scopeText = options.scopeFromArguments ? "from each tool call's arguments" : describeScope(options.scope as Scope);
  const loopback = isLoopback(options.host);
  if (options.http && !loopback && options.token === undefined) {
    throw new ConfigError({
      message: `Binding the MCP server to ${options.host} makes it reachable from other machines: pass --token (or set ENGRAM_MCP_TOKEN) so every request must carry it, or bind 127.0.0.1.`,
    });
  }
  const mcp = await loadMcp();

  if (!options.http) {
    const server = mcp.createMcpServer({ memory, ...scopeOptions });
    const closed = new Promise<void>((resolve) => {
      process.stdin.once("end", resolve);
      process.stdin.once("close", resolve);
    });
    await server.connect(new mcp.StdioServerTransport());
    process.stderr.write(`engram MCP server on stdio; scope: ${scopeText}\n`);
    await untilStopped(closed);
    await server.close();
    return;
  }

  const handler = mcp.createMcpHttpHandler({
    memory,
    ...scopeOptions,
    token: options.token,
    // A server on loopback answers only to loopback names, against DNS rebinding from web pages.
    allowedHosts: loopback ? ["localhost", "127.0.0.1", "[::1]"] : undefined,
  });
  const httpServer = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path !== "/mcp") {
      response.writeHead(404, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: "Not found: the MCP endpoint is /mcp" }));
      return;
    }
    void handler(request, response);
  });
  await listen(httpServer, options);
  const address = httpServer.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  process.stderr.write(
    `engram MCP server on http://${host}:${port}/mcp${options.token ? " (bearer token required)" : ""}; scope: ${scopeText}\n`,
  );
  await untilStopped();
  await new Promise<void>((resolve) => {
    httpServer.close(() => resolve());
    httpServer.closeAllConnections();
  });
}

/** Starts `server` on `host:port`; a port in use or an address not of this machine is a ConfigError that says what to do. */
export function listen(server: Server, { host, port }: { host: string; port: number }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        error.code === "EADDRINUSE"
          ? new ConfigError({ message: `Port ${port} on ${host} is in use: pick another with --port.`, cause: error })
          : error.code === "EADDRNOTAVAIL" || error.code === "ENOTFOUND"
            ? new ConfigError({ message: `Cannot bind ${host}: not an address of this machine.`, cause: error })
            : error,
      );
    });
    server.listen(port, host, resolve);
  });
}
