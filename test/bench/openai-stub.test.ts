import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOpenAI } from "@ai-sdk/openai";
import { embedMany, generateText, jsonSchema, Output, tool } from "ai";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type OpenAiStub, startOpenAiStub } from "../../bench/support/openai-stub.js";
import { Memory } from "../../src/index.js";
import { deterministicEmbedder } from "../../src/testing/index.js";

const eventsSchema = z.strictObject({
  memory: z.array(z.strictObject({ id: z.string(), event: z.enum(["ADD", "UPDATE", "DELETE", "NONE"]), text: z.string() })),
});

const engramStylePrompt = [
  "CONVERSATION DATE: 2024-03-01 (Friday)",
  "",
  "EXISTING MEMORIES:",
  JSON.stringify({ id: "0", text: "I moved to Berlin last year." }),
  "",
  "NEW MESSAGES:",
  `USER: ${JSON.stringify("I moved to Berlin last year. My sister Anna lives in Lyon! How are you?")}`,
  `ASSISTANT: ${JSON.stringify("Nice to hear that you like Berlin.")}`,
].join("\n");

const mem0StylePrompt = [
  "## Summary\n",
  "## Last k Messages\n",
  "## Recently Extracted Memories\n[]",
  `## Existing Memories\n${JSON.stringify([{ id: "0", text: "I drink my coffee black." }])}`,
  "## New Messages\nuser: I drink my coffee black. I started running every morning.\nassistant: Great habit to keep up.",
  "## Observation Date\n2024-03-01",
  "# Output:",
].join("\n\n");

