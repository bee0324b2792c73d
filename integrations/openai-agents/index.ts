export type { AdapterErrorContext, MemoryAdapterOptions } from "../shared/options.js";
export { warmUp } from "../shared/warm-up.js";
export { memoryGuardrailName, memoryRunConfig } from "./memory-run-config.js";
export { type MemoryToolsOptions, memoryTools } from "./memory-tools.js";
export { withMemory } from "./with-memory.js";
