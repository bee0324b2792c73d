import {
  Agent,
  type CallModelInputFilter,
  type InputGuardrail,
  MemorySession,
  type ModelRequest,
  RunContext,
  Runner,
  RunState,
  run,
  type StreamEvent,
  setTracingDisabled,
  tool,
} from "@openai/agents";
import {
  assistantMessage,
  functionCall,
  modelError,
  modelResponder,
  modelStreamResponder,
  ScriptedModel,
  type ScriptedModelInput,
} from "@openai/agents/testing";
import { beforeAll, describe, expect, test, vi } from "vitest";
import { z } from "zod";
import { memoryGuardrailName, memoryRunConfig, withMemory } from "../../integrations/openai-agents/index.js";
import { ConfigError, type EngramError, type Memory, MissingScopeError, memoryBlockTag } from "../../src/index.js";
import { memoriesClosedAfterEach } from "../support/memories.js";
import { type AdapterDriver, type CallScope, type ScriptedStep, testAdapterScenarios } from "./adapter-scenarios.js";

beforeAll(() => setTracingDisabled(true));

function scripted(step: ScriptedStep, index: number): ScriptedModelInput {
  if ("error" in step) return modelError(new Error(step.error));
  if ("toolCall" in step) {
    return [
      ...(step.text === undefined ? [] : [assistantMessage(step.text)]),
      functionCall("weather", step.toolCall, { callId: `call-${index}` }),
    ];
  }
  if ("endless" in step) {
    return modelStreamResponder(async function* (): AsyncGenerator<StreamEvent> {
      yield { type: "response_started" };
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        yield { type: "output_text_delta", delta: "more " };
      }
    });
  }
  return [assistantMessage(step.text)];
}

/** The OpenAI Agents adapter, wrapping the agent (`withMemory`) or the runner (`memoryRunConfig`). */
function openAiAgents(how: "withMemory" | "memoryRunConfig"): AdapterDriver {
  return {
    name: `OpenAI Agents (${how} with run / stream: true)`,
    scopeHint: /context: \{ userId: "alice" \}/,
    recallsEachStep: true,
    setup({ memory, adapter, instructions, steps, onTool }) {
      const model = new ScriptedModel(steps.map(scripted));
      const weather = tool({
        name: "weather",
        description: "Weather of a city",
        parameters: z.object({ city: z.string() }),
        execute: async () => {
          await onTool?.();
          return "sunny";
        },
      });
      const agent = new Agent({ name: "assistant", instructions, model, tools: [weather] });
      const options = { memory, ...adapter };
      const runner = new Runner(how === "memoryRunConfig" ? memoryRunConfig(options) : {});
      const target = how === "withMemory" ? withMemory(agent, options) : agent;
      // One RunContext per conversation, as an app keeps it.
      const contexts = new Map<CallScope, RunContext<CallScope>>();
      const context = (scope: CallScope | undefined) => {
        if (!scope) return {};
        const runContext = contexts.get(scope) ?? new RunContext(scope);
        contexts.set(scope, runContext);
        return { context: runContext };
      };
      return {
        calls: () =>
          model.calls.map((call) => ({
            instructions: call.request.systemInstructions ?? "",
            input: JSON.stringify(call.request.input),
            streamed: call.streamed,
          })),
        async generate(input, scope) {
          return String((await runner.run(target, input, context(scope))).finalOutput);
        },
        async stream(input, scope) {
          const streamed = await runner.run(target, input, { ...context(scope), stream: true });
          let text = "";
          try {
            for await (const chunk of streamed.toTextStream()) text += chunk;
          } finally {
            await streamed.completed;
          }
          return text;
        },
        async streamAborted(input, scope) {
          const abort = new AbortController();
          const streamed = await runner.run(target, input, { ...context(scope), stream: true, signal: abort.signal });
          try {
            for await (const _ of streamed.toTextStream()) abort.abort();
            await streamed.completed;
          } catch {
            // An aborted run may end in an AbortError.
          }
          expect(streamed.cancelled).toBe(true);
        },
      };
    },
  };
}

