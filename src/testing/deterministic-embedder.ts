import type { Embedder } from "../embedders/embedder.js";
import { tokenize } from "../retrieval/keywords.js";

export interface DeterministicEmbedderOptions {
  /** @default 256 */
  dimension?: number;
}

export interface DeterministicEmbedder extends Embedder {
  readonly dimension: number;
  /** Every `embed` call received, in order (one array of texts per call). */
  readonly calls: string[][];
}

function hash(text: string, seed: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A fast, deterministic embedder for tests: hashes words and word bigrams into a fixed number of
 * dimensions (signed feature hashing), so texts sharing words get similar vectors. No model, no I/O.
 * It records its calls so tests can count embedding requests.
 */
export function deterministicEmbedder({ dimension = 256 }: DeterministicEmbedderOptions = {}): DeterministicEmbedder {
  const calls: string[][] = [];
  const embedOne = (text: string) => {
    const vector = new Float32Array(dimension);
    const words = tokenize(text);
    const features = [...words, ...words.slice(1).map((word, i) => `${words[i]} ${word}`)];
    for (const feature of features) {
      const h = hash(feature, 0);
      vector[h % dimension] = (vector[h % dimension] as number) + (hash(feature, 1) & 1 ? 1 : -1);
    }
    if (features.length === 0) vector[0] = 1;
    let norm = 0;
    for (const value of vector) norm += value * value;
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < dimension; i++) vector[i] = (vector[i] as number) / norm;
    return vector;
  };
  return {
    dimension,
    modelId: `deterministic-${dimension}`,
    calls,
    async embed(texts) {
      calls.push([...texts]);
      return texts.map(embedOne);
    },
  };
}
