import { hasMemoryBlock, type Scope } from "../../src/index.js";
import { turnKey } from "../shared/turn.js";
import type { ModelApi, ModelRequest, Outcome, ReplyWatcher, Turn } from "./model-api.js";
import { RequestData, type TextMessage, userTurn } from "./request-data.js";

const call = "responses.create()";
const data = new RequestData(call);
const textParts = new Set(["input_text", "output_text"]);
/** Output items the app answers in its next request (hosted tools run inside the same response). */
const appActions = new Set([
  "function_call",
  "custom_tool_call",
  "computer_call",
  "local_shell_call",
  "shell_call",
  "apply_patch_call",
  "mcp_approval_request",
]);
/** Statuses of a response whose text is its answer (`incomplete`: cut short at the token limit). */
const answered = new Set(["completed", "incomplete"]);

function messagesOf(input: unknown): TextMessage[] {
  if (typeof input === "string") return [{ role: "user", text: input }];
  const items = Array.isArray(input) ? input : [];
  return items.flatMap((item, index) => {
    const type = data.field(item, "type", `input[${index}].type`);
    const role = data.string(item, "role", `input[${index}].role`);
    if ((type !== undefined && type !== "message") || role === undefined) return [];
    return [{ role, text: data.text(data.field(item, "content", `input[${index}].content`), textParts, `input[${index}].content`) }];
  });
}

function conversationIdOf(body: object): string | undefined {
  const conversation = data.field(body, "conversation");
  return typeof conversation === "string" ? conversation : data.string(conversation, "id", "conversation.id");
}

function outcomeOf(response: unknown): Outcome {
  const output = data.list(response, "output") ?? [];
  const types = output.map((item) => data.field(item, "type"));
  if (types.some((type) => typeof type === "string" && appActions.has(type))) {
    return { kind: "tools", responseId: data.string(response, "id") };
  }
  if (!answered.has(data.string(response, "status") ?? "")) return { kind: "none" };
  const text = output
    .filter((item) => data.field(item, "type") === "message")
    .map((item) => data.text(data.field(item, "content"), textParts, "output.content"))
    .join("");
  return { kind: "final", text: text.trim() };
}

/** Turns waiting for their tool results, by the response that asked for them or the conversation they are in. Bounded. */
class WaitingTurns {
  readonly #turns = new Map<string, { turn: Turn; expires: number }>();
  constructor(
    private readonly ttlMs = 30 * 60_000,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string): Turn | undefined {
    const entry = this.#turns.get(key);
    return entry && entry.expires > Date.now() ? entry.turn : undefined;
  }

  set(key: string, turn: Turn): void {
    this.#turns.delete(key);
    this.#turns.set(key, { turn, expires: Date.now() + this.ttlMs });
    while (this.#turns.size > this.maxEntries) this.#turns.delete(this.#turns.keys().next().value as string);
  }

  delete(key: string): void {
    this.#turns.delete(key);
  }
}

const byResponse = (scope: Scope, id: string) => turnKey(scope, ["openai-response", id]);
const byConversation = (scope: Scope, id: string) => turnKey(scope, ["openai-conversation", id]);

interface ResponsesRequest extends ModelRequest {
  conversationId: string | undefined;
}

/**
 * The Responses API: the block is appended to `instructions` (never carried over to a response
 * that chains on with `previous_response_id`, so each request gets its own). A request that only
 * sends tool results (chained by `previous_response_id` or `conversation`) belongs to the turn
 * that asked for them: it shares that turn's search, and its final answer is written with that
 * turn's user message.
 */
export function responsesApi(): ModelApi {
  const waiting = new WaitingTurns();
  return {
    call,

    read(body: object, scope: Scope): ResponsesRequest {
      const previous = data.string(body, "previous_response_id");
      const conversationId = conversationIdOf(body);
      const { user, conversation } = userTurn(messagesOf(data.field(body, "input")));
      let resumed: Turn | undefined;
      if (user === undefined && previous) resumed = waiting.get(byResponse(scope, previous));
      if (user === undefined && conversationId) resumed ??= waiting.get(byConversation(scope, conversationId));
      const chain = [previous ?? null, conversationId ?? null];
      return {
        turn: resumed ?? { scope, user, key: turnKey(scope, ["openai-responses", chain, conversation]) },
        injected: hasMemoryBlock(data.string(body, "instructions") ?? ""),
        stream: data.field(body, "stream") === true,
        conversationId,
      };
    },

    inject(body: object, block: string): object {
      const instructions = data.string(body, "instructions");
      return { ...body, instructions: instructions ? `${instructions}\n\n${block}` : block };
    },

    outcome: outcomeOf,

    watcher(): ReplyWatcher {
      let outcome: Outcome = { kind: "none" };
      return {
        see(event) {
          const type = data.field(event, "type");
          if (type === "response.completed" || type === "response.incomplete") outcome = outcomeOf(data.field(event, "response"));
          else if (type === "response.failed" || type === "error") outcome = { kind: "none" };
        },
        outcome: () => outcome,
      };
    },

    settled(request: ModelRequest, outcome: Outcome): void {
      const { turn, conversationId } = request as ResponsesRequest;
      const conversationKey = conversationId === undefined ? undefined : byConversation(turn.scope, conversationId);
      if (outcome.kind !== "tools") {
        if (conversationKey && outcome.kind === "final") waiting.delete(conversationKey);
        return;
      }
      if (outcome.responseId) waiting.set(byResponse(turn.scope, outcome.responseId), turn);
      if (conversationKey) waiting.set(conversationKey, turn);
    },
  };
}
