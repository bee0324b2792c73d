import { APICallError } from "@ai-sdk/provider";
import { MockEmbeddingModelV4 } from "ai/test";
import { expect, test } from "vitest";
import { EmbeddingError } from "../../src/errors.js";
import { inMemoryHistory } from "../../src/history/in-memory-history.js";
import { Memory } from "../../src/memory.js";
import { inMemoryStore } from "../../src/stores/in-memory-store.js";

test("regression: a failing AI SDK embedding model is tried retries + 1 times in all, not retried again inside each attempt", async () => {
  let attempts = 0;
  const model = new MockEmbeddingModelV4({
    maxEmbeddingsPerCall: 100,
    doEmbed: async () => {
      attempts++;
      throw new APICallError({
        message: "overloaded",
        url: "http://embeddings.test",
        requestBodyValues: {},
        statusCode: 529,
        isRetryable: true,
      });
    },
  });
  const memory = new Memory({
    embedder: model,
    vectorStore: inMemoryStore(),
    historyStore: inMemoryHistory(),
    writeBehind: { enabled: false },
    retry: { retries: 2, minDelayMs: 1, maxDelayMs: 1 },
    onError: () => {},
  });
  const error = await memory.search("anything", { userId: "alice" }).catch((e: unknown) => e);
  expect(EmbeddingError.isInstance(error), String(error)).toBe(true);
  // The dimension probe at start fails first, with the same three attempts.
  expect(attempts).toBe(3);
  await memory.close();
});
