import type { LanguageModelV4 } from "@ai-sdk/provider";

/**
 * An AI SDK language model: a provider model object (`openai("gpt-5-mini")`, Anthropic, Ollama or
 * LM Studio through `@ai-sdk/openai-compatible`, …) of any supported specification version, or a
 * gateway model id string.
 */
export type AiSdkLanguageModel = string | (Pick<LanguageModelV4, "provider" | "modelId" | "doGenerate"> & { specificationVersion: string });

export function isAiSdkLanguageModel(value: unknown): value is AiSdkLanguageModel {
  return (
    (typeof value === "string" && value.trim() !== "") ||
    (value != null && typeof value === "object" && typeof (value as { doGenerate?: unknown }).doGenerate === "function")
  );
}
