// A deterministic OpenAI-compatible server for benchmarks and tests, on loopback only. It answers
// `/v1/chat/completions`, `/v1/responses` (both streamed as server-sent events when asked, tool
// calls included, and `previous_response_id` chains) and `/v1/embeddings` the way the memory
// libraries under test need: every user sentence of the new messages becomes a fact, in the JSON
// shape the caller's schema or prompt asks for; the answer and judge prompts of `bench:answer`
// get deterministic replies (see `benchAnswerFor`). A `reply` function scripts other answers (text,
// tool calls, failures, endless streams). It waits a fixed latency before each answer and counts
// requests and prompt / completion tokens with a real tokenizer (o200k).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import { keywordTerms } from "../../src/store-kit/index.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";

export interface OpenAiStubOptions {
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** Fixed delay before every chat / responses answer. @default 0 */
  latencyMs?: number;
  /** Fixed delay before every embeddings answer. @default latencyMs */
  embeddingLatencyMs?: number;
  /** Vector length when a request does not ask for `dimensions`. @default 256 */
  dimension?: number;
  /** Keep the last this many request bodies, for inspection. @default 0 */
  keepRequests?: number;
  /** Scripts the answers to chat / responses requests; `undefined` from it means the default answer. */
  reply?: StubReplier;
}

/** A chat completions or responses request, as the `reply` function sees it. */
export interface StubLlmRequest {
  api: "chat" | "responses";
  /** The conversation: system / developer messages (responses: `instructions` first), user and assistant turns, tool results (role "tool"), and the turns of the `previous_response_id` chain before them. */
  turns: ChatTurn[];
  stream: boolean;
  /** The request body as sent. */
  body: Record<string, unknown>;
}

/**
 * A scripted answer:
 * - `text`, with `toolCalls` (function calls, arguments a JSON string) after it when given;
 * - `error`: the request fails with this HTTP status and message (a stream fails after its first chunk instead, when `midStream`);
 * - `endless`: a stream of text that goes on until the client goes away.
 */
export type StubReply =
  | { text?: string; toolCalls?: { name: string; arguments: string }[] }
  | { error: string; status?: number; midStream?: boolean }
  | { endless: true };

export type StubReplier = (request: StubLlmRequest) => StubReply | undefined;

export interface StubCounters {
  /** Chat completions and responses requests. */
  llmRequests: number;
  promptTokens: number;
  completionTokens: number;
  embeddingRequests: number;
  /** Texts embedded (one request may carry many). */
  embeddingInputs: number;
  embeddingTokens: number;
  /** Requests answered with an error (bad body, unknown path). */
  errors: number;
}

export interface RecordedRequest {
  path: string;
  body: unknown;
}

export interface OpenAiStub {
  /** Base URL to give an OpenAI client, e.g. `http://127.0.0.1:43121/v1`. */
  readonly baseURL: string;
  counters(): StubCounters;
  resetCounters(): void;
  setLatency(latency: { latencyMs?: number; embeddingLatencyMs?: number }): void;
  /** The last `keepRequests` request bodies, oldest first. */
  requests(): RecordedRequest[];
  /** Replaces the `reply` function (undefined: default answers only). */
  setReply(reply: StubReplier | undefined): void;
  close(): Promise<void>;
}

export type Role = "system" | "developer" | "user" | "assistant" | "tool";
export interface ChatTurn {
  role: Role;
  content: string;
}

/** What the caller asked the answer to look like. */
type AnswerFormat =
  | { kind: "text" }
  | { kind: "json_object" }
  | { kind: "json_schema"; schema: JsonSchema }
  | { kind: "tool"; name: string; schema: JsonSchema };

type JsonSchema = { type?: unknown; properties?: Record<string, JsonSchema>; items?: JsonSchema; [key: string]: unknown };

/** The JSON shapes memory libraries ask for. */
type FactShape =
  | "events" // { memory: [{ id, event, text }] }: Engram, mem0's older update-memory call
  | "additive" // { memory: [{ id, text, attributed_to }] }: mem0 3.x additive extraction
  | "facts"; // { facts: [...] }: mem0's older fact extraction

class BadRequest extends Error {}

