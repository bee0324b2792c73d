// `npm run example:openai-agents`: an OpenAI Agents JS agent that remembers its users across
// sessions. Offline by default (local embeddings, SQLite, a scripted reply model); set
// OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible server) for a real model.
import { Agent, OpenAIProvider, Runner } from "@openai/agents";
import { memoryTools, warmUp, withMemory } from "engram/openai-agents";
import { modelName, online } from "../shared/openai-model.ts";
import { exampleMemory, twoSessions } from "../shared/two-sessions.ts";
import { scriptedReplyModel } from "./scripted-reply-model.ts";

const memory = exampleMemory("openai-agents");
// Loads the embedding model now, so the first reply does not wait for it (see recallTimeoutMs).
await warmUp(memory);
const runner = new Runner({
  tracingDisabled: true,
  // The Agents SDK's own OpenAI provider; Chat Completions for OpenAI-compatible servers.
  modelProvider: new OpenAIProvider({
    apiKey: process.env.OPENAI_API_KEY ?? "not-needed",
    baseURL: process.env.OPENAI_BASE_URL,
    useResponses: !process.env.OPENAI_BASE_URL,
  }),
});

const assistant = new Agent({
  name: "Assistant",
  instructions: "You are a concise assistant. Answer in one or two sentences.",
  model: online ? modelName : scriptedReplyModel,
  // Memory as tools the model may call; their scope is the run context's, never the model's.
  tools: memoryTools({ memory }),
});

// The one line: a clone of the agent that recalls and remembers, in the scope of each run's context.
const agent = withMemory(assistant, { memory });

await twoSessions({
  title: `Engram + OpenAI Agents JS (${online ? `real model ${modelName}` : "offline: scripted reply model, local embeddings"})`,
  memory,
  say: async (userId, runId, text) => {
    const result = await runner.run(agent, text, { context: { userId, runId } });
    return String(result.finalOutput);
  },
});
