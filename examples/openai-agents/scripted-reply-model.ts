// The scripted reply (see ../shared/scripted-reply.ts) as an OpenAI Agents JS `Model`, so the
// example runs offline.
import type { AssistantMessageItem, Model, ModelRequest, StreamEvent } from "@openai/agents";
import { Usage } from "@openai/agents";
import { scriptedReply } from "../shared/scripted-reply.ts";

function messageFor(request: ModelRequest): AssistantMessageItem {
  const text = scriptedReply(request.systemInstructions ?? "");
  return { type: "message", role: "assistant", status: "completed", content: [{ type: "output_text", text }] };
}

export const scriptedReplyModel: Model = {
  async getResponse(request) {
    return { usage: new Usage(), output: [messageFor(request)], responseId: "scripted" };
  },
  async *getStreamedResponse(request): AsyncIterable<StreamEvent> {
    const message = messageFor(request);
    yield { type: "output_text_delta", delta: (message.content[0] as { text: string }).text };
    const usage = { requests: 1, inputTokens: 0, outputTokens: 0, totalTokens: 0 };
    yield { type: "response_done", response: { id: "scripted", usage, output: [message] } };
  },
};
