// The real model of the examples: OpenAI through the AI SDK when OPENAI_API_KEY is set, or any
// OpenAI-compatible server (Ollama, vLLM, LM Studio) at OPENAI_BASE_URL. OPENAI_MODEL picks the model.
import type { LanguageModelV4 } from "@ai-sdk/provider";

export const online = Boolean(process.env.OPENAI_API_KEY || process.env.OPENAI_BASE_URL);
export const modelName = process.env.OPENAI_MODEL ?? "gpt-5-mini";

/** The AI SDK model to use when online, else undefined. */
export async function openAiModel(): Promise<LanguageModelV4 | undefined> {
  if (!online) return undefined;
  const { createOpenAI } = await import("@ai-sdk/openai");
  const openai = createOpenAI({ apiKey: process.env.OPENAI_API_KEY ?? "not-needed", baseURL: process.env.OPENAI_BASE_URL });
  // OpenAI-compatible servers speak Chat Completions; OpenAI itself gets the Responses API.
  return process.env.OPENAI_BASE_URL ? openai.chat(modelName) : openai(modelName);
}
