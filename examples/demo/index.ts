// `npm run demo`: a two-session chat through `withMemory`. Offline by default (local embedding
// model, SQLite file, a scripted reply model); set OPENAI_API_KEY (and optionally OPENAI_BASE_URL
// for a local OpenAI-compatible server such as Ollama, OPENAI_MODEL for the model) to use a real
// model for the replies and for extracting facts from each turn.
import { rmSync } from "node:fs";
import type { LanguageModelV4, LanguageModelV4Middleware } from "@ai-sdk/provider";
import { generateText, wrapLanguageModel } from "ai";
import { Memory, memoryBlockTag } from "engram";
import { warmUp, withMemory } from "engram/ai-sdk";
import { online, openAiModel } from "../shared/openai-model.ts";
import { scriptedReplyModel } from "../shared/scripted-reply.ts";

const dataDir = ".engram/demo";
rmSync(dataDir, { recursive: true, force: true });

const base: LanguageModelV4 = (await openAiModel()) ?? scriptedReplyModel();

// Offline, each turn is stored as it was said; with a real model, facts are extracted and reconciled.
const memory = new Memory(online ? { dataDir, llm: base } : { dataDir });
// Loads the embedding model now, so the first reply does not wait for it (see recallTimeoutMs).
await warmUp(memory);

// Shows what the model really received: the memory block sits in the system messages.
let lastBlock: string | undefined;
const showPrompt: LanguageModelV4Middleware = {
  specificationVersion: "v4",
  async transformParams({ params }) {
    lastBlock = params.prompt.flatMap((m) => (m.role === "system" && m.content.includes(memoryBlockTag) ? [m.content] : []))[0];
    return params;
  },
};
const model = withMemory(wrapLanguageModel({ model: base, middleware: showPrompt }), { memory });

async function say(userId: string, runId: string, text: string) {
  const { text: answer } = await generateText({
    model,
    system: "You are a concise assistant. Answer in one or two sentences.",
    prompt: text,
    providerOptions: { memory: { userId, runId } },
  });
  console.log(`\n[${userId} · ${runId}] ${text}`);
  console.log(lastBlock ? `  model received:\n${lastBlock.replace(/^/gm, "    | ")}` : "  model received: no memory block");
  console.log(`  reply: ${answer}`);
}

console.log(`Engram demo (${online ? `real model ${base.modelId}` : "offline: local embeddings, scripted reply model"})`);

console.log("\n── alice, session 1 ──");
await say("alice", "session-1", "I prefer Postgres for everything except analytics, where I use ClickHouse.");
await say("alice", "session-1", "Also, I'm allergic to peanuts.");
await memory.flush(); // the turns were queued off the reply path; wait for them here

console.log("\n── alice, session 2 (a new runId) ──");
await say("alice", "session-2", "Which database should I use for our product-analytics dashboard?");

console.log("\n── bob, session 1 ──");
await say("bob", "session-1", "I'm vegetarian and I live in Berlin.");
await memory.flush();

console.log("\n── bob, session 2: his own memories, never alice's ──");
await say("bob", "session-2", "Can you suggest a place for dinner tonight?");
await say("bob", "session-2", "Which database should I use for analytics?");
const leaked = await memory.search("Postgres ClickHouse peanuts", { userId: "bob" });
console.log(
  `\nIsolation check: bob's search for alice's facts finds ${leaked.results.filter((r) => /Postgres|peanut/.test(r.memory)).length} of them.`,
);

await memory.close();
