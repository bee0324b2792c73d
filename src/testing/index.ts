export { inMemoryHistory } from "../history/in-memory-history.js";
export { inMemoryStore } from "../stores/in-memory-store.js";
export { type DeterministicEmbedder, type DeterministicEmbedderOptions, deterministicEmbedder } from "./deterministic-embedder.js";