describe("openai stub", () => {
  let stub: OpenAiStub;
  let openai: ReturnType<typeof createOpenAI>;

  beforeAll(async () => {
    stub = await startOpenAiStub({ dimension: 64, keepRequests: 10 });
    openai = createOpenAI({ baseURL: stub.baseURL, apiKey: "stub" });
  });
  afterAll(() => stub.close());

  it("listens on loopback only", () => {
    expect(stub.baseURL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  });

  it("answers a json_schema chat request with each new user sentence as an ADD, and a repeated one as NONE", async () => {
    stub.resetCounters();
    const { output, usage } = await generateText({
      model: openai.chat("gpt-5-mini"),
      system: "You maintain a long-term memory.",
      prompt: engramStylePrompt,
      output: Output.object({ schema: eventsSchema }),
    });
    expect(output.memory).toEqual([
      { id: "0", event: "NONE", text: "I moved to Berlin last year." },
      { id: "new", event: "ADD", text: "My sister Anna lives in Lyon!" },
    ]);
    const body = stub.requests().at(-1)?.body as { response_format?: { type?: string } } | undefined;
    expect(body?.response_format?.type).toBe("json_schema");
    const counters = stub.counters();
    expect(counters.llmRequests).toBe(1);
    expect(usage.inputTokens).toBe(counters.promptTokens);
    expect(counters.completionTokens).toBe(countTokens(JSON.stringify(output)));
  });

  it("counts prompt tokens as message texts plus framing plus the schema", async () => {
    stub.resetCounters();
    await generateText({ model: openai.chat("gpt-5-mini"), system: "Be brief.", prompt: "I like tea very much." });
    const expected = 3 + (3 + countTokens("Be brief.") + 1) + (3 + countTokens("I like tea very much.") + 1);
    expect(stub.counters().promptTokens).toBe(expected);
  });

  it("answers the Responses API with structured output too", async () => {
    const { output } = await generateText({
      model: openai.responses("gpt-5-mini"),
      prompt: engramStylePrompt,
      output: Output.object({ schema: eventsSchema }),
    });
    expect(output.memory.map((m) => m.event)).toEqual(["NONE", "ADD"]);
  });

  it("answers mem0's additive json_object extraction in its shape, skipping existing memories", async () => {
    const response = await fetch(`${stub.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-5-mini",
        messages: [
          { role: "system", content: 'Output {"memory": [{"id": "0", "text": "...", "attributed_to": "user"}]}' },
          { role: "user", content: mem0StylePrompt },
        ],
        response_format: { type: "json_object" },
      }),
    });
    const body = (await response.json()) as { choices: { message: { content: string } }[]; usage: { prompt_tokens: number } };
    expect(JSON.parse(body.choices[0]?.message.content ?? "")).toEqual({
      memory: [{ id: "0", text: "I started running every morning.", attributed_to: "user" }],
    });
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it("answers a forced tool call with arguments in the tool's schema", async () => {
    const result = await generateText({
      model: openai.chat("gpt-5-mini"),
      prompt: "user: I keep bees in the garden. Do you?",
      tools: {
        extract_facts: tool({
          inputSchema: jsonSchema<{ facts: string[] }>({
            type: "object",
            properties: { facts: { type: "array", items: { type: "string" } } },
          }),
        }),
      },
      toolChoice: { type: "tool", toolName: "extract_facts" },
    });
    expect(result.toolCalls[0]?.input).toEqual({ facts: ["I keep bees in the garden."] });
  });

  it("returns the deterministic feature-hashing vectors, in the requested dimension, one request per batch", async () => {
    stub.resetCounters();
    const texts = ["I like tea", "The cat sleeps on the sofa"];
    const { embeddings } = await embedMany({ model: openai.embedding("text-embedding-3-small"), values: texts });
    const expected = await deterministicEmbedder({ dimension: 64 }).embed(texts);
    expect(embeddings.map((v) => v.length)).toEqual([64, 64]);
    embeddings.forEach((vector, i) => {
      expect(vector.map((x) => Math.round(x * 1e6))).toEqual(Array.from(expected[i] as Float32Array, (x) => Math.round(x * 1e6)));
    });
    const counters = stub.counters();
    expect(counters).toMatchObject({ embeddingRequests: 1, embeddingInputs: 2, llmRequests: 0 });
    expect(counters.embeddingTokens).toBe(countTokens(texts[0] as string) + countTokens(texts[1] as string));
  });

  it("honours the dimensions parameter and rejects malformed bodies with 400", async () => {
    const ok = await fetch(`${stub.baseURL}/embeddings`, {
      method: "POST",
      body: JSON.stringify({ input: "hello there", dimensions: 8, encoding_format: "float" }),
    });
    const embedded = (await ok.json()) as { data: { embedding: number[] }[] };
    expect(embedded.data[0]?.embedding).toHaveLength(8);
    const bad = await fetch(`${stub.baseURL}/embeddings`, { method: "POST", body: JSON.stringify({ input: [] }) });
    expect(bad.status).toBe(400);
  });

  it("waits the configured latency before answering", async () => {
    stub.setLatency({ latencyMs: 120, embeddingLatencyMs: 0 });
    const started = performance.now();
    await generateText({ model: openai.chat("gpt-5-mini"), prompt: "I like tea very much." });
    expect(performance.now() - started).toBeGreaterThanOrEqual(115);
    stub.setLatency({ latencyMs: 0 });
  });

  it("drives Engram's extraction end to end: one model call per add, usage equal to the stub's counts", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "stub-engram-"));
    const memory = new Memory({ dataDir, llm: openai.chat("gpt-5-mini"), embedder: openai.embedding("text-embedding-3-small") });
    try {
      await memory.getAll({ userId: "warm-up" });
      stub.resetCounters();
      const first = await memory.add("I keep bees in the garden. My sister Anna lives in Lyon.", { userId: "ann" });
      expect(first.results.map((r) => [r.event, r.memory])).toEqual([
        ["ADD", "I keep bees in the garden."],
        ["ADD", "My sister Anna lives in Lyon."],
      ]);
      const again = await memory.add("I keep bees in the garden.", { userId: "ann" });
      expect(again.results.map((r) => r.event)).toEqual(["NONE"]);
      const counters = stub.counters();
      expect(counters.llmRequests).toBe(2);
      expect(first.usage.llmCalls + again.usage.llmCalls).toBe(2);
      expect(first.usage.inputTokens + again.usage.inputTokens).toBe(counters.promptTokens);
      expect(first.usage.outputTokens + again.usage.outputTokens).toBe(counters.completionTokens);
    } finally {
      await memory.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("openai stub through the openai client: streaming, tool calls, scripted replies", () => {
  let stub: OpenAiStub;
  let client: OpenAI;
  const weather = { type: "function" as const, function: { name: "weather", parameters: { type: "object", properties: {} } } };
  const responsesWeather = { type: "function" as const, name: "weather", parameters: { type: "object", properties: {} }, strict: false };

  beforeAll(async () => {
    stub = await startOpenAiStub({ keepRequests: 10 });
    client = new OpenAI({ baseURL: stub.baseURL, apiKey: "stub", maxRetries: 0 });
  });
  afterAll(() => stub.close());

  it("streams a chat answer word by word, ending with finish_reason stop", async () => {
    stub.setReply(() => ({ text: "It is sunny in Lisbon." }));
    const stream = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Weather?" }], stream: true });
    const deltas: string[] = [];
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta.content) deltas.push(choice.delta.content);
      if (choice?.finish_reason) finish = choice.finish_reason;
    }
    expect(deltas).toEqual(["It ", "is ", "sunny ", "in ", "Lisbon."]);
    expect(finish).toBe("stop");
  });

  it("drives a chat tool loop: a tool call, then (after the tool's result) a text answer", async () => {
    stub.setReply(undefined);
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "I live in Lisbon. What is the weather?" }];
    const first = await client.chat.completions.create({ model: "m", messages, tools: [weather] });
    const call = first.choices[0]?.message.tool_calls?.[0];
    expect(first.choices[0]?.finish_reason).toBe("tool_calls");
    expect(call?.type === "function" && call.function.name).toBe("weather");
    messages.push(first.choices[0]?.message as OpenAI.ChatCompletionMessageParam, {
      role: "tool",
      tool_call_id: call?.id ?? "",
      content: "sunny",
    });
    const second = await client.chat.completions.create({ model: "m", messages, tools: [weather] });
    expect(second.choices[0]?.finish_reason).toBe("stop");
    expect(second.choices[0]?.message.content).toBe("I live in Lisbon.");
  });

  it("answers the Responses API, not streamed and streamed as named events, with output_text", async () => {
    stub.setReply(({ turns }) => ({ text: `You said: ${turns.at(-1)?.content}` }));
    const response = await client.responses.create({ model: "m", instructions: "Be brief.", input: "hello there" });
    expect(response.output_text).toBe("You said: hello there");
    expect(response.status).toBe("completed");

    const stream = await client.responses.create({ model: "m", input: "hello again", stream: true });
    const types: string[] = [];
    let text = "";
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed") completed = event.response;
    }
    expect(text).toBe("You said: hello again");
    expect(types[0]).toBe("response.created");
    expect(types.at(-1)).toBe("response.completed");
    expect(completed?.output_text ?? completed?.output.length).toBeTruthy();
    // The SDK's own stream helper assembles the same answer from the events.
    const helper = client.responses.stream({ model: "m", input: "third" });
    expect((await helper.finalResponse()).output_text).toBe("You said: third");
  });

  it("chains Responses with previous_response_id: function calls, their outputs, the earlier turns in the conversation", async () => {
    const seen: string[][] = [];
    stub.setReply(({ turns }) => {
      seen.push(turns.map((turn) => `${turn.role}: ${turn.content}`));
      return turns.at(-1)?.role === "tool" ? { text: "Sunny." } : { toolCalls: [{ name: "weather", arguments: '{"city":"Lisbon"}' }] };
    });
    const first = await client.responses.create({ model: "m", instructions: "Be brief.", input: "Weather?", tools: [responsesWeather] });
    const call = first.output.find((item) => item.type === "function_call");
    expect(call?.type === "function_call" && [call.name, call.arguments]).toEqual(["weather", '{"city":"Lisbon"}']);
    const second = await client.responses.create({
      model: "m",
      previous_response_id: first.id,
      input: [{ type: "function_call_output", call_id: call?.type === "function_call" ? call.call_id : "", output: "sunny" }],
      tools: [responsesWeather],
    });
    expect(second.output_text).toBe("Sunny.");
    expect(seen[1]).toEqual(["user: Weather?", 'assistant: weather({"city":"Lisbon"})', "tool: sunny"]);
    await expect(client.responses.create({ model: "m", previous_response_id: "unknown", input: "hi" })).rejects.toThrow(/not found/);
  });

  it("streams Responses function calls as events the SDK's helper assembles", async () => {
    stub.setReply(() => ({ text: "Let me check.", toolCalls: [{ name: "weather", arguments: "{}" }] }));
    const final = await client.responses.stream({ model: "m", input: "Weather?", tools: [responsesWeather] }).finalResponse();
    expect(final.output.map((item) => item.type)).toEqual(["message", "function_call"]);
    expect(final.output_text).toBe("Let me check.");
  });

  it("fails as scripted: an HTTP error, or a stream that breaks after its first chunk", async () => {
    stub.setReply(() => ({ error: "provider failed", status: 400 }));
    await expect(client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] })).rejects.toThrow(
      /provider failed/,
    );
    stub.setReply(() => ({ error: "provider failed", midStream: true }));
    for (const api of ["chat", "responses"] as const) {
      const stream =
        api === "chat"
          ? await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }], stream: true })
          : await client.responses.create({ model: "m", input: "hi", stream: true });
      const read = async () => {
        for await (const _ of stream as AsyncIterable<unknown>) {
        }
      };
      await expect(read(), api).rejects.toThrow(/provider failed/);
    }
  });

  it("streams endlessly until the client aborts", async () => {
    stub.setReply(() => ({ endless: true }));
    for (const api of ["chat", "responses"] as const) {
      const stream =
        api === "chat"
          ? await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }], stream: true })
          : await client.responses.create({ model: "m", input: "hi", stream: true });
      let chunks = 0;
      for await (const _ of stream as AsyncIterable<unknown>) {
        if (++chunks === 20) stream.controller.abort();
      }
      expect(chunks, api).toBeGreaterThanOrEqual(20);
      expect(stream.controller.signal.aborted).toBe(true);
    }
    stub.setReply(undefined);
  });
});
