// A stand-in for a real LLM so the examples run offline: it answers from the memory block it was
// given, and says plainly that it is scripted. Set OPENAI_API_KEY to use a real model instead.
import type { LanguageModelV4, LanguageModelV4CallOptions, LanguageModelV4StreamPart } from "@ai-sdk/provider";

/** The scripted answer to a call whose system prompt (instructions) is `system`. */
export function scriptedReply(system: string): string {
  const remembered = [...system.matchAll(/^- \[[^\]]*\] (".*")$/gm)]
    .map((match) => JSON.parse(match[1] as string) as string)
    // The scripted replies of earlier sessions are remembered too; they say nothing about the user.
    .filter((memory) => !memory.startsWith("(scripted reply)"));
  if (remembered.length === 0) return "(scripted reply) Noted.";
  return `(scripted reply) From what you told me before: ${remembered.slice(0, 2).join(" / ")}`;
}

function systemOf(params: LanguageModelV4CallOptions): string {
  return params.prompt.flatMap((message) => (message.role === "system" ? [message.content] : [])).join("\n");
}

/** The scripted reply as an AI SDK language model (for the AI SDK and Mastra examples). */
export function scriptedReplyModel(): LanguageModelV4 {
  const usage = {
    inputTokens: { total: 0, noCache: 0, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: 0, text: 0, reasoning: undefined },
  };
  return {
    specificationVersion: "v4",
    provider: "examples",
    modelId: "scripted-reply",
    supportedUrls: {},
    async doGenerate(params) {
      const text = scriptedReply(systemOf(params));
      return { content: [{ type: "text", text }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] };
    },
    async doStream(params) {
      const text = scriptedReply(systemOf(params));
      const parts: LanguageModelV4StreamPart[] = [
        { type: "stream-start", warnings: [] },
        { type: "text-start", id: "0" },
        { type: "text-delta", id: "0", delta: text },
        { type: "text-end", id: "0" },
        { type: "finish", finishReason: { unified: "stop", raw: "stop" }, usage },
      ];
      return {
        stream: new ReadableStream({
          start(controller) {
            for (const part of parts) controller.enqueue(part);
            controller.close();
          },
        }),
      };
    },
  };
}