testAdapterScenarios(openAiAgents("withMemory"));
testAdapterScenarios(openAiAgents("memoryRunConfig"));

const newMemory = memoriesClosedAfterEach();

const instructionsOf = (model: ScriptedModel) => model.calls.map((call) => call.request.systemInstructions ?? "");
const inputOf = (request: ModelRequest) => JSON.stringify(request.input);
const isMissingScope = (error: unknown) => MissingScopeError.isInstance(error);

describe("withMemory(agent): what only the OpenAI Agents adapter does", () => {
  test("keeps the agent's own instructions function, and its listeners still hear the clone's events", async () => {
    const memory = newMemory();
    await memory.add("I like tea", { userId: "alice" });
    const model = new ScriptedModel([[assistantMessage("Tea.")]]);
    const original = new Agent<{ userId: string }>({
      name: "assistant",
      instructions: (runContext) => `Address the user as ${runContext.context.userId}.`,
      model,
    });
    const heard: string[] = [];
    original.on("agent_end", (_context, output) => heard.push(output));
    const agent = withMemory(original, { memory, threshold: 0 });
    expect(agent).not.toBe(original);

    await run(agent, "What do I like to drink?", { context: { userId: "alice" } });
    expect(instructionsOf(model)[0]).toMatch(/^Address the user as alice\.\n\n<engram-memories/);
    expect(heard).toEqual(["Tea."]);
    expect(original.instructions).toBeTypeOf("function");
  });

  test("a run that reuses the RunContext of a failed run searches its own question, not the failed run's", async () => {
    const memory = newMemory();
    const search = vi.spyOn(memory, "search");
    const model = new ScriptedModel([modelError(new Error("model down")), [assistantMessage("In Lisbon.")]]);
    const agent = withMemory(new Agent({ name: "assistant", instructions: "x", model }), { memory, threshold: 0 });
    const context = new RunContext({ userId: "alice" });
    await expect(run(agent, "What do I drink?", { context })).rejects.toThrow(/model down/);
    await run(agent, "Where do I live?", { context });
    expect(search.mock.calls.map(([query]) => query)).toEqual(["What do I drink?", "Where do I live?"]);
  });
});

