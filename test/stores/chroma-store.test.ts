import { ChromaClient } from "chromadb";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ConfigError, StoreError } from "../../src/errors.js";
import { textHash } from "../../src/internal/hash.js";
import { keywordTerms, rankByBm25 } from "../../src/store-kit/index.js";
import { chromaStore } from "../../src/stores/chroma-store.js";
import type { MemoryRecord } from "../../src/stores/vector-store.js";
import { testVectorStore } from "../../src/testing/conformance/index.js";
import { type ChromaServer, startChroma } from "../support/chroma-server.js";

// A real Chroma 1.0 server (the chromadb package's CLI), started on a free loopback port.
let server: ChromaServer;
let client: ChromaClient;
beforeAll(async () => {
  server = await startChroma();
  client = new ChromaClient({ host: "127.0.0.1", port: server.port });
});
afterAll(() => server?.remove());

let collections = 0;
const nextCollection = () => `collection_${collections++}`;

testVectorStore({
  name: "chromaStore against a Chroma server",
  create: () => chromaStore({ url: server.url, collection: nextCollection() }),
  // Chroma has no transactions: a write's preconditions are checked just before it.
  atomicPreconditions: false,
});

function record(id: string, fields: Partial<MemoryRecord> = {}): MemoryRecord {
  const text = fields.text ?? `text of ${id}`;
  const at = "2025-01-01T00:00:00.000Z";
  return { id, text, hash: textHash(text), vector: Float32Array.from([1, 0]), metadata: {}, createdAt: at, updatedAt: at, ...fields };
}

/** A client that reports a small max batch size, as a server configured for small batches would. */
class SmallBatchClient extends ChromaClient {
  override async getMaxBatchSize(): Promise<number> {
    return 3;
  }
}

