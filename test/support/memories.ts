import { afterEach } from "vitest";
import { Memory } from "../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../../src/testing/index.js";

/**
 * Registers an `afterEach` that closes every Memory made by the returned `newMemory` (in process
 * memory, deterministic embeddings). Call it once at the top of a file or inside a `describe`.
 */
export function memoriesClosedAfterEach(): () => Memory {
  const memories: Memory[] = [];
  afterEach(async () => {
    await Promise.all(memories.splice(0).map((memory) => memory.close()));
  });
  return () => {
    const memory = new Memory({ embedder: deterministicEmbedder(), vectorStore: inMemoryStore(), historyStore: inMemoryHistory() });
    memories.push(memory);
    return memory;
  };
}
