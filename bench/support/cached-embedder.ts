import { createHash } from "node:crypto";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import type { Embedder } from "../../src/index.js";

/**
 * An embedder that keeps every vector it gets in a file (SHA-1 of the exact text + float32s), so a
 * benchmark run after the first embeds only texts it has not seen: for iterating on ranking, not
 * for timing. New vectors are appended as they arrive.
 */
export function cachedEmbedder(inner: Embedder, file: string): Embedder & { hits: () => number; misses: () => number } {
  const dimension = inner.dimension ?? 512;
  const recordBytes = 20 + dimension * 4;
  const cache = new Map<string, Float32Array>();
  if (existsSync(file)) {
    const buffer = readFileSync(file);
    for (let offset = 0; offset + recordBytes <= buffer.length; offset += recordBytes) {
      const vector = new Float32Array(dimension);
      for (let i = 0; i < dimension; i++) vector[i] = buffer.readFloatLE(offset + 20 + i * 4);
      cache.set(buffer.subarray(offset, offset + 20).toString("hex"), vector);
    }
  }
  const keyOf = (text: string) => createHash("sha1").update(text).digest("hex");
  let hits = 0;
  let misses = 0;
  return {
    dimension,
    ...(inner.modelId === undefined ? {} : { modelId: inner.modelId }),
    hits: () => hits,
    misses: () => misses,
    async embed(texts, call) {
      const keys = texts.map(keyOf);
      const missing = [...new Set(keys.filter((key) => !cache.has(key)))];
      hits += texts.length - keys.filter((key) => missing.includes(key)).length;
      if (missing.length) {
        const wanted = missing.map((key) => texts[keys.indexOf(key)] as string);
        const vectors = await inner.embed(wanted, call);
        misses += wanted.length;
        const buffer = Buffer.alloc(missing.length * recordBytes);
        missing.forEach((key, j) => {
          const vector = vectors[j] as Float32Array;
          cache.set(key, vector);
          Buffer.from(key, "hex").copy(buffer, j * recordBytes);
          for (let i = 0; i < dimension; i++) buffer.writeFloatLE(vector[i] as number, j * recordBytes + 20 + i * 4);
        });
        appendFileSync(file, buffer);
      }
      return keys.map((key) => cache.get(key) as Float32Array);
    },
  };
}
