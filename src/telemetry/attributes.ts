import type { AiSdkLanguageModel } from "../extraction/language-model.js";
import type { AddResult, Usage } from "../types.js";
import type { Attributes } from "./tracing.js";

/**
 * What a call cost and changed, as span attributes: tokens under the names the AI SDK's
 * OpenTelemetry integration uses (`gen_ai.usage.*`), the rest under `engram.*`.
 */
export function usageAttributes({ usage, results }: { usage: Usage; results?: AddResult["results"] }): Attributes {
  const attributes: Attributes = {
    "gen_ai.usage.input_tokens": usage.inputTokens,
    "gen_ai.usage.output_tokens": usage.outputTokens,
    "engram.llm.calls": usage.llmCalls,
    "engram.embedding.calls": usage.embeddingCalls,
  };
  if (results) {
    for (const event of ["ADD", "UPDATE", "DELETE", "NONE"] as const) {
      attributes[`engram.add.${event.toLowerCase()}`] = results.filter((result) => result.event === event).length;
    }
  }
  return attributes;
}

/** The model a call uses, under the OpenTelemetry GenAI names the AI SDK uses too. */
export function modelAttributes(model: AiSdkLanguageModel): Attributes {
  return typeof model === "string"
    ? { "gen_ai.request.model": model }
    : { "gen_ai.request.model": model.modelId, "gen_ai.provider.name": model.provider };
}
