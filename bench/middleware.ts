// `npm run bench:middleware`: what memory adds to a reply. A mock model with a fixed latency, a
// user with 10,000 memories, the local embedding model; 100 streamed calls each without memory,
// with memory (recall only), and with memory (recall + write-behind); time to first chunk and
// total reply time, p50/p95, and the search time alone for comparison. Then 20 calls through a
// memory whose search never answers: what a hung dependency adds with the recall deadline
// (RECALL_TIMEOUT_MS, default the adapters' 500 ms). Last, the same streamed calls through the plain
// `openai` client against the local OpenAI-compatible stub (same latency), without and with
// `engram/openai`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LanguageModelV4StreamPart } from "@ai-sdk/provider";
import { streamText } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import OpenAI from "openai";
import { warmUp, withMemory } from "../integrations/ai-sdk/index.js";
import { withMemory as withOpenAiMemory } from "../integrations/openai/index.js";
import { type AdapterMemory, defaultRecallTimeoutMs } from "../integrations/shared/options.js";
import { Memory, TimeoutError } from "../src/index.js";
import { readLocomo } from "./support/locomo.js";
import { startOpenAiStub } from "./support/openai-stub.js";
import { defaultDataFile, machine, percentile, writeResults } from "./support/report.js";

const latencyMs = Number(process.env.MODEL_LATENCY_MS ?? 200);
const memoryCount = Number(process.env.MEMORIES ?? 10_000);
const calls = Number(process.env.CALLS ?? 100);
const recallTimeoutMs = Number(process.env.RECALL_TIMEOUT_MS ?? defaultRecallTimeoutMs);
const hungCalls = Number(process.env.HUNG_CALLS ?? 20);
const { samples } = readLocomo(defaultDataFile);
const turns = samples.flatMap((sample) =>
  sample.sessions.flatMap((session) => session.turns.map((turn) => `${turn.speaker}: ${turn.text}`)),
);
const questions = samples.flatMap((sample) => sample.questions.map((qa) => qa.question));

const usage = {
  inputTokens: { total: 100, noCache: 100, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 20, text: 20, reasoning: undefined },
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** First chunk after `latencyMs`, then 20 more chunks back to back. */
function slowModel() {
  return new MockLanguageModelV4({
    doStream: async () => ({
      stream: new ReadableStream<LanguageModelV4StreamPart>({
        async start(controller) {
          await sleep(latencyMs);
          controller.enqueue({ type: "stream-start", warnings: [] });
          controller.enqueue({ type: "text-start", id: "t" });
          for (let i = 0; i < 20; i++) controller.enqueue({ type: "text-delta", id: "t", delta: `word${i} ` });
          controller.enqueue({ type: "text-end", id: "t" });
          controller.enqueue({ type: "finish", finishReason: { unified: "stop", raw: "stop" }, usage });
          controller.close();
        },
      }),
    }),
  });
}

const dir = mkdtempSync(join(tmpdir(), "engram-bench-middleware-"));
// A generous embedding deadline for the fill on a busy machine; searches answer far within it.
const memory = new Memory({ dataDir: dir, timeouts: { embedMs: 300_000 } });
const userId = "bench-user";

console.log(`Filling ${memoryCount.toLocaleString()} memories for one user with the local embedding model…`);
let started = performance.now();
const texts: string[] = [];
for (let i = 0; texts.length < memoryCount; i++) {
  const turn = turns[i % turns.length] as string;
  texts.push(i < turns.length ? turn : `${turn} (${Math.floor(i / turns.length)})`);
}
// One memory per text: turns an hour apart, so that none continues the one before it.
const hour = 3_600_000;
const firstTurn = Date.UTC(2025, 0, 1);
await memory.addMany(texts.map((content, i) => ({ messages: content, userId, infer: false, timestamp: new Date(firstTurn + i * hour) })));
const [stored] = await memory.scopes({ allScopes: true });
console.log(`  ${stored?.count.toLocaleString()} memories stored`);
console.log(`  done in ${((performance.now() - started) / 1000).toFixed(1)} s`);

type Sample = { firstChunk: number; total: number };
async function run(
  label: string,
  model: ReturnType<typeof slowModel> | ReturnType<typeof withMemory>,
  offset: number,
  count = calls,
): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let i = 0; i < count; i++) {
    const prompt = questions[(offset + i) % questions.length] as string;
    const begin = performance.now();
    let firstChunk = 0;
    const result = streamText({ model, prompt, providerOptions: { memory: { userId, runId: `${label}-${i}` } } });
    for await (const _ of result.textStream) {
      if (firstChunk === 0) firstChunk = performance.now() - begin;
    }
    samples.push({ firstChunk, total: performance.now() - begin });
  }
  return samples;
}

