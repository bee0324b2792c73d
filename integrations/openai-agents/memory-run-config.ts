import type { Agent, AgentOutputType, CallModelInputFilter, InputGuardrail, RunConfig, RunContext } from "@openai/agents";
import { hasMemoryBlock, type Scope } from "../../src/index.js";
import { parseConfig } from "../../src/validation.js";
import { adapterOptionsSchema, type MemoryAdapterOptions, resolveAdapterOptions } from "../shared/options.js";
import { TurnMemory } from "../shared/turn.js";
import { conversationKey, latestUserText, type RunInput, runScope, runWriteKey, withBlock, writtenByRunConfig } from "./run-turn.js";

/** The name of the input guardrail `memoryRunConfig` adds (it never trips). */
export const memoryGuardrailName = "engram-memory";

type RunEnd = (runContext: RunContext<unknown>, output: string) => void;
type Ends = Map<object, RunEnd>;

// A run's pending write per memoryRunConfig, keyed by its RunContext: agents get ONE agent_end
// listener however many configs see them, and a finished or abandoned run leaves nothing behind.
const pendingEnds = new WeakMap<object, Ends>();
// The same, noted at each model call and keyed by the app's context object (all a model-call
// filter is given). A run restored with RunState.fromString has only this one: input guardrails
// run when a run starts, and the restored run goes on in a new RunContext around a new context.
const modelCallEnds = new WeakMap<object, Ends>();
const watchedAgents = new WeakSet<object>();

const isObject = (value: unknown): value is object => value != null && typeof value === "object";

function watchAgentEnd(agent: Agent<unknown, AgentOutputType>): void {
  if (watchedAgents.has(agent)) return;
  watchedAgents.add(agent);
  agent.on("agent_end", (runContext, output) => {
    const app = isObject(runContext.context) ? runContext.context : undefined;
    const fromModelCalls = app && modelCallEnds.get(app);
    const fromGuardrail = pendingEnds.get(runContext);
    if (app) modelCallEnds.delete(app);
    pendingEnds.delete(runContext);
    // The run's own input, noted by the guardrail, wins over what a model call saw.
    const ends = new Map([...(fromModelCalls ?? []), ...(fromGuardrail ?? [])]);
    for (const end of ends.values()) end(runContext, output);
  });
}

/**
 * Runner configuration that gives every agent of a run long-term memory, handoff targets
 * included. Pass it to `new Runner(...)`; `config` is the rest of the Runner's configuration (its
 * own `callModelInputFilter` runs first, its `inputGuardrails` are kept).
 *
 * - `callModelInputFilter`: before each model call it reads the scope from the run context
 *   (`userId` / `agentId` / `runId`; none → the run rejects with MissingScopeError and the model is
 *   never called), searches with the latest user input (once per user turn: tool loops and
 *   handoffs share the search) and appends ONE labelled block to the instructions. The input items
 *   are never changed, so a session never stores memories as chat turns.
 * - an input guardrail named "engram-memory" that never trips: it notes the run's input, and once
 *   the run's final output is out (the final agent's `agent_end`), the user input and the output
 *   are queued for the memory's durable write-behind.
 *
 * A run interrupted for tool approvals (`result.interruptions`) writes nothing until it is resumed
 * and the final agent answers; then its turn (the run's input and the final output) is written
 * once. That holds for `runner.run(agent, result.state)` and for a state restored with
 * `RunState.fromString` (a new RunContext, even in another process): there the input is taken
 * from the first model call after the resume, which carries the original input.
 *
 * @example
 * const runner = new Runner(memoryRunConfig({ memory }));
 * await runner.run(triageAgent, "hi", { context: { userId: "alice" } });
 */
export function memoryRunConfig(options: MemoryAdapterOptions, config: Partial<RunConfig> = {}): Partial<RunConfig> {
  const turns = new TurnMemory(resolveAdapterOptions(parseConfig(adapterOptionsSchema, options, "memoryRunConfig")));
  const owner = {};
  const { callModelInputFilter: ownFilter, inputGuardrails = [] } = config;

  // Notes a run's input under `holder`, to be written with the run's final output.
  const expectEnd = (registry: WeakMap<object, Ends>, holder: object, scope: Scope, input: RunInput) => {
    const user = latestUserText(input);
    const ends = registry.get(holder) ?? new Map<object, RunEnd>();
    registry.set(holder, ends);
    if (turns.options.remember) writtenByRunConfig.add(holder);
    ends.set(owner, (runContext, output) =>
      turns.remember({
        scope,
        user,
        assistant: output.trim(),
        key: conversationKey(scope, input),
        call: runWriteKey(scope, runContext),
      }),
    );
  };

  const guardrail: InputGuardrail = {
    name: memoryGuardrailName,
    runInParallel: false,
    async execute({ input, context }) {
      let scope: Scope;
      try {
        scope = runScope(context.context);
      } catch {
        // The model-call filter refuses the run with the error.
        return { tripwireTriggered: false, outputInfo: null };
      }
      expectEnd(pendingEnds, context, scope, input);
      return { tripwireTriggered: false, outputInfo: null };
    },
  };

  const callModelInputFilter: CallModelInputFilter = async (args) => {
    const scope = runScope(args.context);
    watchAgentEnd(args.agent);
    const { input } = args.modelData;
    if (isObject(args.context)) expectEnd(modelCallEnds, args.context, scope, input);
    const data = ownFilter ? await ownFilter(args) : args.modelData;
    if (data.instructions !== undefined && hasMemoryBlock(data.instructions)) return data;
    const { block } = await turns.recall({ scope, query: latestUserText(input), key: conversationKey(scope, input) });
    return { ...data, instructions: withBlock(data.instructions, block) };
  };
  if (ownFilter?.preserveInputIdentity) callModelInputFilter.preserveInputIdentity = true;

  return { ...config, callModelInputFilter, inputGuardrails: [...inputGuardrails, guardrail] };
}
