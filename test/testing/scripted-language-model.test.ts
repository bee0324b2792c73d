import { generateText } from "ai";
import { describe, expect, test } from "vitest";
import { scriptedLanguageModel } from "../../src/testing/index.js";

describe("scriptedLanguageModel", () => {
  test("replies in order through the AI SDK and records every prompt", async () => {
    const model = scriptedLanguageModel(["first", { json: { memory: [] } }, { text: "third", usage: { inputTokens: 7, outputTokens: 3 } }]);
    const a = await generateText({ model, instructions: "Be brief.", prompt: "one" });
    const b = await generateText({ model, prompt: "two" });
    const c = await generateText({
      model,
      messages: [
        { role: "user", content: "three" },
        { role: "assistant", content: "ok" },
        { role: "user", content: "four" },
      ],
    });

    expect([a.text, b.text, c.text]).toEqual(["first", '{"memory":[]}', "third"]);
    expect(c.usage).toMatchObject({ inputTokens: 7, outputTokens: 3 });
    expect(a.usage.inputTokens).toBe(Math.ceil("Be brief.\n\none".length / 4));
    expect(model.prompts.map((prompt) => prompt.text)).toEqual(["Be brief.\n\none", "two", "three\n\nok\n\nfour"]);
    expect(model.prompts[0]).toEqual({ system: "Be brief.", messages: [{ role: "user", content: "one" }], text: "Be brief.\n\none" });
    expect(model.prompts[2]?.messages.map((message) => message.role)).toEqual(["user", "assistant", "user"]);
    await expect(generateText({ model, prompt: "five", maxRetries: 0 })).rejects.toThrow("no reply scripted for call 4 (the script has 3)");
    expect(model.prompts).toHaveLength(4);
  });

  test("a function scripts replies from the prompt; an Error fails the call", async () => {
    const model = scriptedLanguageModel((prompt, call) =>
      prompt.text.includes("fail") ? new Error("boom") : `echo ${call}: ${prompt.text}`,
    );
    expect((await generateText({ model, prompt: "hello" })).text).toBe("echo 0: hello");
    await expect(generateText({ model, prompt: "please fail", maxRetries: 0 })).rejects.toThrow("boom");
    expect(model.prompts).toHaveLength(2);
  });

  test("functions inside the list see their own call's prompt", async () => {
    const model = scriptedLanguageModel(["fixed", (prompt) => prompt.text.toUpperCase()]);
    await generateText({ model, prompt: "a" });
    expect((await generateText({ model, prompt: "shout" })).text).toBe("SHOUT");
  });

  test("a reply that never comes is cut by the call's timeout", async () => {
    const model = scriptedLanguageModel(() => new Promise(() => {}));
    await expect(generateText({ model, prompt: "wait", maxRetries: 0, timeout: 30 })).rejects.toMatchObject({ name: "TimeoutError" });
  });

  test("a reply of the wrong shape is a clear error", async () => {
    const model = scriptedLanguageModel([{ memory: [] } as never]);
    await expect(generateText({ model, prompt: "x", maxRetries: 0 })).rejects.toThrow(
      "reply 1 is not a string, { text }, { json } or an Error",
    );
  });
});