/** Counters at zero: a stub's after start or reset, or a sum to add to. */
export const emptyCounters = (): StubCounters => ({
  llmRequests: 0,
  promptTokens: 0,
  completionTokens: 0,
  embeddingRequests: 0,
  embeddingInputs: 0,
  embeddingTokens: 0,
  errors: 0,
});

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve());

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127."));
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) =>
        part && typeof part === "object" && typeof (part as { text?: unknown }).text === "string" ? (part as { text: string }).text : "",
      )
      .join("");
  }
  if (content == null) return "";
  return JSON.stringify(content);
}

// ── fact derivation ──────────────────────────────────────────────────────────────────────────

/**
 * The sentences that become facts: each sentence of a user message, without questions and
 * without fragments under three words. Deterministic, so both systems get the same facts.
 */
export function userFacts(messages: readonly ChatTurn[]): string[] {
  const facts: string[] = [];
  for (const message of messages) {
    if (message.role !== "user") continue;
    for (const raw of message.content.split(/(?<=[.!?])\s+|\n+/)) {
      const sentence = raw.trim();
      if (sentence.endsWith("?") || sentence.split(/\s+/).filter(Boolean).length < 3) continue;
      if (!facts.includes(sentence)) facts.push(sentence);
    }
  }
  return facts.slice(0, 20);
}

interface Conversation {
  /** The new messages the caller wants facts from. */
  messages: ChatTurn[];
  /** Memories shown to the model, with the ids the caller gave them. */
  existing: { id: string; text: string }[];
}

const roleNames: Record<string, Role> = { user: "user", assistant: "assistant", system: "system", human: "user", ai: "assistant" };

function section(text: string, heading: RegExp, end: RegExp): string | undefined {
  const start = text.search(heading);
  if (start === -1) return undefined;
  const body = text.slice(start).replace(heading, "");
  const stop = body.search(end);
  return (stop === -1 ? body : body.slice(0, stop)).trim();
}

/** Lines `role: text` (mem0) or `ROLE: "json string"` (Engram) as chat turns. */
function roleLines(block: string): ChatTurn[] {
  const turns: ChatTurn[] = [];
  for (const line of block.split("\n")) {
    const match = /^\s*([A-Za-z]+):\s?(.*)$/.exec(line);
    const role = match ? roleNames[(match[1] as string).toLowerCase()] : undefined;
    if (!match || !role) {
      const last = turns.at(-1);
      if (last && line.trim()) last.content += `\n${line}`;
      continue;
    }
    let content = match[2] as string;
    if (content.startsWith('"')) {
      try {
        const parsed = JSON.parse(content);
        if (typeof parsed === "string") content = parsed;
      } catch {}
    }
    turns.push({ role, content });
  }
  return turns;
}

function parseJsonArray(text: string | undefined): { id: string; text: string }[] {
  if (!text) return [];
  const start = text.indexOf("[");
  const end = text.lastIndexOf("]");
  if (start === -1 || end < start) return [];
  try {
    const value = JSON.parse(text.slice(start, end + 1));
    return Array.isArray(value)
      ? value.filter((m) => m && typeof m === "object").map((m) => ({ id: String(m.id), text: String(m.text ?? m.memory ?? "") }))
      : [];
  } catch {
    return [];
  }
}

