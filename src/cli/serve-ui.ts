import { createServer } from "node:http";
import { ConfigError } from "../errors.js";
import type { Memory } from "../memory.js";
import type { Scope } from "../scope.js";
import { loopbackHostNames } from "../ui/inspector-security.js";
import { describeScope } from "./output.js";
import { isLoopback, listen, untilStopped } from "./serve-mcp.js";

export interface ServeUiOptions {
  scope?: Scope;
  port: number;
  host: string;
  token?: string;
}

/** @throws ConfigError for a bind address other machines reach without a token, or a token too short to guess-proof. */
export function assertUiBinding({ host, token }: Pick<ServeUiOptions, "host" | "token">): void {
  if (!isLoopback(host) && token === undefined) {
    throw new ConfigError({
      message: `Binding the inspector to ${host} makes it reachable from other machines: pass --token (or set ENGRAM_UI_TOKEN) so every request must carry it, or bind 127.0.0.1.`,
    });
  }
  if (token !== undefined && token.length < 16) {
    throw new ConfigError({
      message: "The inspector token must be at least 16 characters: use a random one, e.g. `openssl rand -hex 32`.",
    });
  }
}

/** Serves the memory inspector until SIGINT or SIGTERM. */
export async function serveUi(memory: Memory, options: ServeUiOptions): Promise<void> {
  assertUiBinding(options);
  const loopback = isLoopback(options.host);
  // Loaded only by this command: importing the CLI never loads the web framework.
  const { createInspectorHandler } = await import("../ui/inspector.js");
  const handler = createInspectorHandler({
    memory,
    ...(options.scope ? { scope: options.scope } : {}),
    ...(options.token === undefined ? {} : { token: options.token }),
    // A server on loopback answers only to loopback names, against DNS rebinding from web pages.
    ...(loopback ? { allowedHosts: loopbackHostNames } : {}),
  });
  const server = createServer(handler);
  await listen(server, options);
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  const url = `http://${host}:${port}/${options.token ? `?token=${encodeURIComponent(options.token)}` : ""}`;
  process.stderr.write(
    `engram inspector on ${url} ; scope: ${options.scope ? describeScope(options.scope) : "every scope (operator view)"}\n`,
  );
  await untilStopped();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