// Warm the model and caches once.
await warmUp(memory);
await memory.search("warm up", { userId });

const searchTimes: number[] = [];
for (let i = 0; i < calls; i++) {
  const begin = performance.now();
  await memory.search(questions[(300 + i) % questions.length] as string, { userId, limit: 5 });
  searchTimes.push(performance.now() - begin);
}

// The profile is read beside the search on every call (one history-store read, no extra round trip on the reply path).
await memory.setProfile({ userId }, "name: Ana\nlanguage: answer in French\ndiet: vegetarian");
const profileTimes: number[] = [];
for (let i = 0; i < calls; i++) {
  const begin = performance.now();
  await memory.profile({ userId });
  profileTimes.push(performance.now() - begin);
}

started = performance.now();
const without = await run("plain", slowModel(), 0);
const noProfile = await run("no-profile", withMemory(slowModel(), { memory, remember: false, recallTimeoutMs, profile: false }), 100);
const recallOnly = await run("recall", withMemory(slowModel(), { memory, remember: false, recallTimeoutMs }), 100);
const withWrites = await run("full", withMemory(slowModel(), { memory, recallTimeoutMs }), 200);
const flushStart = performance.now();
const flushed = await memory.flush();
const flushMs = performance.now() - flushStart;

// A hung embedder or store: the search never answers, the deadline lets the reply go on without memories.
const hung: AdapterMemory = { search: () => new Promise(() => {}), enqueue: (messages, options) => memory.enqueue(messages, options) };
let timeouts = 0;
const hungSearch = await run(
  "hung",
  withMemory(slowModel(), {
    memory: hung,
    remember: false,
    recallTimeoutMs,
    onError: (error) => {
      if (TimeoutError.isInstance(error)) timeouts++;
    },
  }),
  300,
  hungCalls,
);

// The plain OpenAI client: streamed chat completions from the stub, 20 words after `latencyMs`.
const stub = await startOpenAiStub({
  latencyMs,
  reply: () => ({ text: Array.from({ length: 20 }, (_, i) => `word${i}`).join(" ") }),
});
const plainClient = new OpenAI({ baseURL: stub.baseURL, apiKey: "stub", maxRetries: 0 });
const memoryClient = withOpenAiMemory(plainClient, { memory, recallTimeoutMs });
async function runOpenAi(label: string, client: (runId: string) => OpenAI, offset: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let i = 0; i < calls; i++) {
    const content = questions[(offset + i) % questions.length] as string;
    const begin = performance.now();
    let firstChunk = 0;
    const stream = await client(`${label}-${i}`).chat.completions.create({
      model: "stub-model",
      messages: [{ role: "user", content }],
      stream: true,
    });
    for await (const _ of stream) {
      if (firstChunk === 0) firstChunk = performance.now() - begin;
    }
    samples.push({ firstChunk, total: performance.now() - begin });
  }
  return samples;
}
await runOpenAi("openai-warm", () => plainClient, 0);
const openAiWithout = await runOpenAi("openai-plain", () => plainClient, 400);
const openAiWithWrites = await runOpenAi("openai-full", (runId) => memoryClient.withScope({ userId, runId }), 500);
const openAiFlushed = await memory.flush();
await stub.close();

const row = (name: string, values: number[]) =>
  `${name.padEnd(44)} ${percentile(values, 50).toFixed(1).padStart(8)} ${percentile(values, 95).toFixed(1).padStart(8)}`;
