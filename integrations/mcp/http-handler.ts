import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { ConfigError } from "../../src/errors.js";
import { createMcpServer, type McpServerOptions } from "./mcp-server.js";

export type McpHttpHandlerOptions = McpServerOptions & {
  /**
   * Bearer token every request must carry (`Authorization: Bearer <token>`), compared in constant
   * time; a request without it gets 401. Required whenever the server is reachable from other
   * machines. At least 16 characters.
   */
  token?: string;
  /**
   * Host names (without port) the `Host` header may name; others get 403. Set it for a server bound
   * to loopback, against DNS rebinding from web pages: `["localhost", "127.0.0.1", "[::1]"]`.
   * @default any host
   */
  allowedHosts?: readonly string[];
};

const digest = (text: string) => createHash("sha256").update(text).digest();

function reply(response: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "content-type": "application/json", ...headers });
  response.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

/**
 * A Node `http` request handler serving `createMcpServer` over MCP Streamable HTTP, stateless: each
 * POST gets a fresh server and transport over the shared `memory`. GET and DELETE (server-sent
 * event streams, sessions) answer 405. Mount it on the path you choose.
 *
 * @example
 * const handler = createMcpHttpHandler({ memory, scope: { userId: "alice" }, token: process.env.MCP_TOKEN });
 * createServer((req, res) => void handler(req, res)).listen(8765, "127.0.0.1");
 */
export function createMcpHttpHandler({
  token,
  allowedHosts,
  ...serverOptions
}: McpHttpHandlerOptions): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
  if (token !== undefined && (typeof token !== "string" || token.length < 16)) {
    throw new ConfigError({
      message: "The MCP token must be at least 16 characters: use a random one, e.g. `openssl rand -hex 32`.",
    });
  }
  // Fails fast on bad options, before the first request.
  createMcpServer(serverOptions as McpServerOptions);
  const expected = token === undefined ? undefined : digest(`Bearer ${token}`);
  const hosts = allowedHosts === undefined ? undefined : new Set(allowedHosts.map((host) => host.toLowerCase()));

  // The SDK's own checks (requireBearerAuth, hostHeaderValidation) are Express middleware, and its
  // transport's allowedHosts option is deprecated: this handler serves plain node:http, so it
  // checks the Host header and the token itself, the same way.
  return async (request, response) => {
    if (hosts) {
      let hostname: string | undefined;
      try {
        hostname = new URL(`http://${request.headers.host ?? ""}`).hostname.toLowerCase();
      } catch {
        hostname = undefined;
      }
      if (!hostname || !hosts.has(hostname)) return reply(response, 403, "Forbidden: unexpected Host header.");
    }
    if (expected) {
      const given = request.headers.authorization;
      // Digests have equal lengths, so the comparison leaks neither the token nor its length.
      if (typeof given !== "string" || !timingSafeEqual(digest(given), expected)) {
        return reply(response, 401, "Unauthorized: send Authorization: Bearer <token>.", { "www-authenticate": "Bearer" });
      }
    }
    if (request.method !== "POST") {
      return reply(response, 405, "Method not allowed: this server is stateless, POST JSON-RPC messages.", { allow: "POST" });
    }
    const server = createMcpServer(serverOptions as McpServerOptions);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    response.on("close", () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(request, response);
    } catch (error) {
      if (!response.headersSent) reply(response, 500, `Internal error: ${error instanceof Error ? error.message : String(error)}`);
      else response.end();
    }
  };
}
