import type { QdrantClient, Schemas } from "@qdrant/js-client-rest";
import { assertSameEmbedding } from "../store-kit/embedding.js";
import { httpFailure } from "./qdrant-points.js";

/** Payload indexes of the collection: the scope fields, the hash, the text (full text) and the list order. */
const payloadIndexes: [string, Schemas["PayloadFieldSchema"]][] = [
  // The tenant index keeps each user's points together on disk and in the HNSW graph.
  ["userId", { type: "keyword", is_tenant: true }],
  ["agentId", "keyword"],
  ["runId", "keyword"],
  ["hash", "keyword"],
  ["text", { type: "text", tokenizer: "word", lowercase: true, min_token_len: 2 }],
  ["createdAtMs", { type: "integer", lookup: false, range: true }],
];

/**
 * `qdrantStore`'s `init`: creates the collection `name` for the embedder (cosine distance, the
 * model in its metadata) with its payload indexes, and the tombstone collection, or checks the
 * existing ones; an empty collection made for another dimension is made again. Safe when app
 * servers start together.
 */
export async function prepareCollection(
  client: QdrantClient,
  { name, tombstones, dimension, modelId }: { name: string; tombstones: string; dimension: number; modelId?: string },
): Promise<void> {
  const create = async () => {
    try {
      await client.createCollection(name, {
        vectors: { size: dimension, distance: "Cosine" },
        metadata: modelId === undefined ? {} : { engramEmbeddingModel: modelId },
      });
    } catch (error) {
      // Another app server created it first: fine, it is checked below like any existing one.
      if (httpFailure(error).status !== 409) throw error;
    }
  };
  if (!(await client.collectionExists(name)).exists) await create();
  let info = await client.getCollection(name);
  let vectors = info.config.params.vectors as { size?: number } | undefined;
  if (vectors?.size !== dimension && (await client.count(name, { exact: true })).count === 0) {
    // Empty (e.g. after a reset): make it again for this embedder.
    await client.deleteCollection(name);
    await create();
    info = await client.getCollection(name);
    vectors = info.config.params.vectors as { size?: number } | undefined;
  }
  const storedModel = (info.config.metadata as Record<string, unknown> | null | undefined)?.engramEmbeddingModel ?? undefined;
  assertSameEmbedding(
    { dimension: vectors?.size ?? "named or unknown", modelId: typeof storedModel === "string" ? storedModel : undefined },
    { dimension, modelId },
    { holder: `The Qdrant collection "${name}"`, elsewhere: "another collection" },
  );
  if (storedModel === undefined && modelId !== undefined) {
    await client.updateCollection(name, { metadata: { engramEmbeddingModel: modelId } });
  }
  for (const [field_name, field_schema] of payloadIndexes) {
    if (info.payload_schema[field_name]) continue;
    await client.createPayloadIndex(name, { field_name, field_schema, wait: true });
  }
  if (!(await client.collectionExists(tombstones)).exists) {
    try {
      await client.createCollection(tombstones, { vectors: { size: 1, distance: "Dot" } });
    } catch (error) {
      if (httpFailure(error).status !== 409) throw error;
    }
  }
}
