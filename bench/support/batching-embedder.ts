import type { Embedder } from "../../src/index.js";

/**
 * Merges the embed calls made in the same turn of the event loop into one call of `inner`, up to
 * `maxBatch` texts. Ingesting many conversations concurrently then embeds their turns together:
 * the local model costs about a third per text in batches of 8 or more than one text at a time.
 */
export function batchingEmbedder(inner: Embedder, { maxBatch = 64 }: { maxBatch?: number } = {}): Embedder {
  let queue: { texts: string[]; resolve: (vectors: Float32Array[]) => void; reject: (error: unknown) => void }[] = [];
  let scheduled = false;
  const flush = async () => {
    scheduled = false;
    const batch = queue;
    queue = [];
    for (let start = 0; start < batch.length; ) {
      const group: typeof batch = [];
      let size = 0;
      while (start < batch.length && (group.length === 0 || size + (batch[start]?.texts.length ?? 0) <= maxBatch)) {
        const request = batch[start++] as (typeof batch)[number];
        group.push(request);
        size += request.texts.length;
      }
      try {
        const vectors = await inner.embed(group.flatMap((request) => request.texts));
        let offset = 0;
        for (const request of group) {
          request.resolve(vectors.slice(offset, offset + request.texts.length));
          offset += request.texts.length;
        }
      } catch (error) {
        for (const request of group) request.reject(error);
      }
    }
  };
  return {
    dimension: inner.dimension,
    modelId: inner.modelId,
    embed(texts) {
      return new Promise((resolve, reject) => {
        queue.push({ texts, resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(() => void flush());
        }
      });
    },
  };
}
