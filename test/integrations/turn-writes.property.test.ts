import type { LanguageModelV4GenerateResult } from "@ai-sdk/provider";
import { Agent as MastraAgent } from "@mastra/core/agent";
import { RequestContext } from "@mastra/core/request-context";
import { createTool } from "@mastra/core/tools";
import { Agent, tool as agentsTool, RunContext, Runner, run, setTracingDisabled } from "@openai/agents";
import { assistantMessage, functionCall, ScriptedModel } from "@openai/agents/testing";
import { generateText, isStepCount, tool } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import fc from "fast-check";
import { beforeAll, describe, expect, test } from "vitest";
import { z } from "zod";
import { withMemory as withAiSdkMemory } from "../../integrations/ai-sdk/index.js";
import { withMemory as withMastraMemory } from "../../integrations/mastra/index.js";
import { memoryRunConfig, withMemory as withAgentsMemory } from "../../integrations/openai-agents/index.js";
import type { AdapterMemory } from "../../integrations/shared/options.js";

// The write of a turn is keyed so that the outbox drops only true repeats: for any sequence of
// calls (questions repeated or not, replies repeated or not, tool loops or not), each call queues
// its turn exactly once, and two calls whose question or reply differ never share a write key.

interface Turn {
  question: string;
  reply: string;
  toolLoop: boolean;
}

const turns = fc.array(
  fc.record({
    question: fc.constantFrom("Book my usual table", "What is on today?"),
    reply: fc.constantFrom("Booked for Monday.", "Booked for Tuesday.", "Nothing."),
    toolLoop: fc.boolean(),
  }),
  { minLength: 1, maxLength: 5 },
);

interface Write {
  key: string;
  user: string;
  assistant: string;
}

function recordingMemory(writes: Write[]): AdapterMemory {
  return {
    search: async () => ({ results: [] }),
    enqueue: async (messages, options) => {
      const list = messages as { role: string; content: string }[];
      writes.push({
        key: (options as { idempotencyKey: string }).idempotencyKey,
        user: list.find((message) => message.role === "user")?.content ?? "",
        assistant: list.find((message) => message.role === "assistant")?.content ?? "",
      });
      return { id: "recorded", queued: true };
    },
  };
}

async function checkWrites(sequence: Turn[], writes: Write[]): Promise<void> {
  await expect.poll(() => writes.length).toBe(sequence.length);
  expect(writes.map(({ user, assistant }) => [user, assistant])).toEqual(sequence.map(({ question, reply }) => [question, reply]));
  for (const [i, a] of sequence.entries()) {
    for (const [j, b] of sequence.entries()) {
      if (a.question !== b.question || a.reply !== b.reply) expect(writes[i]?.key, `turns ${i} and ${j}`).not.toBe(writes[j]?.key);
    }
  }
}

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 1, text: 1, reasoning: undefined },
};
const text = (reply: string): LanguageModelV4GenerateResult => ({
  content: [{ type: "text", text: reply }],
  finishReason: { unified: "stop", raw: "stop" },
  usage,
  warnings: [],
});
const toolCall: LanguageModelV4GenerateResult = {
  content: [{ type: "tool-call", toolCallId: "c1", toolName: "clock", input: "{}" }],
  finishReason: { unified: "tool-calls", raw: "tool_calls" },
  usage,
  warnings: [],
};
const steps = (turn: Turn) => (turn.toolLoop ? [toolCall, text(turn.reply)] : [text(turn.reply)]);

beforeAll(() => setTracingDisabled(true));

describe("every turn is written once, and different turns are never deduplicated", () => {
  test("AI SDK: single-message turns through generateText, with and without tool loops", async () => {
    await fc.assert(
      fc.asyncProperty(turns, async (sequence) => {
        const writes: Write[] = [];
        const model = new MockLanguageModelV4({ doGenerate: sequence.flatMap(steps) });
        const wrapped = withAiSdkMemory(model, { memory: recordingMemory(writes) });
        for (const turn of sequence) {
          await generateText({
            model: wrapped,
            prompt: turn.question,
            tools: { clock: tool({ inputSchema: z.object({}), execute: async () => "noon" }) },
            stopWhen: isStepCount(3),
            providerOptions: { memory: { userId: "alice", runId: "s-1" } },
          });
        }
        await checkWrites(sequence, writes);
      }),
      { numRuns: 25 },
    );
  });

  test("Mastra: turns with the caller's own message id through agent.generate, with and without tool loops", async () => {
    const clock = createTool({ id: "clock", description: "Time", inputSchema: z.object({}), execute: async () => "noon" });
    await fc.assert(
      fc.asyncProperty(turns, async (sequence) => {
        const writes: Write[] = [];
        const model = new MockLanguageModelV4({ doGenerate: sequence.flatMap(steps) });
        const agent = new MastraAgent({
          id: "assistant",
          name: "assistant",
          instructions: "You help.",
          model: model as unknown as ConstructorParameters<typeof MastraAgent>[0]["model"],
          tools: { clock },
        });
        const wrapped = withMastraMemory(agent, { memory: recordingMemory(writes) });
        const requestContext = new RequestContext([["userId", "alice"]]);
        for (const turn of sequence) {
          await wrapped.generate([{ id: "m-1", role: "user", content: turn.question }], { requestContext, maxSteps: 3 });
        }
        await checkWrites(sequence, writes);
      }),
      { numRuns: 15 },
    );
  });

  test("OpenAI Agents JS: runs sharing one RunContext, through withMemory and memoryRunConfig, with and without tool loops", async () => {
    const clock = agentsTool({ name: "clock", description: "Time", parameters: z.object({}), execute: async () => "noon" });
    await fc.assert(
      fc.asyncProperty(turns, fc.boolean(), async (sequence, throughRunner) => {
        const writes: Write[] = [];
        const model = new ScriptedModel(
          sequence.flatMap((turn) =>
            turn.toolLoop
              ? [[functionCall("clock", {}, { callId: "c1" })], [assistantMessage(turn.reply)]]
              : [[assistantMessage(turn.reply)]],
          ),
        );
        const agent = new Agent({ name: "assistant", instructions: "You help.", model, tools: [clock] });
        const memory = recordingMemory(writes);
        const context = new RunContext({ userId: "alice" });
        const runner = new Runner(memoryRunConfig({ memory }));
        const wrapped = withAgentsMemory(agent, { memory });
        for (const turn of sequence) {
          if (throughRunner) await runner.run(agent, turn.question, { context });
          else await run(wrapped, turn.question, { context });
        }
        await checkWrites(sequence, writes);
      }),
      { numRuns: 15 },
    );
  });
});