console.log(
  `\nmock model latency ${latencyMs} ms · ${memoryCount.toLocaleString()} memories for the user · ${calls} calls each · local embedder · recallTimeoutMs ${recallTimeoutMs} ms`,
);
console.log(`${"".padEnd(44)} ${"p50 ms".padStart(8)} ${"p95 ms".padStart(8)}`);
console.log(row("search alone (embed query + hybrid search)", searchTimes));
console.log(row("profile read alone (memory.profile)", profileTimes));
console.log(
  row(
    "first chunk, no memory",
    without.map((s) => s.firstChunk),
  ),
);
console.log(
  row(
    "first chunk, memory (recall only)",
    recallOnly.map((s) => s.firstChunk),
  ),
);
console.log(
  row(
    "first chunk, memory (recall + write-behind)",
    withWrites.map((s) => s.firstChunk),
  ),
);
console.log(
  row(
    "total reply, no memory",
    without.map((s) => s.total),
  ),
);
console.log(
  row(
    "total reply, memory (recall only)",
    recallOnly.map((s) => s.total),
  ),
);
console.log(
  row(
    "total reply, memory (recall only, no profile)",
    noProfile.map((s) => s.total),
  ),
);
console.log(
  row(
    "total reply, memory (recall + write-behind)",
    withWrites.map((s) => s.total),
  ),
);
console.log(
  row(
    `first chunk, search hung (${hungCalls} calls)`,
    hungSearch.map((s) => s.firstChunk),
  ),
);
console.log(
  row(
    `total reply, search hung (${hungCalls} calls)`,
    hungSearch.map((s) => s.total),
  ),
);
console.log(
  row(
    "first chunk, OpenAI SDK, no memory",
    openAiWithout.map((s) => s.firstChunk),
  ),
);
console.log(
  row(
    "first chunk, OpenAI SDK, engram/openai",
    openAiWithWrites.map((s) => s.firstChunk),
  ),
);
console.log(
  row(
    "total reply, OpenAI SDK, no memory",
    openAiWithout.map((s) => s.total),
  ),
);
console.log(
  row(
    "total reply, OpenAI SDK, engram/openai",
    openAiWithWrites.map((s) => s.total),
  ),
);
const added = (samples: Sample[], baseline = without) =>
  percentile(
    samples.map((s) => s.total),
    95,
  ) -
  percentile(
    baseline.map((s) => s.total),
    95,
  );
console.log(
  `\nthe profile (read beside the search) adds ${(added(recallOnly) - added(noProfile)).toFixed(1)} ms at p95 to the total reply; read alone p95 ${percentile(profileTimes, 95).toFixed(1)} ms`,
);
console.log(
  `\nadded p95 total: recall only ${added(recallOnly).toFixed(1)} ms, recall + write-behind ${added(withWrites).toFixed(1)} ms; search p95 alone ${percentile(searchTimes, 95).toFixed(1)} ms`,
);
console.log(
  `write-behind: ${flushed.processed} turns processed, ${flushed.failed} failed; ${flushMs.toFixed(0)} ms left to flush after the last reply`,
);
console.log(
  `hung search: the deadline (recallTimeoutMs ${recallTimeoutMs} ms) added ${added(hungSearch).toFixed(1)} ms at p95; ${timeouts} of ${hungCalls} calls reported a TimeoutError, all were answered`,
);

console.log(
  `OpenAI SDK (streamed chat.completions.create through the local stub): engram/openai added ${added(openAiWithWrites, openAiWithout).toFixed(1)} ms at p95 (recall + write-behind); ${openAiFlushed.processed} turns written, ${openAiFlushed.failed} failed`,
);

writeResults("middleware", {
  latencyMs,
  memoryCount,
  calls,
  machine: machine(),
  searchTimes,
  without,
  recallOnly,
  withWrites,
  flushMs,
  flushed,
  recallTimeoutMs,
  hungSearch,
  timeouts,
  openAiWithout,
  openAiWithWrites,
  openAiFlushed,
});
await memory.close();
rmSync(dir, { recursive: true, force: true });