describe("memoryRunConfig", () => {
  function handoffAgents(memory: Memory) {
    const billingModel = new ScriptedModel([[assistantMessage("Your plan renews on the 1st.")]]);
    const billing = new Agent({ name: "billing", instructions: "You handle billing.", model: billingModel });
    const triageModel = new ScriptedModel([[functionCall("transfer_to_billing", {}, { callId: "h1" })]]);
    const triage = Agent.create({ name: "triage", instructions: "You route questions.", model: triageModel, handoffs: [billing] });
    return { memory, billing, billingModel, triage, triageModel };
  }

  test("covers a handoff: every agent sees the block, one search and one write per user turn", async () => {
    const memory = newMemory();
    await memory.add("I am on the Pro plan", { userId: "alice" });
    const search = vi.spyOn(memory, "search");
    const enqueue = vi.spyOn(memory, "enqueue");
    const { triage, triageModel, billingModel } = handoffAgents(memory);
    const runner = new Runner(memoryRunConfig({ memory, threshold: 0 }));

    const result = await runner.run(triage, "When does my plan renew?", { context: { userId: "alice" } });

    expect(result.finalOutput).toBe("Your plan renews on the 1st.");
    expect(result.lastAgent?.name).toBe("billing");
    expect(instructionsOf(triageModel)[0]).toMatch(/^You route questions\.\n\n<engram-memories[\s\S]*Pro plan/);
    expect(instructionsOf(billingModel)[0]).toMatch(/^You handle billing\.\n\n<engram-memories[\s\S]*Pro plan/);
    for (const call of [...triageModel.calls, ...billingModel.calls]) expect(inputOf(call.request)).not.toContain(memoryBlockTag);
    expect(search).toHaveBeenCalledTimes(1);
    expect(enqueue).toHaveBeenCalledTimes(1);
    expect(enqueue.mock.calls[0]?.[0]).toEqual([
      { role: "user", content: "When does my plan renew?" },
      { role: "assistant", content: "Your plan renews on the 1st." },
    ]);
    expect(result.inputGuardrailResults.map((r) => [r.guardrail.name, r.output.tripwireTriggered])).toEqual([[memoryGuardrailName, false]]);
    await memory.flush();
    expect((await memory.getAll({ userId: "alice" })).results.map((r) => r.memory)).toContain("Your plan renews on the 1st.");
  });

  test("a handoff run streams too", async () => {
    const memory = newMemory();
    await memory.add("I am on the Pro plan", { userId: "alice" });
    const { triage, billingModel } = handoffAgents(memory);
    const runner = new Runner(memoryRunConfig({ memory, threshold: 0 }));
    const streamed = await runner.run(triage, "When does my plan renew?", { stream: true, context: { userId: "alice" } });
    await streamed.completed;
    expect(streamed.finalOutput).toBe("Your plan renews on the 1st.");
    expect(instructionsOf(billingModel)[0]).toContain("Pro plan");
    await vi.waitFor(async () => expect((await memory.flush()).processed).toBe(1));
  });

  test("a session stores the conversation, never the memories", async () => {
    const memory = newMemory();
    await memory.add("I am vegetarian", { userId: "alice" });
    const session = new MemorySession();
    const model = new ScriptedModel([[assistantMessage("Try a lentil curry.")], [assistantMessage("Then a chickpea one.")]]);
    const agent = new Agent({ name: "chef", instructions: "You suggest dinners.", model });
    const runner = new Runner(memoryRunConfig({ memory, threshold: 0 }));
    await runner.run(agent, "What should I cook tonight?", { session, context: { userId: "alice" } });
    await runner.run(agent, "Something else?", { session, context: { userId: "alice" } });

    const stored = JSON.stringify(await session.getItems());
    expect(stored).toContain("What should I cook tonight?");
    expect(stored).toContain("Then a chickpea one.");
    expect(stored).not.toContain(memoryBlockTag);
    expect(stored).not.toContain("vegetarian");
    expect(instructionsOf(model)[1]).toContain("vegetarian");
  });

  test("keeps the Runner's own filter and guardrails, and with withMemory too a run is searched and written once", async () => {
    const memory = newMemory();
    // Said two hours before the run: the run's message is a memory of its own.
    await memory.add("I like jazz", { userId: "alice", timestamp: new Date(Date.now() - 7_200_000) });
    const search = vi.spyOn(memory, "search");
    const enqueue = vi.spyOn(memory, "enqueue");
    const seen: string[] = [];
    const ownFilter: CallModelInputFilter = ({ modelData }) => {
      seen.push("filter");
      return { ...modelData, instructions: `${modelData.instructions} Answer in French.` };
    };
    const ownGuardrail: InputGuardrail = {
      name: "own",
      execute: async () => {
        seen.push("guardrail");
        return { tripwireTriggered: false, outputInfo: null };
      },
    };
    const model = new ScriptedModel([
      modelResponder(({ request }) => [assistantMessage(request.systemInstructions?.includes("French") ? "J'aime le jazz." : "no")]),
    ]);
    const agent = withMemory(new Agent({ name: "dj", instructions: "You pick music.", model }), { memory, threshold: 0 });
    const runner = new Runner(
      memoryRunConfig({ memory, threshold: 0 }, { callModelInputFilter: ownFilter, inputGuardrails: [ownGuardrail] }),
    );

    const result = await runner.run(agent, "What music do I like?", { context: { userId: "alice" } });

    expect(result.finalOutput).toBe("J'aime le jazz.");
    expect(seen.sort()).toEqual(["filter", "guardrail"]);
    const [instructions] = instructionsOf(model);
    expect(instructions?.match(new RegExp(`<${memoryBlockTag}`, "g"))).toHaveLength(1);
    expect(search).toHaveBeenCalledTimes(1);
    // Both queue the run's turn under the same idempotency key: the outbox keeps one.
    expect(enqueue).toHaveBeenCalledTimes(2);
    expect(new Set(enqueue.mock.calls.map(([, options]) => options.idempotencyKey)).size).toBe(1);
    expect((await memory.flush()).processed).toBe(1);
    expect((await memory.getAll({ userId: "alice" })).results.map((r) => r.memory).sort()).toEqual([
      "I like jazz",
      "J'aime le jazz.",
      "What music do I like?",
    ]);
  });
});

