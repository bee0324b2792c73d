// `npm run example:openai`: an app that calls the official `openai` client directly, no agent
// framework, and remembers its users across sessions. Offline by default: local embeddings,
// SQLite, and a local OpenAI-compatible server (the benchmark stub) that gives a scripted reply.
// Set OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible server) for a real model.
import { warmUp, withMemory } from "engram/openai";
import OpenAI from "openai";
import { startOpenAiStub } from "../../bench/support/openai-stub.ts";
import { modelName, online } from "../shared/openai-model.ts";
import { scriptedReply } from "../shared/scripted-reply.ts";
import { exampleMemory, twoSessions } from "../shared/two-sessions.ts";

// Offline, the stub answers from the memory block in the instructions it was sent.
const stub = online
  ? undefined
  : await startOpenAiStub({
      reply: ({ turns }) => ({
        text: scriptedReply(
          turns
            .filter((turn) => turn.role === "system" || turn.role === "developer")
            .map((turn) => turn.content)
            .join("\n"),
        ),
      }),
    });

const memory = exampleMemory("openai");
// Loads the embedding model now, so the first reply does not wait for it (see recallTimeoutMs).
await warmUp(memory);

// The one line: the same client, whose chat.completions.create and responses.create recall and
// remember in the scope of each request's scoped view.
const client = withMemory(
  new OpenAI({
    apiKey: process.env.OPENAI_API_KEY ?? "not-needed",
    baseURL: stub?.baseURL ?? process.env.OPENAI_BASE_URL,
  }),
  { memory },
);
const instructions = "You are a concise assistant. Answer in one or two sentences.";

await twoSessions({
  title: `Engram + OpenAI SDK (${online ? `real model ${modelName}` : "offline: scripted reply model, local embeddings"})`,
  memory,
  say: async (userId, runId, text) => {
    // A scoped view per request: its calls search and write this user's memories only.
    const scoped = client.withScope({ userId, runId });
    if (process.env.OPENAI_BASE_URL) {
      // OpenAI-compatible servers speak Chat Completions.
      const completion = await scoped.chat.completions.create({
        model: modelName,
        messages: [
          { role: "system", content: instructions },
          { role: "user", content: text },
        ],
      });
      return completion.choices[0]?.message.content ?? "";
    }
    const response = await scoped.responses.create({ model: modelName, instructions, input: text });
    return response.output_text;
  },
});
await stub?.close();
