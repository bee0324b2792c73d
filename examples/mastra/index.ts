// `npm run example:mastra`: a Mastra agent that remembers its users across sessions. Offline by
// default (local embeddings, SQLite, a scripted reply model); set OPENAI_API_KEY (or
// OPENAI_BASE_URL for a local OpenAI-compatible server) for a real model.
import { Agent } from "@mastra/core/agent";
import type { MastraModelConfig } from "@mastra/core/llm";
import { RequestContext } from "@mastra/core/request-context";
import { memoryTools, warmUp, withMemory } from "engram/mastra";
import { modelName, openAiModel } from "../shared/openai-model.ts";
import { scriptedReplyModel } from "../shared/scripted-reply.ts";
import { exampleMemory, twoSessions } from "../shared/two-sessions.ts";

const memory = exampleMemory("mastra");
// Loads the embedding model now, so the first reply does not wait for it (see recallTimeoutMs).
await warmUp(memory);
const base = (await openAiModel()) ?? scriptedReplyModel();

const assistant = new Agent({
  id: "assistant",
  name: "Assistant",
  instructions: "You are a concise assistant. Answer in one or two sentences.",
  // An AI SDK 7 model; Mastra 1.x types it with an older @ai-sdk/provider copy, hence the cast.
  model: base as unknown as MastraModelConfig,
  // Memory as tools the model may call; their scope is the RequestContext's, never the model's.
  tools: memoryTools({ memory }),
});

// The one line: the agent (its own processors kept) now recalls and remembers per call.
const agent = withMemory(assistant, { memory });

await twoSessions({
  title: `Engram + Mastra (${base.modelId === "scripted-reply" ? "offline: scripted reply model, local embeddings" : `real model ${modelName}`})`,
  memory,
  say: async (userId, runId, text) => {
    const requestContext = new RequestContext();
    requestContext.set("userId", userId);
    requestContext.set("runId", runId);
    const { text: reply } = await agent.generate(text, { requestContext });
    return reply;
  },
});
