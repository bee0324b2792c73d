import { type EngramError, type ErrorContext, Memory, type MemoryOptions, type Usage, type UsageContext } from "../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore, type Script, scriptedLanguageModel } from "../../src/testing/index.js";

export type Event = [id: string, event: "ADD" | "UPDATE" | "DELETE" | "NONE", text: string];

/** The extraction model's reply holding these events. */
export const reply = (...events: Event[]) => ({ json: { memory: events.map(([id, event, text]) => ({ id, event, text })) } });

/** A Memory with a scripted model, the deterministic embedder and in-memory stores; hooks recorded. */
export function setup(script: Script, options: Partial<MemoryOptions> = {}) {
  const llm = scriptedLanguageModel(script);
  const embedder = deterministicEmbedder();
  const errors: { error: EngramError; context: ErrorContext }[] = [];
  const usages: { usage: Usage; context: UsageContext }[] = [];
  const history = options.historyStore ?? inMemoryHistory();
  const memory = new Memory({
    llm,
    embedder,
    vectorStore: inMemoryStore(),
    historyStore: history,
    writeBehind: { enabled: false },
    llmRetry: { minDelayMs: 1, maxDelayMs: 2 },
    onError: (error, context) => errors.push({ error, context }),
    onUsage: (usage, context) => usages.push({ usage, context }),
    ...options,
  });
  /** Embedding calls made so far. */
  const embeddings = () => embedder.calls.length;
  return { memory, llm, embedder, errors, usages, embeddings };
}
