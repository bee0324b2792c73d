import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { type OpenAiStub, type StubLlmRequest, type StubReply, startOpenAiStub } from "../../bench/support/openai-stub.js";
import { withMemory } from "../../integrations/openai/index.js";
import { ConfigError, type Memory, MissingScopeError, memoryBlockTag } from "../../src/index.js";
import { memoriesClosedAfterEach } from "../support/memories.js";
import { type AdapterDriver, type CallScope, type ModelCall, type ScriptedStep, testAdapterScenarios } from "./adapter-scenarios.js";

// The adapter through the real `openai` client, against the OpenAI-compatible stub on 127.0.0.1.

let stub: OpenAiStub;
beforeAll(async () => {
  stub = await startOpenAiStub();
});
afterAll(() => stub.close());

const model = "stub-model";
const chatWeather: OpenAI.ChatCompletionTool = {
  type: "function",
  function: { name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
};
const responsesWeather: OpenAI.Responses.FunctionTool = {
  type: "function",
  name: "weather",
  parameters: { type: "object", properties: { city: { type: "string" } } },
  strict: false,
};

function stubReply(step: ScriptedStep | undefined): StubReply {
  if (step === undefined) return { error: "no scripted step left", status: 400 };
  if ("error" in step) return { error: step.error, status: 500, midStream: true };
  if ("endless" in step) return { endless: true };
  if ("toolCall" in step) return { text: step.text ?? "", toolCalls: [{ name: "weather", arguments: JSON.stringify(step.toolCall) }] };
  return { text: step.text };
}

/** What the model was sent, in the harness's terms. */
function modelCall({ api, body, stream }: StubLlmRequest): ModelCall {
  if (api === "responses") {
    return {
      instructions: typeof body.instructions === "string" ? body.instructions : "",
      input: JSON.stringify(body.input),
      streamed: stream,
    };
  }
  const messages = body.messages as { role: string; content: unknown }[];
  const isInstructions = (message: { role: string }) => message.role === "system" || message.role === "developer";
  return {
    instructions: messages
      .filter(isInstructions)
      .map((message) => String(message.content))
      .join("\n\n"),
    input: JSON.stringify(messages.filter((message) => !isInstructions(message))),
    streamed: stream,
  };
}

/** A client that talks to the stub and sends each request once (a failed one is not retried). */
const stubClient = () => new OpenAI({ baseURL: stub.baseURL, apiKey: "stub", maxRetries: 0 });

/** The app's own tool loop over Chat Completions, not streamed or streamed; resolves with the final text. */
async function chatTurn(client: () => OpenAI, instructions: string, input: string, stream: boolean, onTool?: () => Promise<void>) {
  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: "system", content: instructions },
    { role: "user", content: input },
  ];
  for (;;) {
    let text = "";
    let finish: string | null = null;
    const calls: OpenAI.ChatCompletionMessageFunctionToolCall[] = [];
    if (stream) {
      const chunks = await client().chat.completions.create({ model, messages, tools: [chatWeather], stream: true });
      for await (const chunk of chunks) {
        const choice = chunk.choices[0];
        text += choice?.delta.content ?? "";
        for (const delta of choice?.delta.tool_calls ?? []) {
          const call = calls[delta.index] ?? { id: "", type: "function", function: { name: "", arguments: "" } };
          calls[delta.index] = call;
          call.id ||= delta.id ?? "";
          call.function.name += delta.function?.name ?? "";
          call.function.arguments += delta.function?.arguments ?? "";
        }
        finish = choice?.finish_reason ?? finish;
      }
    } else {
      const completion = await client().chat.completions.create({ model, messages, tools: [chatWeather] });
      const choice = completion.choices[0];
      text = choice?.message.content ?? "";
      calls.push(...((choice?.message.tool_calls ?? []) as OpenAI.ChatCompletionMessageFunctionToolCall[]));
      finish = choice?.finish_reason ?? null;
    }
    if (finish !== "tool_calls") return text;
    messages.push({ role: "assistant", content: text || null, tool_calls: calls });
    for (const call of calls) {
      await onTool?.();
      messages.push({ role: "tool", tool_call_id: call.id, content: "sunny" });
    }
  }
}

