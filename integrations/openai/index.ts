export type { AdapterErrorContext, MemoryAdapterOptions } from "../shared/options.js";
export { warmUp } from "../shared/warm-up.js";
export { type MemoryClient, withMemory } from "./with-memory.js";
