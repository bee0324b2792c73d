import type { LanguageModelV4CallOptions, LanguageModelV4GenerateResult, LanguageModelV4StreamPart } from "@ai-sdk/provider";
import { convertArrayToReadableStream, MockLanguageModelV4 } from "ai/test";
import type { ModelCall, ScriptedStep } from "./adapter-scenarios.js";
import type { ToolOutcome } from "./tool-scenarios.js";

export const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 5, text: 5, reasoning: undefined },
};

export function reply(text: string): LanguageModelV4GenerateResult {
  return { content: [{ type: "text", text }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] };
}

export const textStream = (text: string): LanguageModelV4StreamPart[] => [
  { type: "stream-start", warnings: [] },
  { type: "text-start", id: "t" },
  ...text.split(" ").map((word, i) => ({ type: "text-delta" as const, id: "t", delta: i === 0 ? word : ` ${word}` })),
  { type: "text-end", id: "t" },
  { type: "finish", finishReason: { unified: "stop", raw: "stop" }, usage },
];

export const systemTexts = (call: LanguageModelV4CallOptions) =>
  call.prompt.filter((m) => m.role === "system").map((m) => m.content as string);

let toolCalls = 0;

function generated(step: ScriptedStep): LanguageModelV4GenerateResult {
  if ("error" in step) throw new Error(step.error);
  if ("endless" in step) throw new Error("an endless step can only be streamed");
  if ("toolCall" in step) {
    return {
      content: [
        ...(step.text === undefined ? [] : [{ type: "text" as const, text: step.text }]),
        { type: "tool-call", toolCallId: `call-${++toolCalls}`, toolName: "weather", input: JSON.stringify(step.toolCall) },
      ],
      finishReason: { unified: "tool-calls", raw: "tool_calls" },
      usage,
      warnings: [],
    };
  }
  return reply(step.text);
}

function streamed(step: ScriptedStep): ReadableStream<LanguageModelV4StreamPart> {
  if ("error" in step) {
    return convertArrayToReadableStream<LanguageModelV4StreamPart>([
      { type: "stream-start", warnings: [] },
      { type: "text-start", id: "t" },
      { type: "text-delta", id: "t", delta: "partial" },
      { type: "error", error: new Error(step.error) },
    ]);
  }
  if ("endless" in step) {
    let started = false;
    return new ReadableStream<LanguageModelV4StreamPart>({
      async pull(controller) {
        if (!started) {
          started = true;
          controller.enqueue({ type: "stream-start", warnings: [] });
          controller.enqueue({ type: "text-start", id: "t" });
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
        controller.enqueue({ type: "text-delta", id: "t", delta: "more " });
      },
    });
  }
  if ("toolCall" in step) {
    return convertArrayToReadableStream<LanguageModelV4StreamPart>([
      { type: "stream-start", warnings: [] },
      ...(step.text === undefined ? [] : textStream(step.text).slice(1, -1)),
      { type: "tool-call", toolCallId: `call-${++toolCalls}`, toolName: "weather", input: JSON.stringify(step.toolCall) },
      { type: "finish", finishReason: { unified: "tool-calls", raw: "tool_calls" }, usage },
    ]);
  }
  return convertArrayToReadableStream(textStream(step.text));
}

/** An AI SDK mock model that answers with `steps`, one per call, generated or streamed; `calls` lists what it received. */
export function scriptedAiSdkModel(steps: readonly ScriptedStep[]) {
  const queue = [...steps];
  const received: ModelCall[] = [];
  const next = (options: LanguageModelV4CallOptions, streamed: boolean) => {
    received.push({
      instructions: systemTexts(options).join("\n\n"),
      input: JSON.stringify(options.prompt.filter((message) => message.role !== "system")),
      streamed,
    });
    const step = queue.shift();
    if (!step) throw new Error("The scripted model was called more often than scripted");
    return step;
  };
  const model = new MockLanguageModelV4({
    doGenerate: async (options) => generated(next(options, false)),
    doStream: async (options) => ({ stream: streamed(next(options, true)) }),
  });
  return { model, calls: () => [...received] };
}

/** A mock model that calls `toolName` with `args` once, then answers `answer`. */
export function toolCallingModel(toolName: string, args: Record<string, unknown>, answer = "done") {
  const seen: { tools: ToolOutcome["tools"] } = { tools: {} };
  let step = 0;
  const model = new MockLanguageModelV4({
    doGenerate: async (options) => {
      if (step++ === 0) {
        for (const tool of options.tools ?? []) {
          if (tool.type === "function") seen.tools[tool.name] = { description: tool.description ?? "", schema: tool.inputSchema };
        }
        return {
          content: [{ type: "tool-call", toolCallId: "call-1", toolName, input: JSON.stringify(args) }],
          finishReason: { unified: "tool-calls", raw: "tool_calls" },
          usage,
          warnings: [],
        };
      }
      return reply(answer);
    },
  });
  return { model, seen };
}
