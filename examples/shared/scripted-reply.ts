// A stand-in for a real LLM so the examples run offline: it answers from the memory block it was
// given, and says plainly that it is scripted. Set OPENAI_API_KEY to use a real model instead.
import type { LanguageModelV4, LanguageModelV4CallOptions, LanguageModelV4StreamPart } from "@ai-sdk/provider";

/**
 * The tool call the scripted model makes for a user message, when it has the tool: "Call me X"
 * becomes a profile edit through `update_profile` (the scope comes from the call, never from here).
 */
export function scriptedToolCall(
  userText: string,
  toolNames: readonly string[],
): { name: string; args: Record<string, unknown> } | undefined {
  const renamed = /^Call me (\p{L}+)/u.exec(userText);
  if (!renamed || !toolNames.includes("update_profile")) return undefined;
  return { name: "update_profile", args: { changes: [{ field: "name", value: renamed[1] }], text: null } };
}

/** The scripted answer to a call whose system prompt (instructions) is `system`. */
export function scriptedReply(system: string, { afterTool = false }: { afterTool?: boolean } = {}): string {
  if (afterTool) return "(scripted reply) Done, I have updated your profile.";
  const name = /^- "name: (.*)"$/m.exec(system)?.[1];
  const hello = name ? `Hello ${name}. ` : "";
  const remembered = [...system.matchAll(/^- \[[^\]]*\] (".*")$/gm)]
    .map((match) => JSON.parse(match[1] as string) as string)
    // The scripted replies of earlier sessions are remembered too; they say nothing about the user.
    .filter((memory) => !memory.startsWith("(scripted reply)"));
  if (remembered.length === 0) return `(scripted reply) ${hello}Noted.`;
  return `(scripted reply) ${hello}From what you told me before: ${remembered.slice(0, 2).join(" / ")}`;
}

function systemOf(params: LanguageModelV4CallOptions): string {
  return params.prompt.flatMap((message) => (message.role === "system" ? [message.content] : [])).join("\n");
}

/** The tool call to make now (none once the tools have answered), else the reply text. */
function answer(params: LanguageModelV4CallOptions): { toolCall?: { name: string; args: Record<string, unknown> }; text: string } {
  const last = params.prompt.at(-1);
  if (last?.role === "tool") return { text: scriptedReply(systemOf(params), { afterTool: true }) };
  const user = last?.role === "user" ? last.content.map((part) => (part.type === "text" ? part.text : "")).join("") : "";
  const toolNames = (params.tools ?? []).map((tool) => tool.name);
  const toolCall = scriptedToolCall(user, toolNames);
  return toolCall ? { toolCall, text: "" } : { text: scriptedReply(systemOf(params)) };
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
      const { toolCall, text } = answer(params);
      if (toolCall) {
        const call = { type: "tool-call" as const, toolCallId: "call-1", toolName: toolCall.name, input: JSON.stringify(toolCall.args) };
        return { content: [call], finishReason: { unified: "tool-calls", raw: "tool_calls" }, usage, warnings: [] };
      }
      return { content: [{ type: "text", text }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] };
    },
    async doStream(params) {
      const { toolCall, text } = answer(params);
      const parts: LanguageModelV4StreamPart[] = toolCall
        ? [
            { type: "stream-start", warnings: [] },
            { type: "tool-call", toolCallId: "call-1", toolName: toolCall.name, input: JSON.stringify(toolCall.args) },
            { type: "finish", finishReason: { unified: "tool-calls", raw: "tool_calls" }, usage },
          ]
        : [
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
