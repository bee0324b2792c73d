export type { AdapterErrorContext, MemoryAdapterOptions } from "../shared/options.js";
export { warmUp } from "../shared/warm-up.js";
export {
  type MemoryMiddlewareCallOptions,
  type MemoryMiddlewareOptions,
  memoryMiddleware,
  providerOptionsKey,
} from "./memory-middleware.js";
export { type MemoryProviderOptions, type MemoryScope, memoryScope } from "./memory-scope.js";
export { type MemoryToolContext, type MemoryTools, type MemoryToolsOptions, memoryTools, memoryToolsContext } from "./memory-tools.js";
export { withMemory } from "./with-memory.js";
