import type { LanguageModelV4CallOptions, LanguageModelV4GenerateResult } from "@ai-sdk/provider";
import { Agent as MastraAgent } from "@mastra/core/agent";
import { RequestContext } from "@mastra/core/request-context";
import { Agent, Runner, run, setTracingDisabled } from "@openai/agents";
import { assistantMessage, ScriptedModel } from "@openai/agents/testing";
import { generateText } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { withMemory as withAiSdkMemory } from "../../integrations/ai-sdk/index.js";
import { withMemory as withMastraMemory } from "../../integrations/mastra/index.js";
import { memoryRunConfig, withMemory as withAgentsMemory } from "../../integrations/openai-agents/index.js";
import type { AdapterMemory } from "../../integrations/shared/options.js";
import { recallScope } from "../../integrations/shared/scope.js";
import { Memory, type Scope } from "../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../../src/testing/index.js";

// Every scope over two users, two agents and two runs holds one memory that names its scope. A call
// through each adapter, with a generated scope, must inject exactly the memories of the scope the
// adapter is allowed to read, and write the turn under the call's own scope. The read scope is the
// call's scope, with runId dropped (searchAcrossRuns) only when the call has a userId: without one,
// the run is the boundary, and one visitor of an agent never sees another visitor's memories.

const ids = {
  userId: ["u1", "u2", undefined],
  agentId: ["a1", "a2", undefined],
  runId: ["r1", "r2", undefined],
} as const;
const keys = ["userId", "agentId", "runId"] as const;

const scopes: Scope[] = [];
for (const userId of ids.userId) {
  for (const agentId of ids.agentId) {
    for (const runId of ids.runId) {
      const scope: Scope = {};
      if (userId) scope.userId = userId;
      if (agentId) scope.agentId = agentId;
      if (runId) scope.runId = runId;
      if (Object.keys(scope).length > 0) scopes.push(scope);
    }
  }
}

const nameOf = (scope: Scope) => keys.map((key) => scope[key] ?? "none").join("-");
const factOf = (scope: Scope) => `The bank PIN of ${nameOf(scope)} is 4321`;
const injectedIn = (text: string) => [...text.matchAll(/The bank PIN of ([\w-]+) is 4321/g)].map((match) => match[1] as string).sort();

/** The memories a call may be shown, from the rule itself rather than from the adapters' code. */
function allowed(call: Scope, searchAcrossRuns: boolean): string[] {
  const acrossRuns = searchAcrossRuns && call.userId !== undefined;
  return scopes
    .filter((stored) => keys.every((key) => call[key] === undefined || (key === "runId" && acrossRuns) || stored[key] === call[key]))
    .map(nameOf)
    .sort();
}

/** The invariant in its plainest words: a memory of another run is only ever shown inside the same user. */
function checkRunBoundary(call: Scope, injected: string[]): void {
  for (const name of injected) {
    const stored = scopes.find((scope) => nameOf(scope) === name) as Scope;
    for (const key of keys) {
      if (call[key] === undefined || stored[key] === call[key]) continue;
      expect(key, `${name} shown to ${nameOf(call)}`).toBe("runId");
      expect(stored.userId, `${name} shown to ${nameOf(call)}`).toBe(call.userId);
      expect(call.userId).toBeDefined();
    }
  }
}

const callScope = fc
  .record({ userId: fc.constantFrom(...ids.userId), agentId: fc.constantFrom(...ids.agentId), runId: fc.constantFrom(...ids.runId) })
  .map((picked) => Object.fromEntries(Object.entries(picked).filter(([, value]) => value !== undefined)) as Scope)
  .filter((scope) => Object.keys(scope).length > 0);

let memory: Memory;
const writes: Scope[] = [];
/** Searches the real memory; records the scope of each write instead of writing. */
const recording: AdapterMemory = {
  search: (query, options) => memory.search(query, options),
  enqueue: async (_messages, options) => {
    // profileAcrossRuns says where profile edits go, not where the turn is written.
    const {
      idempotencyKey: _key,
      profileAcrossRuns: _profile,
      ...scope
    } = options as Scope & {
      idempotencyKey?: string;
      profileAcrossRuns?: boolean;
    };
    writes.push(scope);
    return { id: "recorded", queued: true };
  },
};

beforeAll(async () => {
  setTracingDisabled(true);
  memory = new Memory({ embedder: deterministicEmbedder(), vectorStore: inMemoryStore(), historyStore: inMemoryHistory() });
  for (const scope of scopes) await memory.add(factOf(scope), scope);
});
afterAll(() => memory.close());

const question = "What is my bank PIN?";
const options = (searchAcrossRuns: boolean) => ({ memory: recording, limit: 100, threshold: 0, searchAcrossRuns });

