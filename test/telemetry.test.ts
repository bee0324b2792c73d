import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OpenTelemetry } from "@ai-sdk/otel";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { generateText, registerTelemetry } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { afterAll, afterEach, beforeAll, describe, expect, inject, test } from "vitest";
import { withMemory } from "../integrations/ai-sdk/index.js";
import { postgresHistory } from "../src/history/postgres-history.js";
import { Memory, type MemoryOptions } from "../src/index.js";
import { pgvectorStore } from "../src/stores/pgvector-store.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";
import { scriptedLanguageModel } from "../src/testing/scripted-language-model.js";
import { reply } from "./integrations/scripted-ai-sdk-model.js";
import { createDatabase, withClient } from "./support/databases.js";

const exporter = new InMemorySpanExporter();
const contextManager = new AsyncLocalStorageContextManager();
beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  registerTelemetry(new OpenTelemetry());
});
afterEach(() => exporter.reset());
afterAll(() => {
  trace.disable();
  context.disable();
});

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
const sqliteMemory = (options: Partial<MemoryOptions> = {}) => {
  const dataDir = mkdtempSync(join(tmpdir(), "engram-telemetry-"));
  dirs.push(dataDir);
  return new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { pollIntervalMs: 10 }, ...options });
};

const SECRET = "user-8c1f-secret";
const spans = () => exporter.getFinishedSpans();
const named = (name: string | RegExp) => spans().filter((span) => (typeof name === "string" ? span.name === name : name.test(span.name)));
const parentOf = (span: ReadableSpan) => spans().find((other) => other.spanContext().spanId === span.parentSpanContext?.spanId);
const ancestors = (span: ReadableSpan) => {
  const chain: string[] = [];
  for (let at = parentOf(span); at; at = parentOf(at)) chain.push(at.name);
  return chain;
};
const engramSpans = () => spans().filter((span) => span.name.startsWith("engram."));

