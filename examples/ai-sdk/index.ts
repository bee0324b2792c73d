// `npm run example:ai-sdk`: a chatbot on the Vercel AI SDK that remembers its users across
// sessions. Offline by default (local embeddings, SQLite, a scripted reply model); set
// OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible server) for a real model.
import { generateText, isStepCount } from "ai";
import { memoryTools, memoryToolsContext, warmUp, withMemory } from "engram/ai-sdk";
import { modelName, openAiModel } from "../shared/openai-model.ts";
import { scriptedReplyModel } from "../shared/scripted-reply.ts";
import { exampleMemory, twoSessions } from "../shared/two-sessions.ts";

const memory = exampleMemory("ai-sdk");
// Loads the embedding model now, so the first reply does not wait for it (see recallTimeoutMs).
await warmUp(memory);
const base = (await openAiModel()) ?? scriptedReplyModel();

// The one line: every call of this model now recalls and remembers, in the scope it is given.
const model = withMemory(base, { memory });
// And memory as tools the model may call (remember, recall, forget, update_profile, ...).
const tools = memoryTools({ memory });

await twoSessions({
  title: `Engram + AI SDK (${base.modelId === "scripted-reply" ? "offline: scripted reply model, local embeddings" : `real model ${modelName}`})`,
  memory,
  say: async (userId, runId, text) => {
    const { text: reply } = await generateText({
      model,
      system: "You are a concise assistant. Answer in one or two sentences.",
      prompt: text,
      providerOptions: { memory: { userId, runId } },
      // The tools take their scope from here, never from the model.
      tools,
      toolsContext: memoryToolsContext({ userId, runId }),
      stopWhen: isStepCount(3),
    });
    return reply;
  },
});
