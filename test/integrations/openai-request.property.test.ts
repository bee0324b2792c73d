import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { chatApi } from "../../integrations/openai/chat-api.js";
import { responsesApi } from "../../integrations/openai/responses-api.js";

// How engram/openai changes a request body, over arbitrary conversations: one block, in its place,
// and nothing of the app's changed.

const block = "<engram-memories>block</engram-memories>";
const roles = ["system", "developer", "user", "assistant", "tool"] as const;
const instructionRoles = new Set(["system", "developer"]);
const text = fc.string({ maxLength: 20 });
const content = fc.oneof(text, fc.array(fc.record({ type: fc.constant("text"), text }), { maxLength: 3 }));
const messages = fc.array(fc.record({ role: fc.constantFrom(...roles), content }), { maxLength: 8 });

describe("engram/openai request bodies (property)", () => {
  test("chat: exactly one block, right after the leading system / developer messages; the app's messages unchanged and in order", () => {
    fc.assert(
      fc.property(messages, (sent) => {
        const body = { model: "m", messages: sent };
        const before = JSON.stringify(body);
        const injected = chatApi.inject(body, block) as { messages: { role: string; content: unknown }[] };
        expect(JSON.stringify(body)).toBe(before);
        const at = injected.messages.findIndex((message) => message.content === block);
        expect(injected.messages.filter((message) => message.content === block)).toHaveLength(1);
        expect(injected.messages.toSpliced(at, 1)).toEqual(sent);
        expect(sent.slice(0, at).every((message) => instructionRoles.has(message.role))).toBe(true);
        expect(instructionRoles.has(sent[at]?.role ?? "end")).toBe(false);
        expect(injected.messages[at]?.role).toBe(at > 0 && sent[at - 1]?.role === "developer" ? "developer" : "system");
      }),
      { numRuns: 300 },
    );
  });

  test("responses: the block ends the instructions, after the app's own; input untouched", () => {
    const api = responsesApi();
    fc.assert(
      fc.property(fc.option(text, { nil: undefined }), messages, (instructions, input) => {
        const body = { model: "m", input, ...(instructions === undefined ? {} : { instructions }) };
        const before = JSON.stringify(body);
        const injected = api.inject(body, block) as { instructions: string; input: unknown };
        expect(JSON.stringify(body)).toBe(before);
        expect(injected.input).toBe(input);
        expect(injected.instructions.endsWith(block)).toBe(true);
        expect(injected.instructions.startsWith(instructions ?? "")).toBe(true);
        expect(injected.instructions.split(block)).toHaveLength(2);
      }),
      { numRuns: 300 },
    );
  });
});
