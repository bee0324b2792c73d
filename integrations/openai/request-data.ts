import { isArray, ownValue } from "../../src/internal/plain-data.js";

/**
 * Reads a request body the way the client sends it: own properties only (the client serialises
 * the body with JSON.stringify, which sends nothing inherited). A getter that throws ends as an
 * InvalidInputError naming the field.
 */
export class RequestData {
  constructor(readonly call: string) {}

  field(value: unknown, key: string, path = key): unknown {
    return value != null && typeof value === "object" ? ownValue(value, key, this.call, path) : undefined;
  }

  list(value: unknown, key: string): unknown[] | undefined {
    const list = this.field(value, key);
    return isArray(list, this.call, key) ? list : undefined;
  }

  string(value: unknown, key: string, path = key): string | undefined {
    const field = this.field(value, key, path);
    return typeof field === "string" ? field : undefined;
  }

  /** The text of a message's content: a string, or its text parts (`types`) joined by line breaks. */
  text(content: unknown, types: ReadonlySet<string>, path: string): string {
    if (typeof content === "string") return content;
    if (!isArray(content, this.call, path)) return "";
    return content
      .map((part, index) => (types.has(this.string(part, "type", `${path}[${index}].type`) ?? "") ? this.string(part, "text", path) : ""))
      .filter((text): text is string => text !== undefined && text !== "")
      .join("\n");
  }
}

/** A message of a conversation, reduced to what the memory reads: its role and its text. */
export interface TextMessage {
  role: string;
  text: string;
}

/** The latest user message's text, and the conversation up to it (what a turn's recall key is made of). */
export function userTurn(messages: readonly TextMessage[]): { user: string | undefined; conversation: [string, string][] } {
  const lastUser = messages.findLastIndex((message) => message.role === "user");
  return {
    user: lastUser === -1 ? undefined : messages[lastUser]?.text,
    conversation: messages.slice(0, lastUser + 1).map((message) => [message.role, message.text]),
  };
}