/** Finds the new messages and the existing memories in the caller's prompt, whatever its layout. */
export function readConversation(turns: readonly ChatTurn[]): Conversation {
  const prompt = turns
    .filter((t) => t.role !== "system" && t.role !== "developer")
    .map((t) => t.content)
    .join("\n");
  // Engram: "EXISTING MEMORIES:" one JSON object per line, then "NEW MESSAGES:".
  const engramNew = section(prompt, /NEW MESSAGES:\s*\n/, /\n\s*\n[A-Z][A-Z ]+:/);
  if (engramNew !== undefined) {
    const existing = (section(prompt, /EXISTING MEMORIES:\s*\n/, /\n\s*\n/) ?? "")
      .split("\n")
      .flatMap((line) => parseJsonArray(`[${line.trim()}]`));
    return { messages: roleLines(engramNew), existing };
  }
  // mem0 3.x: "## Existing Memories" (a JSON array) and "## New Messages".
  const mem0New = section(prompt, /## New Messages\s*\n/, /\n\s*\n## /);
  if (mem0New !== undefined) {
    return { messages: roleLines(mem0New), existing: parseJsonArray(section(prompt, /## Existing Memories\s*\n/, /\n\s*\n## /)) };
  }
  // Anything else: the caller's user messages, or role-prefixed lines inside them.
  const users = turns.filter((t) => t.role === "user");
  const last = users.at(-1)?.content ?? "";
  const prefixed = roleLines(last).filter((t) => t.role === "user");
  return { messages: prefixed.length > 0 ? prefixed : users.slice(-1), existing: [] };
}

function shapeOf(format: AnswerFormat, prompt: string): FactShape | undefined {
  if (format.kind === "json_schema" || format.kind === "tool") {
    const properties = format.schema.properties ?? {};
    if (properties.facts) return "facts";
    const item = properties.memory?.items?.properties ?? {};
    if (item.event) return "events";
    if (properties.memory) return "additive";
    return undefined;
  }
  if (/\battributed_to\b/.test(prompt)) return "additive";
  if (/"facts"\s*:/.test(prompt)) return "facts";
  if (/"event"\s*:|\bevent\b[^\n]*\bADD\b/.test(prompt)) return "events";
  if (/"memory"\s*:/.test(prompt)) return "additive";
  return undefined;
}

const normalise = (text: string) => text.toLowerCase().replace(/\s+/g, " ").trim();

// ── answer-accuracy prompts ──────────────────────────────────────────────────────────────────

/** The memory texts of an Engram memory block (`- [date] "text"` lines), in rank order. */
function blockMemories(turns: readonly ChatTurn[]): string[] {
  const memories: string[] = [];
  for (const turn of turns) {
    for (const line of turn.content.split("\n")) {
      const quoted = /^- \[[^\]]*\] (".*")$/.exec(line)?.[1];
      if (quoted === undefined) continue;
      try {
        memories.push(String(JSON.parse(quoted)));
      } catch {}
    }
  }
  return memories;
}

const shared = (a: string, b: string) => {
  const terms = new Set(keywordTerms(a));
  return keywordTerms(b).filter((term) => terms.has(term)).length;
};

/**
 * The stub's reply to the prompts of `npm run bench:answer`, deterministic, so that an offline run
 * checks the bench's path and cost, never answer quality:
 * - a judge prompt (lines "Gold answer: …" and "Generated answer: …"): CORRECT when the generated
 *   answer shares a keyword with the gold one, WRONG otherwise;
 * - an answer prompt (the last user message is "Question: …"): the memory of the block that shares
 *   the most keywords with the question (the first on a tie), or "Not mentioned." when none does.
 * Undefined for any other prompt.
 */
export function benchAnswerFor(turns: readonly ChatTurn[]): string | undefined {
  const last = turns.filter((t) => t.role === "user").at(-1)?.content ?? "";
  const gold = /^Gold answer: (.*)$/m.exec(last)?.[1];
  const generated = /^Generated answer: (.*)$/m.exec(last)?.[1];
  if (gold !== undefined && generated !== undefined) {
    return shared(gold, generated) > 0
      ? "The answer names what the gold answer names.\nCORRECT"
      : "The answer shares nothing with the gold answer.\nWRONG";
  }
  const question = /^Question: (.+)$/.exec(last.trim())?.[1];
  if (question === undefined) return undefined;
  let best: { text: string; overlap: number } = { text: "Not mentioned.", overlap: 0 };
  for (const text of blockMemories(turns)) {
    const overlap = shared(question, text);
    if (overlap > best.overlap) best = { text, overlap };
  }
  return best.text;
}

/** The answer's text: JSON in the asked shape, or the facts as lines when no shape is asked. */
export function answerFor(turns: readonly ChatTurn[], format: AnswerFormat): string {
  if (format.kind === "text") {
    const benchAnswer = benchAnswerFor(turns);
    if (benchAnswer !== undefined) return benchAnswer;
  }
  const conversation = readConversation(turns);
  const facts = userFacts(conversation.messages);
  const prompt = turns.map((t) => t.content).join("\n");
  const shape = shapeOf(format, prompt);
  const known = new Map(conversation.existing.map((m) => [normalise(m.text), m.id]));
  switch (shape) {
    case "facts":
      return JSON.stringify({ facts });
    case "events":
      return JSON.stringify({
        memory: facts.map((text) => {
          const id = known.get(normalise(text));
          return id === undefined ? { id: "new", event: "ADD", text } : { id, event: "NONE", text };
        }),
      });
    case "additive":
      return JSON.stringify({
        memory: facts
          .filter((text) => !known.has(normalise(text)))
          .map((text, index) => ({ id: String(index), text, attributed_to: "user" })),
      });
    default:
      return format.kind === "text" ? facts.join("\n") : JSON.stringify({ facts });
  }
}

// ── token accounting ─────────────────────────────────────────────────────────────────────────

/**
 * Prompt tokens the way OpenAI bills chat models: every message's text plus 3 tokens of framing,
 * 3 tokens priming the reply, plus the response schema or tool definitions, which the provider
 * puts in the prompt too.
 */
function promptTokens(turns: readonly ChatTurn[], extra: unknown): number {
  let tokens = 3;
  for (const turn of turns) tokens += 3 + countTokens(turn.content) + 1;
  if (extra !== undefined) tokens += countTokens(JSON.stringify(extra));
  return tokens;
}

// ── request parsing ──────────────────────────────────────────────────────────────────────────

interface ParsedLlmRequest {
  turns: ChatTurn[];
  format: AnswerFormat;
  /** Schema or tools, counted as prompt tokens. */
  extra: unknown;
  model: string;
  stream: boolean;
}

function toolFormat(tools: unknown, toolChoice: unknown, responsesApi: boolean): AnswerFormat | undefined {
  if (!Array.isArray(tools) || tools.length === 0 || toolChoice === "none") return undefined;
  const functions = tools
    .filter((tool) => tool && typeof tool === "object" && (tool as { type?: unknown }).type === "function")
    .map((tool) => {
      const definition = responsesApi ? tool : (tool as { function?: unknown }).function;
      const { name, parameters } = (definition ?? {}) as { name?: unknown; parameters?: unknown };
      return { name: String(name), schema: (parameters ?? {}) as JsonSchema };
    });
  const forced =
    toolChoice && typeof toolChoice === "object"
      ? ((toolChoice as { function?: { name?: unknown }; name?: unknown }).function?.name ?? (toolChoice as { name?: unknown }).name)
      : undefined;
  const chosen = functions.find((f) => f.name === forced) ?? functions[0];
  return chosen ? { kind: "tool", name: chosen.name, schema: chosen.schema } : undefined;
}

function parseChatRequest(body: Record<string, unknown>): ParsedLlmRequest {
  if (!Array.isArray(body.messages)) throw new BadRequest("messages must be an array");
  const turns = body.messages.map((m) => ({ role: (m?.role ?? "user") as Role, content: textOf(m?.content) }));
  const responseFormat = body.response_format as { type?: string; json_schema?: { schema?: JsonSchema } } | undefined;
  let format: AnswerFormat = { kind: "text" };
  let extra: unknown;
  if (responseFormat?.type === "json_schema") {
    format = { kind: "json_schema", schema: responseFormat.json_schema?.schema ?? {} };
    extra = responseFormat.json_schema;
  } else if (responseFormat?.type === "json_object") {
    format = { kind: "json_object" };
  } else {
    const tool = toolFormat(body.tools, body.tool_choice, false);
    if (tool) {
      format = tool;
      extra = body.tools;
    }
  }
  return { turns, format, extra, model: String(body.model ?? "stub"), stream: body.stream === true };
}

function parseResponsesRequest(body: Record<string, unknown>, history: readonly ChatTurn[]): ParsedLlmRequest {
  const turns: ChatTurn[] = [];
  if (typeof body.instructions === "string") turns.push({ role: "system", content: body.instructions });
  turns.push(...history);
  if (typeof body.input === "string") turns.push({ role: "user", content: body.input });
  else if (Array.isArray(body.input)) {
    for (const item of body.input) {
      if (!item || typeof item !== "object") continue;
      if ("role" in item) turns.push({ role: item.role as Role, content: textOf(item.content) });
      else if (item.type === "function_call") turns.push({ role: "assistant", content: `${item.name}(${item.arguments})` });
      else if (item.type === "function_call_output") turns.push({ role: "tool", content: textOf(item.output) });
    }
  } else throw new BadRequest("input must be a string or an array");
  const textFormat = (body.text as { format?: { type?: string; schema?: JsonSchema } } | undefined)?.format;
  let format: AnswerFormat = { kind: "text" };
  let extra: unknown;
  if (textFormat?.type === "json_schema") {
    format = { kind: "json_schema", schema: textFormat.schema ?? {} };
    extra = textFormat;
  } else if (textFormat?.type === "json_object") {
    format = { kind: "json_object" };
  } else {
    const tool = toolFormat(body.tools, body.tool_choice, true);
    if (tool) {
      format = tool;
      extra = body.tools;
    }
  }
  return { turns, format, extra, model: String(body.model ?? "stub"), stream: body.stream === true };
}

// ── answers ──────────────────────────────────────────────────────────────────────────────────

/** One answer, before it is put in the shape of an API. */
interface StubAnswer {
  id: string;
  created: number;
  model: string;
  text: string;
  toolCalls: { name: string; arguments: string; callId: string }[];
  input: number;
  output: number;
}

/** A text cut into the pieces a model streams: word by word, the spaces kept. */
const pieces = (text: string) => text.match(/\S+\s*|\s+/g) ?? [];

function chatCompletion(answer: StubAnswer): unknown {
  const message = {
    role: "assistant",
    content: answer.text === "" && answer.toolCalls.length > 0 ? null : answer.text,
    ...(answer.toolCalls.length > 0
      ? {
          tool_calls: answer.toolCalls.map((call) => ({
            id: call.callId,
            type: "function",
            function: { name: call.name, arguments: call.arguments },
          })),
        }
      : {}),
  };
  return {
    id: answer.id,
    object: "chat.completion",
    created: answer.created,
    model: answer.model,
    choices: [{ index: 0, message, finish_reason: answer.toolCalls.length > 0 ? "tool_calls" : "stop", logprobs: null }],
    usage: { prompt_tokens: answer.input, completion_tokens: answer.output, total_tokens: answer.input + answer.output },
  };
}

function messageItem(answer: StubAnswer, status: "in_progress" | "completed") {
  const content = status === "completed" ? [{ type: "output_text", text: answer.text, annotations: [] }] : [];
  return { type: "message", id: `msg-${answer.id}`, role: "assistant", status, content };
}

function functionCallItem(answer: StubAnswer, index: number, status: "in_progress" | "completed") {
  const call = answer.toolCalls[index] as StubAnswer["toolCalls"][number];
  return {
    type: "function_call",
    id: `fc-${answer.id}-${index}`,
    call_id: call.callId,
    name: call.name,
    arguments: status === "completed" ? call.arguments : "",
    status,
  };
}

function responseObject(answer: StubAnswer, status: "in_progress" | "completed" = "completed"): unknown {
  const output =
    status === "in_progress"
      ? []
      : [
          ...(answer.text !== "" || answer.toolCalls.length === 0 ? [messageItem(answer, "completed")] : []),
          ...answer.toolCalls.map((_, index) => functionCallItem(answer, index, "completed")),
        ];
  return {
    id: answer.id,
    object: "response",
    created_at: answer.created,
    status,
    model: answer.model,
    output,
    usage:
      status === "completed"
        ? { input_tokens: answer.input, output_tokens: answer.output, total_tokens: answer.input + answer.output }
        : null,
  };
}

/** Server-sent events on one response: chat chunks (`data:` lines, `[DONE]` last) or Responses API events (named, numbered). */
class SseWriter {
  #sequence = 0;
  constructor(
    private readonly response: ServerResponse,
    private readonly named: boolean,
  ) {}

  start(): void {
    this.response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  }

  data(value: unknown): void {
    if (this.response.destroyed || this.response.writableEnded) return;
    this.response.write(`data: ${JSON.stringify(value)}\n\n`);
  }

  event(type: string, fields: Record<string, unknown>): void {
    if (this.response.destroyed || this.response.writableEnded) return;
    const data = { type, sequence_number: this.#sequence++, ...fields };
    this.response.write(this.named ? `event: ${type}\ndata: ${JSON.stringify(data)}\n\n` : `data: ${JSON.stringify(data)}\n\n`);
  }

  end(last?: string): void {
    if (!this.response.writableEnded) this.response.end(last);
  }
}

/** How an answer is streamed, whatever the API. */
interface AnswerStream {
  begin(): void;
  text(delta: string): void;
  fail(message: string): void;
  finish(answer: StubAnswer): void;
}

function chatChunks(id: string, created: number, model: string, sse: SseWriter): AnswerStream {
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    sse.data({ id, object: "chat.completion.chunk", created, model, choices, ...extra });
  return {
    begin: () => chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]),
    text: (delta) => chunk([{ index: 0, delta: { content: delta }, finish_reason: null }]),
    fail(message) {
      sse.data({ error: { message, type: "server_error" } });
      sse.end();
    },
    finish(answer) {
      for (const piece of pieces(answer.text)) chunk([{ index: 0, delta: { content: piece }, finish_reason: null }]);
      answer.toolCalls.forEach((call, index) => {
        const start = { index, id: call.callId, type: "function", function: { name: call.name, arguments: "" } };
        chunk([{ index: 0, delta: { tool_calls: [start] }, finish_reason: null }]);
        chunk([{ index: 0, delta: { tool_calls: [{ index, function: { arguments: call.arguments } }] }, finish_reason: null }]);
      });
      chunk([{ index: 0, delta: {}, finish_reason: answer.toolCalls.length > 0 ? "tool_calls" : "stop" }]);
      const usage = { prompt_tokens: answer.input, completion_tokens: answer.output, total_tokens: answer.input + answer.output };
      chunk([], { usage });
      sse.end("data: [DONE]\n\n");
    },
  };
}

function responsesEvents(id: string, created: number, model: string, sse: SseWriter): AnswerStream {
  const shell: StubAnswer = { id, created, model, text: "", toolCalls: [], input: 0, output: 0 };
  let opened = false;
  const openMessage = () => {
    if (opened) return;
    opened = true;
    sse.event("response.output_item.added", { output_index: 0, item: messageItem(shell, "in_progress") });
    sse.event("response.content_part.added", {
      item_id: `msg-${id}`,
      output_index: 0,
      content_index: 0,
      part: { type: "output_text", text: "", annotations: [] },
    });
  };
  const delta = (text: string) => {
    openMessage();
    sse.event("response.output_text.delta", { item_id: `msg-${id}`, output_index: 0, content_index: 0, delta: text, logprobs: [] });
  };
  return {
    begin() {
      sse.event("response.created", { response: responseObject(shell, "in_progress") });
      sse.event("response.in_progress", { response: responseObject(shell, "in_progress") });
    },
    text: delta,
    fail(message) {
      sse.event("error", { code: "server_error", message, param: null });
      sse.end();
    },
    finish(answer) {
      const withMessage = answer.text !== "" || answer.toolCalls.length === 0;
      if (withMessage) {
        for (const piece of pieces(answer.text)) delta(piece);
        openMessage();
        const part = { type: "output_text", text: answer.text, annotations: [] };
        sse.event("response.output_text.done", {
          item_id: `msg-${id}`,
          output_index: 0,
          content_index: 0,
          text: answer.text,
          logprobs: [],
        });
        sse.event("response.content_part.done", { item_id: `msg-${id}`, output_index: 0, content_index: 0, part });
        sse.event("response.output_item.done", { output_index: 0, item: messageItem(answer, "completed") });
      }
      answer.toolCalls.forEach((call, index) => {
        const outputIndex = index + (withMessage ? 1 : 0);
        const itemId = `fc-${id}-${index}`;
        sse.event("response.output_item.added", { output_index: outputIndex, item: functionCallItem(answer, index, "in_progress") });
        sse.event("response.function_call_arguments.delta", { item_id: itemId, output_index: outputIndex, delta: call.arguments });
        sse.event("response.function_call_arguments.done", {
          item_id: itemId,
          output_index: outputIndex,
          name: call.name,
          arguments: call.arguments,
        });
        sse.event("response.output_item.done", { output_index: outputIndex, item: functionCallItem(answer, index, "completed") });
      });
      sse.event("response.completed", { response: responseObject(answer) });
      sse.end();
    },
  };
}

// ── the server ───────────────────────────────────────────────────────────────────────────────

async function readBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    const value = JSON.parse(text || "{}");
    if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
    return value;
  } catch {
    throw new BadRequest("the body must be a JSON object");
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}

/**
 * Starts the stub on 127.0.0.1. Requests from any non-loopback address are refused.
 *
 * @example
 * const stub = await startOpenAiStub({ latencyMs: 25 });
 * const openai = createOpenAI({ baseURL: stub.baseURL, apiKey: "stub" });
 */
export async function startOpenAiStub({
  port = 0,
  latencyMs = 0,
  embeddingLatencyMs,
  dimension = 256,
  keepRequests = 0,
  reply: initialReply,
}: OpenAiStubOptions = {}): Promise<OpenAiStub> {
  let reply = initialReply;
  // The conversation of each response, for requests that chain on with previous_response_id.
  const storedResponses = new Map<string, ChatTurn[]>();
  const rememberResponse = (id: string, turns: ChatTurn[]) => {
    storedResponses.set(id, turns);
    if (storedResponses.size > 1000) storedResponses.delete(storedResponses.keys().next().value as string);
  };
  let counters = emptyCounters();
  let llmLatency = latencyMs;
  let embeddingLatency = embeddingLatencyMs ?? latencyMs;
  const recorded: RecordedRequest[] = [];
  const embedders = new Map<number, ReturnType<typeof deterministicEmbedder>>();
  let sequence = 0;

  const embed = async (texts: string[], size: number) => {
    let embedder = embedders.get(size);
    if (!embedder) {
      embedder = deterministicEmbedder({ dimension: size });
      embedders.set(size, embedder);
    }
    const vectors = await embedder.embed(texts);
    embedder.calls.length = 0;
    return vectors;
  };

  const handleLlm = async (path: string, body: Record<string, unknown>, response: ServerResponse) => {
    const responsesApi = path === "/v1/responses";
    let history: readonly ChatTurn[] = [];
    if (responsesApi && body.previous_response_id != null) {
      const previous = storedResponses.get(String(body.previous_response_id));
      if (!previous) throw new BadRequest(`Previous response with id '${String(body.previous_response_id)}' not found.`);
      history = previous;
    }
    const request = responsesApi ? parseResponsesRequest(body, history) : parseChatRequest(body);
    counters.llmRequests++;
    const scripted = reply?.({ api: responsesApi ? "responses" : "chat", turns: request.turns, stream: request.stream, body });
    await sleep(llmLatency);
    const id = `stub-${++sequence}`;
    const created = Math.floor(Date.now() / 1000);
    const sse = new SseWriter(response, responsesApi);

    if (scripted && "endless" in scripted) {
      if (!request.stream) throw new BadRequest("an endless answer needs stream: true");
      counters.promptTokens += promptTokens(request.turns, request.extra);
      sse.start();
      const stream = responsesApi ? responsesEvents(id, created, request.model, sse) : chatChunks(id, created, request.model, sse);
      stream.begin();
      while (!response.destroyed && !response.writableEnded) {
        stream.text("more ");
        await sleep(2);
      }
      return;
    }
    if (scripted && "error" in scripted) {
      counters.errors++;
      if (!scripted.midStream || !request.stream) {
        send(response, scripted.status ?? 500, { error: { message: scripted.error, type: "server_error" } });
        return;
      }
      sse.start();
      const stream = responsesApi ? responsesEvents(id, created, request.model, sse) : chatChunks(id, created, request.model, sse);
      stream.begin();
      stream.text("Partial ");
      stream.fail(scripted.error);
      return;
    }

    // The default: the facts of the user's messages, as text or in the asked shape; asked for a
    // tool, a call of it, unless the conversation ends with a tool's result (the loop's last step).
    const answered = request.turns.at(-1)?.role === "tool";
    const toolFormat = request.format.kind === "tool" && !answered ? request.format : undefined;
    const text = scripted
      ? (scripted.text ?? "")
      : toolFormat
        ? ""
        : answerFor(request.turns, answered && request.format.kind === "tool" ? { kind: "text" } : request.format);
    const toolCalls = (
      scripted ? (scripted.toolCalls ?? []) : toolFormat ? [{ name: toolFormat.name, arguments: answerFor(request.turns, toolFormat) }] : []
    ).map((call, index) => ({ ...call, callId: `call-${id}-${index}` }));
    const input = promptTokens(request.turns, request.extra);
    const output = countTokens(text) + toolCalls.reduce((sum, call) => sum + countTokens(call.name) + countTokens(call.arguments), 0);
    counters.promptTokens += input;
    counters.completionTokens += output;
    const answer: StubAnswer = { id, created, model: request.model, text, toolCalls, input, output };

    if (responsesApi) {
      // A later request chains on with previous_response_id; `instructions` are not carried over.
      rememberResponse(id, [
        ...(typeof body.instructions === "string" ? request.turns.slice(1) : request.turns),
        ...(text ? [{ role: "assistant" as const, content: text }] : []),
        ...toolCalls.map((call) => ({ role: "assistant" as const, content: `${call.name}(${call.arguments})` })),
      ]);
      if (!request.stream) return send(response, 200, responseObject(answer));
      sse.start();
      const stream = responsesEvents(id, created, request.model, sse);
      stream.begin();
      stream.finish(answer);
      return;
    }
    if (!request.stream) return send(response, 200, chatCompletion(answer));
    sse.start();
    const stream = chatChunks(id, created, request.model, sse);
    stream.begin();
    stream.finish(answer);
  };

  const handleEmbeddings = async (body: Record<string, unknown>, response: ServerResponse) => {
    const input = body.input;
    const texts =
      typeof input === "string" ? [input] : Array.isArray(input) && input.every((t) => typeof t === "string") ? input : undefined;
    if (!texts || texts.length === 0) throw new BadRequest("input must be a non-empty string or array of strings");
    const size = body.dimensions === undefined ? dimension : Number(body.dimensions);
    if (!Number.isInteger(size) || size < 1 || size > 4096) throw new BadRequest("dimensions must be an integer in [1, 4096]");
    const vectors = await embed(texts, size);
    const tokens = texts.reduce((sum, text) => sum + countTokens(text), 0);
    counters.embeddingRequests++;
    counters.embeddingInputs += texts.length;
    counters.embeddingTokens += tokens;
    await sleep(embeddingLatency);
    const base64 = body.encoding_format === "base64";
    send(response, 200, {
      object: "list",
      model: String(body.model ?? "stub-embedding"),
      data: vectors.map((vector, index) => ({
        object: "embedding",
        index,
        embedding: base64 ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString("base64") : Array.from(vector),
      })),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  };

  const server = createServer(async (request, response) => {
    if (!isLoopback(request.socket.remoteAddress)) {
      request.socket.destroy();
      return;
    }
    const path = (request.url ?? "/").split("?")[0] as string;
    try {
      if (request.method === "GET" && path === "/stub/counters") return send(response, 200, counters);
      if (request.method !== "POST") throw new BadRequest(`${request.method} ${path} is not served`);
      const body = await readBody(request);
      if (keepRequests > 0) {
        recorded.push({ path, body });
        if (recorded.length > keepRequests) recorded.shift();
      }
      if (path === "/v1/chat/completions" || path === "/v1/responses") await handleLlm(path, body, response);
      else if (path === "/v1/embeddings") await handleEmbeddings(body, response);
      else if (path === "/stub/reset") {
        counters = emptyCounters();
        send(response, 200, { ok: true });
      } else {
        counters.errors++;
        send(response, 404, { error: { message: `No route ${path}`, type: "invalid_request_error" } });
      }
    } catch (error) {
      counters.errors++;
      const status = error instanceof BadRequest ? 400 : 500;
      if (!response.headersSent)
        send(response, status, { error: { message: String((error as Error).message), type: "invalid_request_error" } });
      else response.end();
    }
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${bound}/v1`,
    counters: () => ({ ...counters }),
    resetCounters: () => {
      counters = emptyCounters();
    },
    setLatency: ({ latencyMs: llm, embeddingLatencyMs: embedding }) => {
      if (llm !== undefined) llmLatency = llm;
      if (embedding !== undefined) embeddingLatency = embedding;
    },
    requests: () => [...recorded],
    setReply: (next) => {
      reply = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// `npm run bench:stub -- --port 8787 --latency-ms 25`: serve until interrupted.
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8787" },
      "latency-ms": { type: "string", default: "0" },
      "embedding-latency-ms": { type: "string" },
      dimension: { type: "string", default: "256" },
    },
  });
  const stub = await startOpenAiStub({
    port: Number(values.port),
    latencyMs: Number(values["latency-ms"]),
    embeddingLatencyMs: values["embedding-latency-ms"] === undefined ? undefined : Number(values["embedding-latency-ms"]),
    dimension: Number(values.dimension),
  });
  console.log(`OpenAI-compatible stub on ${stub.baseURL} (counters: GET ${stub.baseURL.replace(/\/v1$/, "")}/stub/counters)`);
  process.on("SIGINT", () => {
    console.log(JSON.stringify(stub.counters()));
    void stub.close().then(() => process.exit(0));
  });
}