describe("OpenTelemetry spans", () => {
  test("memory spans of a withMemory call are children of the AI SDK's model call span, and carry no scope id by default", async () => {
    const memory = sqliteMemory();
    await memory.add("I prefer Postgres for everything except analytics", { userId: SECRET });
    exporter.reset();
    const model = new MockLanguageModelV4({ doGenerate: reply("Use Postgres.") });
    await generateText({
      model: withMemory(model, { memory, threshold: 0, recallTimeoutMs: 60_000 }),
      prompt: "Which database should I use?",
      providerOptions: { memory: { userId: SECRET } },
      experimental_telemetry: { isEnabled: true, functionId: "chat-reply" },
    });
    await memory.flush();

    const [search] = named("engram.search");
    expect(
      search,
      spans()
        .map((span) => span.name)
        .join(", "),
    ).toBeDefined();
    const chain = ancestors(search as ReadableSpan);
    // engram.search → the model call ("chat <model>") → the step → the generateText call.
    expect(chain[0]).toMatch(/^chat /);
    expect(chain.at(-1)).toMatch(/^invoke_agent /);
    expect(search?.spanContext().traceId).toBe(parentOf(search as ReadableSpan)?.spanContext().traceId);
    expect(search?.attributes).toMatchObject({ "ai.operationId": "engram.search", "engram.search.results": 1 });
    // Store calls made by the search nest under it.
    const storeCalls = named(/^engram\.store\./).filter((span) => ancestors(span).includes("engram.search"));
    expect(storeCalls.length).toBeGreaterThan(0);
    expect(named("engram.write_behind.turn")).toHaveLength(1);
    expect(named("engram.add")).toHaveLength(0);

    // Not in any span of the trace: the AI SDK's own spans never see providerOptions.memory either.
    for (const span of spans()) expect(JSON.stringify(span.attributes), span.name).not.toContain(SECRET);
    for (const span of engramSpans()) expect(Object.keys(span.attributes).some((key) => key.startsWith("engram.scope."))).toBe(false);
    await memory.close();
  });

  test("scope ids are recorded only when asked: hashed, or as they are", async () => {
    const hashed = sqliteMemory({ telemetry: { scopeIds: "hash" } });
    await hashed.search("anything", { userId: SECRET, threshold: 0 });
    const [search] = named("engram.search");
    expect(search?.attributes["engram.scope.user_id_hash"]).toMatch(/^[0-9a-f]{16}$/);
    expect(JSON.stringify(search?.attributes)).not.toContain(SECRET);
    await hashed.close();
    exporter.reset();
    const plain = sqliteMemory({ telemetry: { scopeIds: "include" } });
    await plain.search("anything", { userId: SECRET, threshold: 0 });
    expect(named("engram.search")[0]?.attributes["engram.scope.user_id"]).toBe(SECRET);
    await plain.close();
  });

  test("add with extraction: engram.extract under engram.add, with the model and its token usage", async () => {
    const llm = scriptedLanguageModel([
      { json: { memory: [{ id: "new", event: "ADD", text: "Likes tea" }] }, usage: { inputTokens: 120, outputTokens: 15 } },
    ]);
    const memory = sqliteMemory({ llm });
    await memory.add("I like tea", { userId: SECRET });
    const [add] = named("engram.add");
    const [extract] = named("engram.extract");
    expect(ancestors(extract as ReadableSpan)[0]).toBe("engram.add");
    expect(extract?.attributes).toMatchObject({
      "gen_ai.request.model": "scripted",
      "gen_ai.usage.input_tokens": 120,
      "gen_ai.usage.output_tokens": 15,
      "engram.llm.calls": 1,
    });
    expect(add?.attributes).toMatchObject({ "engram.add.add": 1, "gen_ai.usage.input_tokens": 120 });
    // The store write of the add is a child of it.
    expect(named("engram.store.write").some((span) => ancestors(span).includes("engram.add"))).toBe(true);
    await memory.close();
  });

  test("a failed call ends its span with an error status", async () => {
    const llm = scriptedLanguageModel(() => new Error("provider down"));
    const memory = sqliteMemory({ llm, llmRetry: { retries: 0 } });
    await expect(memory.add("I like tea", { userId: SECRET })).rejects.toThrow();
    expect(named("engram.extract")[0]?.status.code).toBe(2);
    expect(named("engram.add")[0]?.status.code).toBe(2);
    await memory.close();
  });

  test("telemetry: { enabled: false } makes no span", async () => {
    const memory = sqliteMemory({ telemetry: { enabled: false } });
    await memory.add("I like tea", { userId: SECRET });
    await memory.search("tea", { userId: SECRET });
    expect(engramSpans()).toEqual([]);
    await memory.close();
  });

  test("on pgvector and PostgreSQL history: store calls of both are spans, with counts", async () => {
    const vectorUrl = inject("pgliteUrl");
    const table = `telemetry_${process.pid}`;
    const memory = new Memory({
      embedder: deterministicEmbedder(),
      vectorStore: pgvectorStore({ connectionString: vectorUrl, table }),
      historyStore: postgresHistory({ connectionString: await createDatabase(inject("postgresUrl"), "telemetry") }),
      writeBehind: { enabled: false },
    });
    try {
      await memory.add("I like tea", { userId: SECRET });
      const writes = named("engram.store.write");
      expect(writes.find((span) => span.attributes["engram.store.kind"] === "vector")?.attributes["engram.store.upserts"]).toBe(1);
      expect(named("engram.store.append").find((span) => span.attributes["engram.store.kind"] === "history")).toBeDefined();
      await memory.search("tea", { userId: SECRET, threshold: 0 });
      expect(named("engram.search")[0]?.attributes["engram.search.results"]).toBe(1);
      for (const span of engramSpans()) expect(JSON.stringify(span.attributes)).not.toContain(SECRET);
    } finally {
      await memory.close();
      await withClient(vectorUrl, (client) => client.query(`DROP TABLE IF EXISTS ${table}, ${table}_meta`));
    }
  });
});
