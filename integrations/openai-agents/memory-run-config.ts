import type { Agent, AgentOutputType, CallModelInputFilter, InputGuardrail, RunConfig } from "@openai/agents";
import { hasMemoryBlock, type Scope } from "../../src/index.js";
import { adapterOptionsSchema, type MemoryAdapterOptions, parseAdapterOptions, resolveAdapterOptions } from "../shared/options.js";
import { TurnMemory } from "../shared/turn.js";
import { conversationKey, latestUserText, runScope, runWriteKey, withBlock } from "./run-turn.js";

/** The name of the input guardrail `memoryRunConfig` adds (it never trips). */
export const memoryGuardrailName = "engram-memory";

type RunEnd = (output: string) => void;

// A run's pending write per memoryRunConfig, keyed by its RunContext: agents get ONE agent_end
// listener however many configs see them, and a finished or abandoned run leaves nothing behind.
const pendingEnds = new WeakMap<object, Map<object, RunEnd>>();
const watchedAgents = new WeakSet<object>();

function watchAgentEnd(agent: Agent<unknown, AgentOutputType>): void {
  if (watchedAgents.has(agent)) return;
  watchedAgents.add(agent);
  agent.on("agent_end", (runContext, output) => {
    const ends = pendingEnds.get(runContext);
    if (!ends) return;
    pendingEnds.delete(runContext);
    for (const end of ends.values()) end(output);
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
 * @example
 * const runner = new Runner(memoryRunConfig({ memory }));
 * await runner.run(triageAgent, "hi", { context: { userId: "alice" } });
 */
export function memoryRunConfig(options: MemoryAdapterOptions, config: Partial<RunConfig> = {}): Partial<RunConfig> {
  const turns = new TurnMemory(resolveAdapterOptions(parseAdapterOptions(adapterOptionsSchema, options, "memoryRunConfig")));
  const owner = {};
  const { callModelInputFilter: ownFilter, inputGuardrails = [] } = config;

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
      const user = latestUserText(input);
      const ends = pendingEnds.get(context) ?? new Map<object, RunEnd>();
      pendingEnds.set(context, ends);
      ends.set(owner, (output) =>
        turns.remember({
          scope,
          user,
          assistant: output.trim(),
          key: conversationKey(scope, input),
          idempotencyKey: runWriteKey(scope, context),
        }),
      );
      return { tripwireTriggered: false, outputInfo: null };
    },
  };

  const callModelInputFilter: CallModelInputFilter = async (args) => {
    const scope = runScope(args.context);
    watchAgentEnd(args.agent);
    const data = ownFilter ? await ownFilter(args) : args.modelData;
    if (data.instructions !== undefined && hasMemoryBlock(data.instructions)) return data;
    const { input } = args.modelData;
    const { block } = await turns.recall({ scope, query: latestUserText(input), key: conversationKey(scope, input) });
    return { ...data, instructions: withBlock(data.instructions, block) };
  };
  if (ownFilter?.preserveInputIdentity) callModelInputFilter.preserveInputIdentity = true;

  return { ...config, callModelInputFilter, inputGuardrails: [...inputGuardrails, guardrail] };
}
