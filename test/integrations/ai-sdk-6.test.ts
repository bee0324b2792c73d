import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeAll, describe, expect, test } from "vitest";
import { memoryMiddleware, memoryScope } from "../../integrations/ai-sdk/index.js";
import { Memory, MissingScopeError } from "../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../../src/testing/index.js";
import { reply, textStream, usage } from "./scripted-ai-sdk-model.js";

// engram/ai-sdk against a real AI SDK 6 (language model specification v3), installed in a folder
// of its own (test/fixtures/ai-sdk-6) so that the repository's ai@7 cannot stand in for it.
const fixture = join(import.meta.dirname, "..", "fixtures", "ai-sdk-6");

interface AiSdk6 {
  generateText(options: Record<string, unknown>): Promise<{ text: string }>;
  streamText(options: Record<string, unknown>): { text: PromiseLike<string>; consumeStream(): Promise<void> };
  wrapLanguageModel(options: { model: unknown; middleware: unknown }): unknown;
}
interface MockModel {
  specificationVersion: string;
  doGenerateCalls: { prompt: { role: string; content: unknown }[]; providerOptions?: unknown }[];
  doStreamCalls: unknown[];
}
let ai: AiSdk6 & { version: string };
let MockLanguageModelV3: new (options: Record<string, unknown>) => MockModel;
let convertArrayToReadableStream: (parts: unknown[]) => ReadableStream;

beforeAll(async () => {
  if (!existsSync(join(fixture, "node_modules", "ai", "package.json"))) {
    execFileSync("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: fixture, stdio: "ignore" });
  }
  const require = createRequire(join(fixture, "package.json"));
  const version = (require("ai/package.json") as { version: string }).version;
  ai = { ...((await import(pathToFileURL(require.resolve("ai")).href)) as AiSdk6), version };
  ({ MockLanguageModelV3, convertArrayToReadableStream } = await import(pathToFileURL(require.resolve("ai/test")).href));
}, 180_000);

const memories: Memory[] = [];
function newMemory() {
  const memory = new Memory({ embedder: deterministicEmbedder(), vectorStore: inMemoryStore(), historyStore: inMemoryHistory() });
  memories.push(memory);
  return memory;
}
afterEach(async () => {
  await Promise.all(memories.splice(0).map((m) => m.close()));
});

const systemTexts = (model: MockModel) =>
  (model.doGenerateCalls[0]?.prompt ?? []).filter((m) => m.role === "system").map((m) => m.content as string);

describe("memoryMiddleware on AI SDK 6 (ai@6, specification v3)", () => {
  test("the fixture really is AI SDK 6 with v3 models", () => {
    expect(ai.version).toMatch(/^6\./);
    expect(new MockLanguageModelV3({}).specificationVersion).toBe("v3");
  });

  test("generateText: recalls into one system block, takes providerOptions.memory out, and remembers the turn", async () => {
    const memory = newMemory();
    await memory.add("I prefer Postgres for everything except analytics", { userId: "alice" });
    const model = new MockLanguageModelV3({ doGenerate: async () => reply("Use Postgres.") });
    const { text } = await ai.generateText({
      model: ai.wrapLanguageModel({ model, middleware: memoryMiddleware({ memory, threshold: 0 }) }),
      system: "You are a helpful assistant.",
      prompt: "Which database should I use for my app?",
      providerOptions: { ...memoryScope({ userId: "alice" }), openai: { user: "x" } },
    });
    expect(text).toBe("Use Postgres.");
    expect(model.doGenerateCalls[0]?.providerOptions).toEqual({ openai: { user: "x" } });
    expect(systemTexts(model)).toHaveLength(2);
    expect(systemTexts(model)[1]).toContain('"I prefer Postgres for everything except analytics"');
    expect((await memory.flush()).processed).toBe(1);
    const { results } = await memory.getAll({ userId: "alice" });
    expect(results.map((m) => m.memory).join("\n")).toContain("Which database should I use for my app?");
  });

  test("streamText: the stream passes through and the turn is remembered once it is drained", async () => {
    const memory = newMemory();
    const model = new MockLanguageModelV3({
      doStream: async () => ({ stream: convertArrayToReadableStream(textStream("Tea, no sugar.")) }),
    });
    const result = ai.streamText({
      model: ai.wrapLanguageModel({ model, middleware: memoryMiddleware({ memory, threshold: 0 }) }),
      prompt: "How do I take my tea? Without sugar.",
      providerOptions: memoryScope({ userId: "bob" }),
    });
    await result.consumeStream();
    expect(await result.text).toBe("Tea, no sugar.");
    expect((await memory.flush()).processed).toBe(1);
  });

  test("a call without a scope fails with MissingScopeError naming providerOptions.memory; the model is not called", async () => {
    const memory = newMemory();
    const model = new MockLanguageModelV3({ doGenerate: async () => ({ ...reply("Hi."), usage }) });
    const error = await ai
      .generateText({
        model: ai.wrapLanguageModel({ model, middleware: memoryMiddleware({ memory, threshold: 0 }) }),
        prompt: "Hi",
        maxRetries: 0,
      })
      .catch((e: unknown) => e);
    expect(MissingScopeError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain("providerOptions.memory");
    expect(model.doGenerateCalls).toHaveLength(0);
  });
});