describe("chromaStore", () => {
  test("init creates the collection with cosine distance, no embedding function, and the embedder's dimension and model in its metadata", async () => {
    const collection = nextCollection();
    const store = chromaStore({ url: server.url, collection });
    await store.init({ dimension: 4, modelId: "model-a" });
    const made = await client.getCollection({ name: collection });
    expect(made.configuration.hnsw?.space).toBe("cosine");
    expect(made.metadata).toMatchObject({ engramDimension: 4, engramEmbeddingModel: "model-a" });
    expect((await client.listCollections()).map((c) => c.name)).toContain(`${collection}_tombstones`);
    await store.close();
  });

  test("metadata cannot spoof scope: scope keys are reserved in the stored Chroma metadata", async () => {
    const collection = nextCollection();
    const store = chromaStore({ url: server.url, collection });
    await store.init({ dimension: 2 });
    await store.write({
      upsert: [record("a", { userId: "alice", metadata: { userId: "bob", agentId: "x", hash: "h", "meta.k": "s:v", k: "v" } })],
    });
    const vector = Float32Array.from([1, 0]);
    expect(await store.search({ vector, filter: { scope: { userId: "bob" } }, limit: 5 })).toEqual([]);
    expect(await store.search({ vector, filter: { scope: { userId: "alice", agentId: "x" } }, limit: 5 })).toEqual([]);
    const [hit] = await store.search({ vector, filter: { scope: { userId: "alice" } }, limit: 5 });
    expect(hit?.record).toMatchObject({ userId: "alice", metadata: { userId: "bob", agentId: "x", hash: "h", "meta.k": "s:v", k: "v" } });
    expect(hit?.record.agentId).toBeUndefined();
    const raw = await (await client.getCollection({ name: collection })).get({ ids: ["a"], include: ["metadatas"] });
    expect(raw.metadatas[0]).toMatchObject({ userId: "alice", agentId: "", runId: "", "meta.k": "s:v" });
    await store.close();
  });

  test("a write larger than the client's max batch size is sent in batches Chroma accepts", async () => {
    const collection = nextCollection();
    const store = chromaStore({ client: new SmallBatchClient({ host: "127.0.0.1", port: server.port }), collection });
    await store.init({ dimension: 2 });
    const ids = Array.from({ length: 10 }, (_, i) => `m${i}`);
    await store.write({ upsert: ids.map((id) => record(id, { userId: "alice" })) });
    expect((await store.get(ids, { scope: { userId: "alice" } })).map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(await store.deleteMany({ scope: { userId: "alice" } })).toBe(10);
    expect(await (await client.getCollection({ name: collection })).count()).toBe(0);
    await store.close();
  });

  test("a vector Chroma would normalise is read back exactly as written", async () => {
    const store = chromaStore({ url: server.url, collection: nextCollection() });
    await store.init({ dimension: 2 });
    await store.write({ upsert: [record("long", { userId: "u", vector: Float32Array.from([3, 4]) })] });
    const [got] = await store.get(["long"], { scope: { userId: "u" } });
    expect([...(got?.vector ?? [])]).toEqual([3, 4]);
    const [hit] = await store.search({ vector: Float32Array.from([3, 4]), filter: { scope: { userId: "u" } }, limit: 1 });
    expect(hit?.score).toBeCloseTo(1, 5);
    await store.close();
  });

  test("a purge deletes the record from Chroma for real and keeps only its id as a tombstone", async () => {
    const collection = nextCollection();
    const store = chromaStore({ url: server.url, collection });
    await store.init({ dimension: 2 });
    await store.write({ upsert: [record("gone", { userId: "u", text: "a secret" })] });
    await store.write({ delete: ["gone"], erase: true });
    const memories = await client.getCollection({ name: collection });
    expect((await memories.get({ ids: ["gone"] })).ids).toEqual([]);
    const tombstones = await client.getCollection({ name: `${collection}_tombstones` });
    const buried = await tombstones.get({ ids: ["gone"], include: ["documents", "metadatas"] });
    expect(buried.ids).toEqual(["gone"]);
    expect(buried.documents).toEqual([null]);
    expect(buried.metadatas).toEqual([null]);
    await store.close();
  });

  test("Chroma's errors become StoreErrors carrying Chroma's message", async () => {
    const collection = nextCollection();
    const store = chromaStore({ url: server.url, collection });
    await store.init({ dimension: 2 });
    await client.deleteCollection({ name: collection });
    const error = await store.search({ vector: Float32Array.from([1, 0]), filter: { scope: { userId: "u" } }, limit: 1 }).catch((e) => e);
    expect(StoreError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain(`"${collection}"`);
    expect((error as Error).message).toContain("init creates them");
  });

  test("a collection made for another dimension, or with another distance, is refused at init with a ConfigError", async () => {
    const collection = nextCollection();
    const other = await client.createCollection({
      name: collection,
      embeddingFunction: null,
      configuration: { hnsw: { space: "cosine" } },
    });
    await other.add({ ids: ["x"], embeddings: [[1, 2, 3]] });
    const error = await chromaStore({ url: server.url, collection })
      .init({ dimension: 2 })
      .catch((e) => e);
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain("3-dimensional");

    const l2 = nextCollection();
    await client.createCollection({ name: l2, embeddingFunction: null, configuration: { hnsw: { space: "l2" } } });
    const distance = await chromaStore({ url: server.url, collection: l2 })
      .init({ dimension: 2 })
      .catch((e) => e);
    expect(ConfigError.isInstance(distance)).toBe(true);
    expect((distance as Error).message).toContain("l2 distance");
  });

  test("property: keyword search finds every record BM25 scores, whatever the inflection, case or script, and ranks them as BM25 does", {
    timeout: 60_000,
  }, async () => {
    // Candidates come from a regex over the stored texts (Chroma has no full-text ranking): a word
    // it misses, through stemming (happy/happi, hoping/hope, sensibility/sensibl), case or a
    // lower case that splits a word ("İstanbul"), would be a hit BM25 gives and the store loses.
    const words = [
      "happy",
      "Happiness",
      "happily",
      "HOPING",
      "hope",
      "hoped",
      "sensibility",
      "sensible",
      "capability",
      "capable",
      "running",
      "runs",
      "agreed",
      "agree",
      "ponies",
      "pony",
      "relational",
      "relate",
      "organization",
      "organize",
      "İstanbul",
      "stanbul",
      "naïve",
      "Café",
      "café",
      "Straße",
      "2024",
      "well-known",
      "known",
      "don't",
      "x.y",
      "a+b",
    ];
    const text = fc.array(fc.constantFrom(...words), { minLength: 1, maxLength: 6 }).map((picked) => picked.join(" "));
    const store = chromaStore({ url: server.url, collection: nextCollection() });
    await store.init({ dimension: 2 });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(text, { minLength: 1, maxLength: 8 }),
        fc.array(fc.constantFrom(...words), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 8 }),
        async (texts, query, limit) => {
          const userId = `run-${run++}`;
          const scope = texts.map((text, i) => record(`${userId}-${String(i).padStart(2, "0")}`, { text, userId }));
          await store.write({ upsert: [...scope, record(`${userId}-other`, { text: query.join(" "), userId: `${userId}-other` })] });
          const hits = await store.keywordSearch({ text: query.join(" "), filter: { scope: { userId } }, limit });
          const expected = rankByBm25(keywordTerms(query.join(" ")), scope, { limit });
          expect(hits.map((hit) => hit.record.id)).toEqual(expected.map((hit) => hit.candidate.id));
          hits.forEach((hit, i) => {
            expect(hit.score).toBeCloseTo(expected[i]?.score as number, 9);
          });
        },
      ),
      { numRuns: 40 },
    );
    await store.close();
  });

  test("bad options are a ConfigError that says what to pass", () => {
    for (const options of [
      {},
      { url: "localhost:8000" },
      { url: "http://localhost:8000/chroma" },
      { url: "http://localhost:8000", client },
      { url: "http://localhost:8000", collection: "ab" },
      { url: "http://localhost:8000", collection: "a/b/c" },
      { url: "http://localhost:8000", collection: "_abc" },
      { url: "http://localhost:8000", unknown: true },
    ]) {
      expect(() => chromaStore(options as never), JSON.stringify(options)).toThrow(ConfigError);
    }
    expect(() => chromaStore({ url: "http://localhost:8000" })).not.toThrow();
    expect(() => chromaStore({ client, collection: "abc" })).not.toThrow();
  });
});
