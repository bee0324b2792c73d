import { QdrantClient } from "@qdrant/js-client-rest";
import { qdrantStore } from "../../src/stores/qdrant-store.js";
import { testVectorStore } from "../../src/testing/conformance/index.js";

// Runs only when QDRANT_URL names a real Qdrant server (vitest.config.ts leaves test/live out
// otherwise): the conformance suite against Qdrant itself, in throwaway collections.
const url = process.env.QDRANT_URL as string;
const apiKey = process.env.QDRANT_API_KEY;
const prefix = `engram_live_${Date.now()}`;
const created: string[] = [];

testVectorStore({
  name: `qdrantStore against the Qdrant server at ${url}`,
  // Qdrant has no transactions: a write's preconditions are checked just before it.
  atomicPreconditions: false,
  create: () => {
    const collection = `${prefix}_${created.length}`;
    created.push(collection);
    return qdrantStore({ url, apiKey, collection });
  },
  cleanup: async () => {
    const client = new QdrantClient({ url, apiKey });
    for (const collection of created) await client.deleteCollection(collection).catch(() => {});
  },
});
