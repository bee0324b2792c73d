// A stand-in for a real LLM so the demo runs offline: it answers from the memory block it was
// given, and says plainly that it is scripted. Set OPENAI_API_KEY to use a real model instead.
import type { LanguageModelV4, LanguageModelV4CallOptions } from "@ai-sdk/provider";

function reply(params: LanguageModelV4CallOptions): string {
  const system = params.prompt.flatMap((message) => (message.role === "system" ? [message.content] : [])).join("\n");
  const remembered = [...system.matchAll(/^- \[[^\]]*\] (".*")$/gm)].map((match) => JSON.parse(match[1] as string) as string);
  if (remembered.length === 0) return "(scripted reply) Noted.";
  return `(scripted reply) From what you told me before: ${remembered.slice(0, 2).join(" / ")}`;
}

export function scriptedReplyModel(): LanguageModelV4 {
  const usage = {
    inputTokens: { total: 0, noCache: 0, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: 0, text: 0, reasoning: undefined },
  };
  return {
    specificationVersion: "v4",
    provider: "demo",
    modelId: "scripted-reply",
    supportedUrls: {},
    async doGenerate(params) {
      return { content: [{ type: "text", text: reply(params) }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] };
    },
    async doStream() {
      throw new Error("The scripted demo model only generates");
    },
  };
}