/** The app's own tool loop over the Responses API, chained with previous_response_id; resolves with the final text. */
async function responsesTurn(client: () => OpenAI, instructions: string, input: string, stream: boolean, onTool?: () => Promise<void>) {
  let body: OpenAI.Responses.ResponseCreateParamsNonStreaming = {
    model,
    instructions,
    input: [{ role: "user", content: input }],
    tools: [responsesWeather],
  };
  for (;;) {
    let response: OpenAI.Responses.Response | undefined;
    let text = "";
    if (stream) {
      const events = await client().responses.create({ ...body, stream: true });
      for await (const event of events) {
        if (event.type === "response.output_text.delta") text += event.delta;
        if (event.type === "response.completed") response = event.response;
      }
    } else {
      response = await client().responses.create(body);
      text = response.output_text;
    }
    const calls = (response?.output ?? []).filter((item) => item.type === "function_call");
    if (calls.length === 0) return text;
    const outputs: OpenAI.Responses.ResponseInputItem[] = [];
    for (const call of calls) {
      await onTool?.();
      outputs.push({ type: "function_call_output", call_id: call.call_id, output: "sunny" });
    }
    body = { model, instructions, previous_response_id: response?.id, input: outputs, tools: [responsesWeather] };
  }
}

function openAiSdk(api: "chat" | "responses"): AdapterDriver {
  return {
    name: `OpenAI SDK (withMemory, ${api === "chat" ? "chat.completions.create" : "responses.create"} with stream false / true)`,
    scopeHint: /withScope\(\{ userId: "alice" \}\)/,
    recallsEachStep: true,
    setup({ memory, adapter, instructions, steps, onTool }) {
      const client = withMemory(stubClient(), { memory, ...adapter });
      const calls: ModelCall[] = [];
      let step = 0;
      stub.setReply((request) => {
        calls.push(modelCall(request));
        return stubReply(steps[step++]);
      });
      // A scoped view per request, as an app makes one for each request it serves.
      const scoped = (scope: CallScope | undefined) => () => (scope === undefined ? client : client.withScope(scope));
      const turn = api === "chat" ? chatTurn : responsesTurn;
      return {
        calls: () => calls,
        generate: (input, scope) => turn(scoped(scope), instructions, input, false, onTool),
        stream: (input, scope) => turn(scoped(scope), instructions, input, true, onTool),
        async streamAborted(input, scope) {
          const view = client.withScope(scope);
          if (api === "chat") {
            // The app's own signal.
            const abort = new AbortController();
            const chunks = await view.chat.completions.create(
              { model, messages: [{ role: "user", content: input }], stream: true },
              { signal: abort.signal },
            );
            for await (const _ of chunks) abort.abort();
          } else {
            // The stream's own controller.
            const events = await view.responses.create({ model, instructions, input, stream: true });
            for await (const _ of events) events.controller.abort();
          }
        },
      };
    },
  };
}

testAdapterScenarios(openAiSdk("chat"));
testAdapterScenarios(openAiSdk("responses"));

const newMemory = memoriesClosedAfterEach();

/** Records what the model was sent; answers `text` (or what `answer` says). */
function recordingStub(answer: (request: StubLlmRequest) => StubReply = () => ({ text: "ok" })) {
  const requests: StubLlmRequest[] = [];
  stub.setReply((request) => {
    requests.push(request);
    return answer(request);
  });
  return requests;
}

async function remembered(memory: Memory, scope: { userId: string }) {
  await memory.flush({ timeoutMs: 5000 });
  return (await memory.getAll(scope)).results.map((item) => item.memory).sort();
}

