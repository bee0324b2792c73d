import { hasMemoryBlock, type Scope } from "../../src/index.js";
import { turnKey } from "../shared/turn.js";
import type { ModelApi, ModelRequest, Outcome, ReplyWatcher } from "./model-api.js";
import { RequestData, type TextMessage, userTurn } from "./request-data.js";

const call = "chat.completions.create()";
const data = new RequestData(call);
const textParts = new Set(["text"]);
const instructionRoles = new Set(["system", "developer"]);
/** Ends of a reply after which the app runs tools and calls again: the turn is not over. */
const toolEnds = new Set(["tool_calls", "function_call"]);

function messagesOf(body: object): TextMessage[] {
  return (data.list(body, "messages") ?? []).map((message, index) => ({
    role: data.string(message, "role", `messages[${index}].role`) ?? "",
    text: data.text(data.field(message, "content", `messages[${index}].content`), textParts, `messages[${index}].content`),
  }));
}

function outcomeOf(finishReason: unknown, text: string, calledTools: boolean): Outcome {
  if (typeof finishReason !== "string") return { kind: "none" };
  if (toolEnds.has(finishReason) || calledTools) return { kind: "tools", responseId: undefined };
  return { kind: "final", text };
}

/**
 * Chat Completions: the block is ONE system message after the app's leading system / developer
 * messages (a developer message when the app writes its instructions as one); the reply of the
 * first choice is the one remembered.
 */
export const chatApi: ModelApi = {
  call,

  read(body: object, scope: Scope): ModelRequest {
    const messages = messagesOf(body);
    const { user, conversation } = userTurn(messages);
    return {
      turn: { scope, user, key: turnKey(scope, conversation) },
      injected: messages.some((message) => instructionRoles.has(message.role) && hasMemoryBlock(message.text)),
      stream: data.field(body, "stream") === true,
    };
  },

  inject(body: object, block: string): object {
    const messages = data.list(body, "messages") ?? [];
    const roles = messagesOf(body).map((message) => message.role);
    const firstOther = roles.findIndex((role) => !instructionRoles.has(role));
    const at = firstOther === -1 ? roles.length : firstOther;
    const role = at > 0 && roles[at - 1] === "developer" ? "developer" : "system";
    return { ...body, messages: [...messages.slice(0, at), { role, content: block }, ...messages.slice(at)] };
  },

  outcome(reply: unknown): Outcome {
    const choice = (data.list(reply, "choices") ?? [])[0];
    const message = data.field(choice, "message");
    const content = data.field(message, "content");
    const toolCalls = data.list(message, "tool_calls") ?? [];
    return outcomeOf(data.field(choice, "finish_reason"), typeof content === "string" ? content.trim() : "", toolCalls.length > 0);
  },

  watcher(): ReplyWatcher {
    let text = "";
    let finishReason: unknown;
    let calledTools = false;
    return {
      see(chunk) {
        for (const choice of data.list(chunk, "choices") ?? []) {
          if (data.field(choice, "index") !== 0) continue;
          const delta = data.field(choice, "delta");
          const content = data.field(delta, "content");
          if (typeof content === "string") text += content;
          if ((data.list(delta, "tool_calls") ?? []).length > 0) calledTools = true;
          finishReason = data.field(choice, "finish_reason") ?? finishReason;
        }
      },
      outcome: () => outcomeOf(finishReason, text.trim(), calledTools),
    };
  },
};