describe("tool approvals: a run interrupted, then resumed", () => {
  const refundTool = () =>
    tool({
      name: "refund",
      description: "Refund an order",
      parameters: z.object({ order: z.string() }),
      needsApproval: true,
      execute: async ({ order }) => `order ${order} refunded`,
    });
  const refundModel = () =>
    new ScriptedModel([[functionCall("refund", { order: "7" }, { callId: "r1" })], [assistantMessage("Order 7 is refunded.")]]);
  const blockCount = (instructions: string) => instructions.match(new RegExp(`<${memoryBlockTag}`, "g"))?.length ?? 0;

  async function setup() {
    const memory = newMemory();
    // Said two hours before the run: the run's message is a memory of its own.
    await memory.add("My last order is order 7", { userId: "alice", timestamp: new Date(Date.now() - 7_200_000) });
    const search = vi.spyOn(memory, "search");
    const enqueue = vi.spyOn(memory, "enqueue");
    const model = refundModel();
    const agent = new Agent({ name: "support", instructions: "You handle refunds.", model, tools: [refundTool()] });
    return { memory, search, enqueue, model, agent };
  }

  /** Runs until the approval, checks nothing was written, approves; `restore` serializes the state first. */
  async function interruptAndApprove(
    runner: Runner,
    agent: Agent<unknown, "text">,
    memory: Memory,
    enqueue: ReturnType<typeof vi.spyOn>,
    restore: boolean,
  ) {
    const first = await runner.run(agent, "Please refund my last order", { context: { userId: "alice" } });
    expect(first.interruptions.map((item) => item.name)).toEqual(["refund"]);
    expect(enqueue).not.toHaveBeenCalled();
    expect((await memory.flush()).processed).toBe(0);
    type State = RunState<unknown, Agent<unknown, "text">>;
    const state: State = restore ? await RunState.fromString(agent, first.state.toString()) : (first.state as State);
    if (restore) expect(state._context).not.toBe(first.state._context);
    for (const item of state.getInterruptions()) state.approve(item);
    return state;
  }

  async function expectWrittenOnce(memory: Memory) {
    expect((await memory.flush()).processed).toBe(1);
    expect((await memory.getAll({ userId: "alice" })).results.map((r) => r.memory).sort()).toEqual([
      "My last order is order 7",
      "Order 7 is refunded.",
      "Please refund my last order",
    ]);
  }

  for (const restore of [false, true]) {
    const how = restore ? "restored with RunState.fromString (a new RunContext)" : "resumed from result.state";
    test(`memoryRunConfig: nothing is written at the interruption; ${how}, the turn is written once`, async () => {
      const { memory, search, enqueue, model, agent } = await setup();
      const runner = new Runner(memoryRunConfig({ memory, threshold: 0 }));
      const state = await interruptAndApprove(runner, agent, memory, enqueue, restore);

      const result = await runner.run(agent, state);

      expect(result.finalOutput).toBe("Order 7 is refunded.");
      expect(model.calls).toHaveLength(2);
      for (const instructions of instructionsOf(model)) {
        expect(blockCount(instructions)).toBe(1);
        expect(instructions).toContain("order 7");
      }
      expect(search).toHaveBeenCalledTimes(1);
      expect(enqueue).toHaveBeenCalledTimes(1);
      expect(enqueue.mock.calls[0]?.[0]).toEqual([
        { role: "user", content: "Please refund my last order" },
        { role: "assistant", content: "Order 7 is refunded." },
      ]);
      await expectWrittenOnce(memory);
    });
  }

  test("withMemory: nothing is written at the interruption; resumed from result.state, the turn is written once", async () => {
    const { memory, search, enqueue, model, agent } = await setup();
    const wrapped = withMemory(agent, { memory, threshold: 0 });
    const runner = new Runner();
    const state = await interruptAndApprove(runner, wrapped, memory, enqueue, false);

    const result = await run(wrapped, state);

    expect(result.finalOutput).toBe("Order 7 is refunded.");
    for (const instructions of instructionsOf(model)) expect(blockCount(instructions)).toBe(1);
    expect(search).toHaveBeenCalledTimes(1);
    expect(enqueue).toHaveBeenCalledTimes(1);
    await expectWrittenOnce(memory);
  });

  test("withMemory cannot see the input of a run restored with RunState.fromString: it writes nothing and says so through onError", async () => {
    const { memory, enqueue, model, agent } = await setup();
    const errors: [EngramError, string][] = [];
    const wrapped = withMemory(agent, { memory, threshold: 0, onError: (error, { operation }) => errors.push([error, operation]) });
    const runner = new Runner();
    const state = await interruptAndApprove(runner, wrapped, memory, enqueue, true);

    const result = await runner.run(wrapped, state);

    expect(result.finalOutput).toBe("Order 7 is refunded.");
    expect(blockCount(instructionsOf(model)[1] ?? "")).toBe(0);
    expect(enqueue).not.toHaveBeenCalled();
    expect(errors).toHaveLength(1);
    expect(ConfigError.isInstance(errors[0]?.[0])).toBe(true);
    expect(errors[0]?.[0].message).toMatch(/memoryRunConfig/);
    expect(errors[0]?.[1]).toBe("remember");
  });

  test("withMemory and memoryRunConfig together: a restored run gets one block per call and is written once, without a false alarm", async () => {
    const { memory, enqueue, model, agent } = await setup();
    const onError = vi.fn();
    const wrapped = withMemory(agent, { memory, threshold: 0, onError });
    const runner = new Runner(memoryRunConfig({ memory, threshold: 0, onError }));
    const state = await interruptAndApprove(runner, wrapped, memory, enqueue, true);

    const result = await runner.run(wrapped, state);

    expect(result.finalOutput).toBe("Order 7 is refunded.");
    for (const instructions of instructionsOf(model)) expect(blockCount(instructions)).toBe(1);
    expect(enqueue).toHaveBeenCalledTimes(1);
    expect(onError).not.toHaveBeenCalled();
    await expectWrittenOnce(memory);
  });

  test("a restored run streams too, and is written once", async () => {
    const { memory, enqueue, model, agent } = await setup();
    const runner = new Runner(memoryRunConfig({ memory, threshold: 0 }));
    const state = await interruptAndApprove(runner, agent, memory, enqueue, true);

    const streamed = await runner.run(agent, state, { stream: true });
    await streamed.completed;

    expect(streamed.finalOutput).toBe("Order 7 is refunded.");
    expect(model.calls[1]?.streamed).toBe(true);
    await vi.waitFor(() => expect(enqueue).toHaveBeenCalledTimes(1));
    await expectWrittenOnce(memory);
  });

  test("a run restored without a scope is refused with MissingScopeError and the model is not called again", async () => {
    for (const wrap of [true, false]) {
      const { memory, enqueue, model, agent } = await setup();
      const target = wrap ? withMemory(agent, { memory, threshold: 0 }) : agent;
      const runner = new Runner(wrap ? {} : memoryRunConfig({ memory, threshold: 0 }));
      const first = await runner.run(target, "Please refund my last order", { context: { userId: "alice" } });
      const state = await RunState.fromStringWithContext(target, first.state.toString(), new RunContext({ tenant: "acme" }), {
        contextStrategy: "replace",
      });
      for (const item of state.getInterruptions()) state.approve(item);

      await expect(runner.run(target, state)).rejects.toSatisfy(isMissingScope);
      expect(model.calls).toHaveLength(1);
      expect(enqueue).not.toHaveBeenCalled();
    }
  });
});
