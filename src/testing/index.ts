export { inMemoryHistory } from "../history/in-memory-history.js";
export { inMemoryStore } from "../stores/in-memory-store.js";
export { type DeterministicEmbedder, type DeterministicEmbedderOptions, deterministicEmbedder } from "./deterministic-embedder.js";
export {
  type Script,
  type ScriptedLanguageModel,
  type ScriptedPrompt,
  type ScriptedResponse,
  type ScriptedUsage,
  scriptedLanguageModel,
} from "./scripted-language-model.js";
