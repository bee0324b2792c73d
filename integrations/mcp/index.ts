export { createMcpHttpHandler, type McpHttpHandlerOptions } from "./http-handler.js";
export { createMcpServer, type McpServerOptions } from "./mcp-server.js";
