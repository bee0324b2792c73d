import type { LanguageModelV4 } from "@ai-sdk/provider";
import { ConfigError } from "../errors.js";

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

export type AiSdk = typeof import("ai");

/** Loads the AI SDK on first use, so that `engram` itself never loads it. */
export async function loadAiSdk(): Promise<AiSdk> {
  try {
    return await import("ai");
  } catch (cause) {
    throw new ConfigError({ message: "Extraction with an llm needs the `ai` package: npm install ai@^7", cause });
  }
}
