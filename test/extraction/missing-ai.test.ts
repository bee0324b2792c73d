import { expect, test, vi } from "vitest";
import { ConfigError } from "../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore, scriptedLanguageModel } from "../../src/testing/index.js";

// `ai` is an optional peer dependency: a Memory with an llm but without the package says what to install.
vi.doMock("ai", () => {
  throw new Error("Cannot find package 'ai'");
});

test("an llm without the ai package installed is a ConfigError naming the install command", async () => {
  const { Memory } = await import("../../src/memory.js");
  const memory = new Memory({
    llm: scriptedLanguageModel([]),
    embedder: deterministicEmbedder(),
    vectorStore: inMemoryStore(),
    historyStore: inMemoryHistory(),
    writeBehind: { enabled: false },
  });
  const failure = await memory.add("I like tea", { userId: "alice" }).catch((error: unknown) => error);
  expect(failure).toBeInstanceOf(ConfigError);
  expect((failure as ConfigError).message).toContain("npm install ai@^7");
  expect(await memory.getAll({ userId: "alice" })).toEqual({ results: [] });
  await memory.close();
});
