import type { Embedder } from "../../src/embedders/embedder.js";
import type { HistoryLog } from "../../src/history/history-log.js";
import { inMemoryHistory } from "../../src/history/in-memory-history.js";
import type { Outbox } from "../../src/history/outbox.js";
import { Memory, type MemoryOptions } from "../../src/memory.js";
import { inMemoryStore } from "../../src/stores/in-memory-store.js";
import type { KeywordSearchable, VectorStore } from "../../src/stores/vector-store.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";

/** Wraps an object so that every method call is recorded as "<label>.<method>" in `calls`. */
export function spy<T extends object>(target: T, label: string, calls: string[]): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value = Reflect.get(object, property, receiver);
      if (typeof value !== "function" || typeof property !== "string") return value;
      return (...args: unknown[]) => {
        calls.push(`${label}.${property}`);
        return value.apply(object, args);
      };
    },
  });
}

export interface SpiedMemory {
  memory: Memory;
  /** Every call Memory made to its embedder, vector store and history store, in order. */
  calls: string[];
  store: VectorStore & KeywordSearchable;
  history: HistoryLog & Outbox;
  embedder: Embedder;
}

/** A Memory over in-memory stores and the deterministic embedder, with every call to them recorded. */
export function spiedMemory(options: Partial<MemoryOptions> = {}): SpiedMemory {
  const calls: string[] = [];
  const store = spy(inMemoryStore(), "store", calls);
  const history = spy(inMemoryHistory(), "history", calls);
  const embedder = spy(deterministicEmbedder({ dimension: 64 }), "embedder", calls);
  const memory = new Memory({
    embedder,
    vectorStore: store,
    historyStore: history,
    writeBehind: { enabled: false },
    onError: () => {},
    ...options,
  });
  return { memory, calls, store, history, embedder };
}
