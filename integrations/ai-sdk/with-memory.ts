import { type LanguageModel, wrapLanguageModel } from "ai";
import { type MemoryMiddlewareOptions, memoryMiddleware } from "./memory-middleware.js";

type WrappableModel = Parameters<typeof wrapLanguageModel>[0]["model"];

/**
 * Wraps an AI SDK language model with memory: the one line.
 *
 * @example
 * const model = withMemory(openai("gpt-5-mini"), { memory });
 * await generateText({ model, prompt, providerOptions: { memory: { userId: "alice", runId: "s-1" } } });
 */
export function withMemory(model: WrappableModel, options: MemoryMiddlewareOptions): Exclude<LanguageModel, string> {
  return wrapLanguageModel({ model, middleware: memoryMiddleware(options) });
}
