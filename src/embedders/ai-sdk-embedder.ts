import type { EmbeddingModelV4 } from "@ai-sdk/provider";
import { loadAiSdk } from "../internal/ai-sdk.js";
import type { Embedder } from "./embedder.js";

/** An AI SDK embedding model: a model object of any supported specification version, or a gateway model id string. */
export type AiSdkEmbeddingModel = string | (Pick<EmbeddingModelV4, "provider" | "modelId" | "doEmbed"> & { specificationVersion: string });

export interface AiSdkEmbedderOptions {
  /** Vector length, when known; otherwise learned from the first call. */
  dimension?: number;
  /**
   * Retries of the AI SDK itself on transient errors. A `Memory` already retries every embedder
   * call (its `retry` option): more here would multiply the attempts. @default 0
   */
  maxRetries?: number;
}

export function isAiSdkEmbeddingModel(value: unknown): value is AiSdkEmbeddingModel {
  return (
    typeof value === "string" ||
    (value != null && typeof value === "object" && typeof (value as { doEmbed?: unknown }).doEmbed === "function")
  );
}

/**
 * Adapts an AI SDK embedding model (`openai.embedding("text-embedding-3-small")`, Ollama, …) to
 * Engram's `Embedder`, through the AI SDK's `embedMany` (which splits large batches for the
 * provider). Requires the `ai` package.
 *
 * @example
 * new Memory({ embedder: aiSdkEmbedder(openai.embedding("text-embedding-3-small")) })
 */
export function aiSdkEmbedder(model: AiSdkEmbeddingModel, { dimension, maxRetries = 0 }: AiSdkEmbedderOptions = {}): Embedder {
  const modelId = typeof model === "string" ? model : `${model.provider}:${model.modelId}`;
  return {
    dimension,
    modelId,
    async embed(texts, { signal } = {}) {
      const ai = await loadAiSdk("An AI SDK embedding model");
      const { embeddings } = await ai.embedMany({
        model: model as Parameters<typeof ai.embedMany>[0]["model"],
        values: texts,
        maxRetries,
        abortSignal: signal,
      });
      return embeddings.map((vector) => Float32Array.from(vector));
    },
  };
}
