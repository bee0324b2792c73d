export type { AdapterErrorContext, MemoryAdapterOptions } from "../shared/options.js";
export { warmUp } from "../shared/warm-up.js";
export { type MemoryProcessor, type MemoryProcessorOptions, memoryProcessor, memoryProcessorId } from "./memory-processor.js";
export { type MemoryTools, type MemoryToolsOptions, memoryTools } from "./memory-tools.js";
export { withMemory } from "./with-memory.js";
