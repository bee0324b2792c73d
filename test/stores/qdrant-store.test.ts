import { QdrantClient } from "@qdrant/js-client-rest";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ConfigError, StoreError } from "../../src/errors.js";
import { textHash } from "../../src/internal/hash.js";
import { pointIdOf, qdrantStore } from "../../src/stores/qdrant-store.js";
import type { MemoryRecord } from "../../src/stores/vector-store.js";
import { testVectorStore } from "../../src/testing/conformance/index.js";
import { type QdrantStandIn, startQdrantStandIn } from "../support/qdrant-stand-in.js";

// The real @qdrant/js-client-rest client against the Qdrant REST stand-in (test/support/qdrant-stand-in.ts),
// not against Qdrant: test/live/qdrant-store.live.test.ts runs the same suite on a real server when QDRANT_URL is set.
let standIn: QdrantStandIn;
let client: QdrantClient;
beforeAll(async () => {
  standIn = await startQdrantStandIn({ recordRequests: true });
  client = new QdrantClient({ url: standIn.url });
});
afterAll(() => standIn.close());

let collections = 0;
const nextCollection = () => `collection_${collections++}`;

testVectorStore({
  name: "qdrantStore against the Qdrant REST stand-in",
  create: () => qdrantStore({ url: standIn.url, collection: nextCollection() }),
  // Qdrant has no transactions: a write's preconditions are checked just before it.
  atomicPreconditions: false,
});

function record(id: string, userId: string, vector: number[], text = `text of ${id}`): MemoryRecord {
  const now = new Date().toISOString();
  return { id, text, hash: textHash(text), vector: Float32Array.from(vector), userId, metadata: {}, createdAt: now, updatedAt: now };
}

describe("qdrantStore", () => {
  test("init creates the collection with the embedder's dimension, cosine distance, and payload indexes on the scope fields", async () => {
    const collection = nextCollection();
    const store = qdrantStore({ url: standIn.url, collection });
    await store.init({ dimension: 4, modelId: "model-a" });
    const info = await client.getCollection(collection);
    expect(info.config.params.vectors).toMatchObject({ size: 4, distance: "Cosine" });
    expect(info.config.metadata).toMatchObject({ engramEmbeddingModel: "model-a" });
    expect(info.payload_schema.userId).toMatchObject({ data_type: "keyword", params: { is_tenant: true } });
    expect(info.payload_schema.agentId?.data_type).toBe("keyword");
    expect(info.payload_schema.runId?.data_type).toBe("keyword");
    expect(info.payload_schema.hash?.data_type).toBe("keyword");
    expect(info.payload_schema.text).toMatchObject({ data_type: "text", params: { tokenizer: "word", lowercase: true } });
    expect(info.payload_schema.createdAtMs).toMatchObject({ data_type: "integer", params: { range: true } });
    await store.close();
  });

  test("search sends the scope as a server-side filter through query(), never filtering results afterwards", async () => {
    const store = qdrantStore({ url: standIn.url, collection: nextCollection() });
    await store.init({ dimension: 2 });
    await store.write({ upsert: [record("a", "alice", [1, 0]), record("b", "bob", [1, 0.1])] });
    const before = standIn.requests.length;
    const hits = await store.search({ vector: Float32Array.from([1, 0]), filter: { scope: { userId: "alice", agentId: "x" } }, limit: 5 });
    expect(hits).toEqual([]);
    const sent = standIn.requests.slice(before);
    expect(sent.map((request) => `${request.method} ${request.path.replace(/collection_\d+/, "C")}`)).toEqual([
      "POST /collections/C/points/query",
    ]);
    expect(sent[0]?.body).toMatchObject({
      query: [1, 0],
      limit: 5,
      filter: {
        must: [
          { key: "userId", match: { value: "alice" } },
          { key: "agentId", match: { value: "x" } },
        ],
      },
    });
    await store.close();
  });

  test("point ids are UUIDs: Engram's UUIDs are kept, any other id maps to a stable name-based UUID, and the id is in the payload", async () => {
    const collection = nextCollection();
    const store = qdrantStore({ url: standIn.url, collection });
    await store.init({ dimension: 2 });
    const uuid = "0b7a9a6e-3f7e-4b9e-9d55-8f1f6c1b2a3c";
    await store.write({ upsert: [record(uuid, "alice", [1, 0]), record("memory-1", "alice", [0, 1])] });
    expect(pointIdOf(uuid)).toBe(uuid);
    expect(pointIdOf("memory-1")).toBe(pointIdOf("memory-1"));
    expect(pointIdOf("memory-1")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(pointIdOf("memory-1")).not.toBe(pointIdOf("memory-2"));
    const { points } = await client.scroll(collection, { limit: 10, with_payload: ["id"] });
    expect(points.map((point) => [point.id, point.payload?.id]).sort()).toEqual(
      [
        [uuid, uuid],
        [pointIdOf("memory-1"), "memory-1"],
      ].sort(),
    );
    await store.close();
  });

  test("a vector Qdrant would normalise is kept as written; a unit vector is stored once", async () => {
    const collection = nextCollection();
    const store = qdrantStore({ url: standIn.url, collection });
    await store.init({ dimension: 2 });
    await store.write({ upsert: [record("long", "alice", [3, 4]), record("unit", "alice", [0.6, 0.8])] });
    const { points } = await client.scroll(collection, { limit: 10, with_payload: true, with_vector: true });
    const byId = new Map(points.map((point) => [point.payload?.id, point]));
    expect(byId.get("long")?.vector).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(byId.get("long")?.payload?.vectorAsWritten).toEqual(expect.any(String));
    expect(byId.get("unit")?.payload?.vectorAsWritten).toBeUndefined();
    const got = await store.get(["long", "unit"], { scope: { userId: "alice" } });
    expect(Object.fromEntries(got.map((r) => [r.id, [...(r.vector ?? [])]]))).toEqual({
      long: [3, 4],
      unit: [Math.fround(0.6), Math.fround(0.8)],
    });
    await store.close();
  });

  test("Qdrant's errors become StoreErrors carrying Qdrant's message", async () => {
    const collection = nextCollection();
    const store = qdrantStore({ url: standIn.url, collection });
    await store.init({ dimension: 2 });
    await client.deleteCollection(collection);
    const error = await store.search({ vector: Float32Array.from([1, 0]), filter: { scope: { userId: "u" } }, limit: 1 }).catch((e) => e);
    expect(StoreError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain(`HTTP 404`);
    expect((error as Error).message).toContain(`Collection \`${collection}\` doesn't exist`);
  });

  test("a collection made for another dimension is refused at init with a ConfigError", async () => {
    const collection = nextCollection();
    await client.createCollection(collection, { vectors: { size: 3, distance: "Cosine" } });
    await client.upsert(collection, { points: [{ id: 1, vector: [1, 2, 3], payload: {} }] });
    const error = await qdrantStore({ url: standIn.url, collection })
      .init({ dimension: 2 })
      .catch((e) => e);
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain("3-dimensional");
  });

  test("bad options are a ConfigError that says what to pass", () => {
    for (const options of [
      {},
      { url: "localhost:6333" },
      { url: "http://localhost:6333", client },
      { url: "http://localhost:6333", collection: "a/b" },
      { url: "http://localhost:6333", collection: "" },
      { url: "http://localhost:6333", unknown: true },
    ]) {
      expect(() => qdrantStore(options as never), JSON.stringify(Object.keys(options))).toThrow(ConfigError);
    }
    expect(() => qdrantStore({ url: "http://localhost:6333" })).not.toThrow();
    expect(() => qdrantStore({ client })).not.toThrow();
  });
});
