export type { AdapterErrorContext, MemoryAdapterOptions } from "../shared/options.js";
export { warmUp } from "../shared/warm-up.js";
export { type MemoryMiddlewareOptions, memoryMiddleware, providerOptionsKey } from "./memory-middleware.js";
export { type MemoryToolContext, type MemoryTools, type MemoryToolsOptions, memoryTools, memoryToolsContext } from "./memory-tools.js";
export { withMemory } from "./with-memory.js";
