// Drives mem0's own TypeScript library (mem0ai/oss) for the side-by-side benchmark: one JSON
// request per line on stdin, one JSON answer per line on stdout (see bench/support/runner-client.ts).
// mem0 is configured as documented: its OpenAI provider for the LLM and the embedder (pointed at
// the local stub), and its default local stores (the SQLite-backed "memory" vector store and the
// SQLite history).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

// The protocol owns stdout: everything the library logs goes to stderr.
const protocol = process.stdout.write.bind(process.stdout);
for (const level of ["log", "info", "debug", "warn"]) console[level] = console.error;

// Only loopback traffic: refuse any other destination (mem0's telemetry and notices are also
// switched off by the environment the benchmark sets, MEM0_TELEMETRY=false).
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

const { Memory } = await import("mem0ai/oss");
const version = JSON.parse(readFileSync(new URL("./node_modules/mem0ai/package.json", import.meta.url), "utf8")).version;

let memory;

const operations = {
  async open({ baseURL, dataDir, dimension, llmModel, embeddingModel }) {
    memory = new Memory({
      embedder: { provider: "openai", config: { apiKey: "stub", baseURL, model: embeddingModel, embeddingDims: dimension } },
      vectorStore: { provider: "memory", config: { collectionName: "memories", dimension, dbPath: join(dataDir, "vector_store.db") } },
      llm: { provider: "openai", config: { apiKey: "stub", baseURL, model: llmModel } },
      historyStore: { provider: "sqlite", config: { historyDbPath: join(dataDir, "history.db") } },
    });
    // Finish mem0's lazy initialisation before anything is timed.
    await memory.getAll({ filters: { user_id: "warm-up" } });
    return { library: "mem0ai/oss", version, node: process.version, extract: true };
  },
  async add({ messages, userId, infer }) {
    const started = performance.now();
    const { results } = await memory.add(messages, { userId, infer });
    return { ms: performance.now() - started, stored: results.length };
  },
  async search({ query, userId, limit }) {
    const started = performance.now();
    const { results } = await memory.search(query, { filters: { user_id: userId }, topK: limit });
    return { ms: performance.now() - started, memories: results.map((r) => r.memory) };
  },
  async fill({ texts, userId, batchSize }) {
    const started = performance.now();
    let stored = 0;
    for (let i = 0; i < texts.length; i += batchSize) {
      const messages = texts.slice(i, i + batchSize).map((content) => ({ role: "user", content }));
      stored += (await memory.add(messages, { userId, infer: false })).results.length;
    }
    return { ms: performance.now() - started, stored };
  },
  async close() {
    return { blockedRequests };
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const { id, op, args } = JSON.parse(line);
  try {
    const operation = operations[op];
    if (!operation) throw new Error(`unknown operation ${op}`);
    protocol(`${JSON.stringify({ id, ok: true, result: await operation(args) })}\n`);
  } catch (error) {
    protocol(`${JSON.stringify({ id, ok: false, error: error instanceof Error ? `${error.message}\n${error.stack}` : String(error) })}\n`);
  }
}