describe("withMemory(client): what only the OpenAI SDK adapter does", () => {
  test("refuses what is not an openai client, and a client wrapped twice", () => {
    const memory = newMemory();
    expect(() => withMemory({} as OpenAI, { memory })).toThrow(ConfigError);
    const client = withMemory(stubClient(), { memory });
    expect(() => withMemory(client, { memory })).toThrow(/memory already/);
    expect(() => withMemory(client.withScope({ userId: "alice" }), { memory })).toThrow(/memory already/);
  });

  test("the wrapped client and its scoped views are clients of the same class; the original client is not changed", async () => {
    const memory = newMemory();
    await memory.add("I like tea", { userId: "alice" });
    const original = stubClient();
    const client = withMemory(original, { memory });
    const view = client.withScope({ userId: "alice" });
    expect(client).toBeInstanceOf(OpenAI);
    expect(view).toBeInstanceOf(OpenAI);
    expect(client).not.toBe(original);
    const requests = recordingStub();
    await original.chat.completions.create({ model, messages: [{ role: "user", content: "What do I like to drink?" }] });
    expect(JSON.stringify(requests[0]?.body)).not.toContain(memoryBlockTag);
    expect(Object.hasOwn(original.chat.completions, "create")).toBe(false);
  });

  test("a request without a scope reaches no server, streamed or not, through the helpers too", async () => {
    const memory = newMemory();
    const client = withMemory(stubClient(), { memory, threshold: 0 });
    const requests = recordingStub();
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "hi" }];
    const isMissingScope = (error: unknown) => MissingScopeError.isInstance(error);
    // The SDK's stream helpers wrap the error in their own, with it as the cause.
    const causedByMissingScope = (error: unknown) => isMissingScope((error as Error).cause);
    await expect(client.chat.completions.create({ model, messages })).rejects.toSatisfy(isMissingScope);
    await expect(client.chat.completions.create({ model, messages, stream: true })).rejects.toSatisfy(isMissingScope);
    await expect(client.responses.create({ model, input: "hi" })).rejects.toSatisfy(isMissingScope);
    await expect(client.chat.completions.stream({ model, messages }).finalChatCompletion()).rejects.toSatisfy(causedByMissingScope);
    await expect(client.responses.stream({ model, input: "hi" }).finalResponse()).rejects.toSatisfy(causedByMissingScope);
    await expect(client.withOptions({ timeout: 1000 }).responses.create({ model, input: "hi" })).rejects.toSatisfy(isMissingScope);
    expect(() => client.withScope({ userId: "" })).toThrow(MissingScopeError);
    const error = await client.responses.create({ model, input: "hi" }).catch((caught: unknown) => caught);
    expect((error as Error).message).toContain('client.withScope({ userId: "alice" }).responses.create(...)');
    expect(requests).toHaveLength(0);
  });

  test("two users on one client, at the same time, each get their own memories and write their own turns", async () => {
    const memory = newMemory();
    await memory.add("I am vegetarian", { userId: "alice" });
    await memory.add("I love sushi", { userId: "bob" });
    const requests = recordingStub(({ body }) => ({
      text: `Noted for ${JSON.stringify(body.messages).includes("vegetarian") ? "a" : "b"}.`,
    }));
    const client = withMemory(stubClient(), { memory, threshold: 0 });
    const ask = (userId: string) =>
      client.withScope({ userId }).chat.completions.create({ model, messages: [{ role: "user", content: "What should I eat tonight?" }] });
    const [alice, bob] = await Promise.all([ask("alice"), ask("bob")]);
    expect([alice.choices[0]?.message.content, bob.choices[0]?.message.content]).toEqual(["Noted for a.", "Noted for b."]);
    const sent = requests.map((request) => JSON.stringify(request.body));
    expect(sent.filter((body) => body.includes("vegetarian"))).toHaveLength(1);
    expect(sent.filter((body) => body.includes("sushi"))).toHaveLength(1);
    expect(sent.some((body) => body.includes("vegetarian") && body.includes("sushi"))).toBe(false);
    expect(await remembered(memory, { userId: "alice" })).toEqual(["I am vegetarian", "Noted for a.", "What should I eat tonight?"]);
    expect(await remembered(memory, { userId: "bob" })).toEqual(["I love sushi", "Noted for b.", "What should I eat tonight?"]);
  });

  test("chat: the block follows the app's leading system and developer messages, as a developer message after a developer one; the app's messages are not changed", async () => {
    const memory = newMemory();
    await memory.add("I like tea", { userId: "alice" });
    const requests = recordingStub();
    const client = withMemory(stubClient(), { memory, threshold: 0 }).withScope({ userId: "alice" });
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: "system", content: "You are helpful." },
      { role: "developer", content: "Answer briefly." },
      { role: "user", content: "What do I like to drink?" },
      { role: "assistant", content: "Let me think." },
      { role: "system", content: "A later note." },
      { role: "user", content: [{ type: "text", text: "What do I like to drink?" }] },
    ];
    const before = JSON.stringify(messages);
    await client.chat.completions.create({ model, messages });
    expect(JSON.stringify(messages)).toBe(before);
    const sent = (requests[0]?.body.messages ?? []) as { role: string; content: string }[];
    expect(sent.map((message) => message.role)).toEqual(["system", "developer", "developer", "user", "assistant", "system", "user"]);
    expect(sent[2]?.content).toMatch(new RegExp(`^<${memoryBlockTag}[\\s\\S]*"I like tea"`));
  });

  test("responses: a replayed tool loop (the whole input each time, no previous_response_id) searches once and writes once", async () => {
    const memory = newMemory();
    await memory.add("I live in Lisbon", { userId: "alice" });
    const search = vi.spyOn(memory, "search");
    const enqueue = vi.spyOn(memory, "enqueue");
    const requests = recordingStub(({ turns }) =>
      turns.at(-1)?.role === "tool" ? { text: "Sunny in Lisbon." } : { toolCalls: [{ name: "weather", arguments: '{"city":"Lisbon"}' }] },
    );
    const client = withMemory(stubClient(), { memory, threshold: 0 }).withScope({ userId: "alice" });
    const input: OpenAI.Responses.ResponseInput = [{ role: "user", content: "What's the weather where I live?" }];
    const first = await client.responses.create({ model, input, tools: [responsesWeather] });
    for (const item of first.output) {
      if (item.type !== "function_call") continue;
      input.push(item, { type: "function_call_output", call_id: item.call_id, output: "sunny" });
    }
    const second = await client.responses.create({ model, input, tools: [responsesWeather] });
    expect(second.output_text).toBe("Sunny in Lisbon.");
    for (const request of requests) expect(request.body.instructions).toContain('"I live in Lisbon"');
    expect(search).toHaveBeenCalledTimes(1);
    await vi.waitFor(() => expect(enqueue).toHaveBeenCalledTimes(1));
    expect(enqueue.mock.calls[0]?.[0]).toEqual([
      { role: "user", content: "What's the weather where I live?" },
      { role: "assistant", content: "Sunny in Lisbon." },
    ]);
  });

  test("passes through: other resources, request options and headers, withOptions (keeping memory and scope), withResponse, asResponse", async () => {
    const memory = newMemory();
    await memory.add("I like tea", { userId: "alice" });
    const headers: (string | null)[] = [];
    const client = withMemory(
      new OpenAI({
        baseURL: stub.baseURL,
        apiKey: "stub",
        maxRetries: 0,
        fetch: (url, init) => {
          headers.push(new Headers(init?.headers).get("x-app"));
          return fetch(url, init);
        },
      }),
      { memory },
    );
    const requests = recordingStub(() => ({ text: "Tea." }));
    const alice = client.withScope({ userId: "alice" });

    const { data: embedded } = await client.embeddings.create({ model: "e", input: "hello there" }).withResponse();
    expect(embedded.data[0]?.embedding.length).toBeGreaterThan(0);

    const tuned = alice.withOptions({ defaultHeaders: { "x-app": "tuned" } });
    const { data, response, request_id } = await tuned.chat.completions
      .create({ model, messages: [{ role: "user", content: "What do I like to drink?" }] }, { headers: { "x-request": "1" } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe("Tea.");
    expect(response.status).toBe(200);
    expect(request_id).toBeNull();
    expect(headers.at(-1)).toBe("tuned");
    expect(JSON.stringify(requests.at(-1)?.body)).toContain("I like tea");

    const raw = await alice.responses.create({ model, input: "What do I like to drink?" }).asResponse();
    expect(((await raw.json()) as { object: string }).object).toBe("response");
    expect(String(requests.at(-1)?.body.instructions)).toContain('"I like tea"');
    // withResponse wrote its turn; asResponse handed the body over unread, so its turn is not written.
    expect(await remembered(memory, { userId: "alice" })).toEqual(["I like tea", "Tea.", "What do I like to drink?"]);
  });

  test("the SDK's helpers go through the memory: chat stream(), runTools(), responses.stream(), responses.parse()", async () => {
    const memory = newMemory();
    await memory.add("I live in Lisbon", { userId: "alice" });
    const search = vi.spyOn(memory, "search");
    const enqueue = vi.spyOn(memory, "enqueue");
    const requests = recordingStub(({ turns }) => {
      const last = turns.at(-1);
      if (last?.role === "tool") return { text: "Sunny in Lisbon." };
      if (last?.content.startsWith("Loop")) return { toolCalls: [{ name: "weather", arguments: '{"city":"Lisbon"}' }] };
      return { text: `Answer to ${last?.content}` };
    });
    const alice = withMemory(stubClient(), { memory, threshold: 0 }).withScope({ userId: "alice" });

    const streamed = await alice.chat.completions
      .stream({ model, messages: [{ role: "user", content: "Where do I live?" }] })
      .finalContent();
    expect(streamed).toBe("Answer to Where do I live?");
    const runner = alice.chat.completions.runTools({
      model,
      messages: [{ role: "user", content: "Loop: what's the weather where I live?" }],
      tools: [
        {
          type: "function",
          function: {
            name: "weather",
            description: "Weather",
            parameters: { type: "object", properties: {} },
            function: () => "sunny",
            parse: JSON.parse,
          },
        },
      ],
    });
    expect(await runner.finalContent()).toBe("Sunny in Lisbon.");
    expect(await alice.responses.stream({ model, input: "Streamed: where do I live?" }).finalResponse()).toMatchObject({
      output_text: "Answer to Streamed: where do I live?",
    });
    expect((await alice.responses.parse({ model, input: "Parsed: where do I live?" })).output_text).toBe(
      "Answer to Parsed: where do I live?",
    );

    for (const request of requests) expect(JSON.stringify(request.body)).toContain("I live in Lisbon");
    // One search per user turn: the two steps of runTools share theirs.
    expect(search).toHaveBeenCalledTimes(4);
    await vi.waitFor(() => expect(enqueue).toHaveBeenCalledTimes(4));
    expect(enqueue.mock.calls.map(([messages]) => (messages as { content: string }[])[1]?.content)).toEqual([
      "Answer to Where do I live?",
      "Sunny in Lisbon.",
      "Answer to Streamed: where do I live?",
      "Answer to Parsed: where do I live?",
    ]);
  });

  test("a stream is written only once read to its end: a tee'd stream once, a stream left early never", async () => {
    const memory = newMemory();
    const enqueue = vi.spyOn(memory, "enqueue");
    recordingStub(() => ({ text: "One two three four." }));
    const alice = withMemory(stubClient(), { memory, threshold: 0 }).withScope({ userId: "alice" });
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Count to four." }];

    const left = await alice.chat.completions.create({ model, messages, stream: true });
    for await (const _ of left) break;

    const [first, second] = (
      await alice.chat.completions.create({ model, messages: [{ role: "user", content: "Count again." }], stream: true })
    ).tee();
    let text = "";
    for await (const chunk of first) text += chunk.choices[0]?.delta.content ?? "";
    expect(enqueue).toHaveBeenCalledTimes(1);
    for await (const _ of second) {
    }
    expect(text).toBe("One two three four.");
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(enqueue).toHaveBeenCalledTimes(1);
    expect(enqueue.mock.calls[0]?.[0]).toEqual([
      { role: "user", content: "Count again." },
      { role: "assistant", content: "One two three four." },
    ]);
  });
});
