// Drives Engram for the side-by-side benchmark, with the same protocol as mem0's runner
// (bench/peers/mem0/runner.mjs): the AI SDK's OpenAI provider pointed at the local stub for the
// extraction model and the embedder, and Engram's default embedded store.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { createOpenAI } from "@ai-sdk/openai";
import { Memory, type MemoryOptions } from "../../src/index.js";
import type { RunnerOperations } from "./runner-client.js";

const protocol = process.stdout.write.bind(process.stdout);
for (const level of ["log", "info", "debug", "warn"] as const) console[level] = console.error;

// Only loopback traffic: the AI SDK provider uses fetch; refuse any other destination.
let blockedRequests = 0;
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    blockedRequests++;
    return Promise.reject(new Error(`blocked non-loopback request to ${url.host}`));
  }
  return realFetch(input, init);
};

const version = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version as string;
let memory: Memory | undefined;
let extract = false;

const ready = () => {
  if (!memory) throw new Error("open first");
  return memory;
};

type Handlers = { [K in keyof RunnerOperations]: (args: RunnerOperations[K]["args"]) => Promise<RunnerOperations[K]["result"]> };

const operations: Handlers = {
  async open({ baseURL, dataDir, llmModel, embeddingModel, extract: wanted }) {
    const openai = createOpenAI({ baseURL, apiKey: "stub" });
    const options: MemoryOptions = { dataDir, embedder: openai.embedding(embeddingModel) };
    let note: string | undefined;
    if (wanted) {
      try {
        memory = new Memory({ ...options, llm: openai.chat(llmModel) } as MemoryOptions);
        extract = true;
      } catch (error) {
        note = `this build of Engram has no extraction model option (${(error as Error).message.split("\n")[0]}): adds store turns verbatim`;
      }
    }
    memory ??= new Memory(options);
    // Finish lazy initialisation (embedder probe, schema) before anything is timed.
    await memory.getAll({ userId: "warm-up" });
    return { library: "engram", version, node: process.version, extract, ...(note ? { note } : {}) };
  },
  async add({ messages, userId, infer }) {
    const started = performance.now();
    const { results } = await ready().add(messages, { userId, infer: infer && extract });
    return { ms: performance.now() - started, stored: results.filter((r) => r.event === "ADD" || r.event === "UPDATE").length };
  },
  async search({ query, userId, limit }) {
    const started = performance.now();
    const { results } = await ready().search(query, { userId, limit });
    return { ms: performance.now() - started, memories: results.map((r) => r.memory) };
  },
  async fill({ texts, userId, batchSize }) {
    const started = performance.now();
    let stored = 0;
    for (let i = 0; i < texts.length; i += batchSize) {
      const messages = texts.slice(i, i + batchSize).map((content) => ({ role: "user" as const, content }));
      const { results } = await ready().add(messages, { userId, infer: false });
      stored += results.filter((r) => r.event === "ADD").length;
    }
    return { ms: performance.now() - started, stored };
  },
  async close() {
    await memory?.close();
    return { blockedRequests };
  },
};

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { id, op, args } = JSON.parse(line) as { id: number; op: keyof RunnerOperations; args: never };
  try {
    const operation = operations[op] as ((args: never) => Promise<unknown>) | undefined;
    if (!operation) throw new Error(`unknown operation ${op}`);
    protocol(`${JSON.stringify({ id, ok: true, result: await operation(args) })}\n`);
  } catch (error) {
    protocol(`${JSON.stringify({ id, ok: false, error: error instanceof Error ? `${error.message}\n${error.stack}` : String(error) })}\n`);
  }
}