async function checkCall(call: Scope, searchAcrossRuns: boolean, prompt: () => Promise<string>): Promise<void> {
  writes.length = 0;
  const injected = injectedIn(await prompt());
  checkRunBoundary(call, injected);
  expect(injected).toEqual(allowed(call, searchAcrossRuns));
  await expect.poll(() => writes.length).toBe(1);
  expect(writes).toEqual([call]);
}

function reply(text: string): LanguageModelV4GenerateResult {
  const usage = {
    inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: 1, text: 1, reasoning: undefined },
  };
  return { content: [{ type: "text", text }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] };
}
const systemOf = (call: LanguageModelV4CallOptions | undefined) =>
  (call?.prompt ?? []).flatMap((message) => (message.role === "system" ? [message.content] : [])).join("\n");

describe("the adapters read inside the scope they write: runs are widened only inside a userId", () => {
  test("recallScope drops runId only when the scope has a userId, and keeps every other id", () => {
    fc.assert(
      fc.property(callScope, fc.boolean(), (scope, searchAcrossRuns) => {
        const read = recallScope(scope, searchAcrossRuns);
        for (const key of keys) {
          if (key === "runId" && searchAcrossRuns && scope.userId !== undefined) expect(read.runId).toBeUndefined();
          else expect(read[key]).toBe(scope[key]);
        }
      }),
    );
    expect(recallScope({ agentId: "support-bot", runId: "visitor-A" }, true)).toEqual({ agentId: "support-bot", runId: "visitor-A" });
  });

  test("AI SDK: visitor B of an agent never receives visitor A's memories; fuzzed scopes through generateText", async () => {
    await fc.assert(
      fc.asyncProperty(callScope, fc.boolean(), async (call, searchAcrossRuns) => {
        const model = new MockLanguageModelV4({ doGenerate: reply("ok") });
        await checkCall(call, searchAcrossRuns, async () => {
          await generateText({
            model: withAiSdkMemory(model, options(searchAcrossRuns)),
            prompt: question,
            providerOptions: { memory: call },
          });
          return systemOf(model.doGenerateCalls[0]);
        });
      }),
      { numRuns: 40 },
    );
  });

  test("Mastra: visitor B of an agent never receives visitor A's memories; fuzzed scopes through agent.generate", async () => {
    await fc.assert(
      fc.asyncProperty(callScope, fc.boolean(), async (call, searchAcrossRuns) => {
        const model = new MockLanguageModelV4({ doGenerate: reply("ok") });
        const agent = new MastraAgent({
          id: "support-bot",
          name: "support-bot",
          instructions: "You help.",
          model: model as unknown as ConstructorParameters<typeof MastraAgent>[0]["model"],
        });
        const requestContext = new RequestContext();
        for (const [key, value] of Object.entries(call)) requestContext.set(key, value);
        await checkCall(call, searchAcrossRuns, async () => {
          await withMastraMemory(agent, options(searchAcrossRuns)).generate(question, { requestContext });
          return systemOf(model.doGenerateCalls[0]);
        });
      }),
      { numRuns: 40 },
    );
  });

  test("OpenAI Agents JS: visitor B of an agent never receives visitor A's memories; fuzzed scopes through run, withMemory and memoryRunConfig", async () => {
    await fc.assert(
      fc.asyncProperty(callScope, fc.boolean(), fc.boolean(), async (call, searchAcrossRuns, throughRunner) => {
        const model = new ScriptedModel([[assistantMessage("ok")]]);
        const agent = new Agent({ name: "support-bot", instructions: "You help.", model });
        await checkCall(call, searchAcrossRuns, async () => {
          if (throughRunner) await new Runner(memoryRunConfig(options(searchAcrossRuns))).run(agent, question, { context: { ...call } });
          else await run(withAgentsMemory(agent, options(searchAcrossRuns)), question, { context: { ...call } });
          return model.calls[0]?.request.systemInstructions ?? "";
        });
      }),
      { numRuns: 40 },
    );
  });

  test("the reported case: { agentId: 'support-bot', runId: 'visitor-B' } is not shown visitor A's PIN, by default", async () => {
    const model = new MockLanguageModelV4({ doGenerate: reply("ok") });
    const wrapped = withAiSdkMemory(model, { memory: recording });
    await memory.add("My bank PIN is 9876", { agentId: "support-bot", runId: "visitor-A" });
    await generateText({
      model: wrapped,
      prompt: "What is my bank PIN?",
      providerOptions: { memory: { agentId: "support-bot", runId: "visitor-B" } },
    });
    expect(JSON.stringify(model.doGenerateCalls[0]?.prompt)).not.toContain("PIN is 9876");
  });
});
