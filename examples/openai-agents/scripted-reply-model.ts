// The scripted reply (see ../shared/scripted-reply.ts) as an OpenAI Agents JS `Model`, so the
// example runs offline.
import type { AssistantMessageItem, FunctionCallItem, Model, ModelRequest, StreamEvent } from "@openai/agents";
import { Usage } from "@openai/agents";
import { scriptedReply, scriptedToolCall } from "../shared/scripted-reply.ts";

function messageFor(request: ModelRequest): AssistantMessageItem {
  const items = typeof request.input === "string" ? [] : request.input;
  const afterTool = items.at(-1)?.type === "function_call_result";
  const text = scriptedReply(request.systemInstructions ?? "", { afterTool });
  return { type: "message", role: "assistant", status: "completed", content: [{ type: "output_text", text }] };
}

/** The tool call to make for the latest user message (none once a tool has answered). */
function toolCallFor(request: ModelRequest): FunctionCallItem | undefined {
  const items = typeof request.input === "string" ? [{ role: "user", content: request.input }] : request.input;
  const last = items.at(-1) as { role?: string; content?: unknown } | undefined;
  if (last?.role !== "user") return undefined;
  const text = typeof last.content === "string" ? last.content : "";
  const call = scriptedToolCall(
    text,
    request.tools.map((tool) => ("name" in tool ? tool.name : "")),
  );
  if (!call) return undefined;
  return { type: "function_call", callId: "call-1", name: call.name, arguments: JSON.stringify(call.args), status: "completed" };
}

export const scriptedReplyModel: Model = {
  async getResponse(request) {
    const call = toolCallFor(request);
    return { usage: new Usage(), output: [call ?? messageFor(request)], responseId: "scripted" };
  },
  async *getStreamedResponse(request): AsyncIterable<StreamEvent> {
    const message = messageFor(request);
    yield { type: "output_text_delta", delta: (message.content[0] as { text: string }).text };
    const usage = { requests: 1, inputTokens: 0, outputTokens: 0, totalTokens: 0 };
    yield { type: "response_done", response: { id: "scripted", usage, output: [message] } };
  },
};
