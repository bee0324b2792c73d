import { expect, test } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { inMemoryStore } from "../../src/stores/in-memory-store.js";
import { testVectorStore } from "../../src/testing/conformance/index.js";

testVectorStore({ name: "inMemoryStore", create: () => inMemoryStore() });

test("regression: inMemoryStore accepted vectors of another embedding model once it held records", async () => {
  const store = inMemoryStore();
  await store.init({ dimension: 2, modelId: "model-a" });
  await store.write({
    upsert: [
      { id: "1", text: "t", hash: "h", vector: new Float32Array([1, 0]), userId: "u", metadata: {}, createdAt: "x", updatedAt: "x" },
    ],
  });
  await expect(store.init({ dimension: 2, modelId: "model-b" })).rejects.toSatisfy((error) => ConfigError.isInstance(error));
  await store.reset();
  await expect(store.init({ dimension: 2, modelId: "model-b" })).resolves.toBeUndefined();
});
