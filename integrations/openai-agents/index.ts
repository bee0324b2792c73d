export type { AdapterErrorContext, MemoryAdapterOptions } from "../shared/options.js";
export { memoryGuardrailName, memoryRunConfig } from "./memory-run-config.js";
export { withMemory } from "./with-memory.js";
