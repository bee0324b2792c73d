import type { Agent, AgentInputItem, AgentOutputType, RunContext } from "@openai/agents";
import { ConfigError, hasMemoryBlock, type Scope } from "../../src/index.js";
import { parseConfig } from "../../src/validation.js";
import { adapterOptionsSchema, type MemoryAdapterOptions, resolveAdapterOptions } from "../shared/options.js";
import { TurnMemory, turnKey } from "../shared/turn.js";
import { latestUserText, runScope, runWriteKey, withBlock, writtenByRunConfig } from "./run-turn.js";

const restoredRunMessage =
  "withMemory() did not write a run restored with RunState.fromString: the restored run has a new RunContext and no agent hook " +
  "carries its input. Run restored states with new Runner(memoryRunConfig({ memory })): it writes them.";

// The run and its question: a run that reuses the RunContext of one that failed searches anew.
const recallKey = (scope: Scope, runContext: object, query: string | undefined) =>
  turnKey(scope, [runWriteKey(scope, runContext), query ?? null]);

function isAgent(value: unknown): value is Agent<unknown, AgentOutputType> {
  const candidate = value as Partial<Record<"clone" | "on" | "emit", unknown>> | null;
  return (
    candidate != null && typeof candidate.clone === "function" && typeof candidate.on === "function" && typeof candidate.emit === "function"
  );
}

/**
 * Gives an OpenAI Agents JS agent long-term memory: the one line. Returns a clone of the agent
 * (the original is not changed, and its own event listeners still hear the clone's events) whose
 * instructions end with ONE labelled memory block, searched with the latest user input of the run
 * (once per run: the steps of a tool loop share it). After the run's final output, its
 * `agent_end` hook queues the user's input and the output for the memory's durable write-behind;
 * the result never waits for it.
 *
 * The scope is read from the run context (`RunContext.context`: `userId` / `agentId` / `runId`);
 * without one the run rejects with MissingScopeError and the model is never called.
 *
 * The turn is written when this agent gives the final output. For runs that hand off to other
 * agents, give the Runner `memoryRunConfig` instead: it covers every agent of a run.
 *
 * A run interrupted for tool approvals (`result.interruptions`) writes nothing until it is resumed
 * with `run(agent, result.state)` and this agent answers; then the turn is written once. A state
 * restored with `RunState.fromString` goes on in a new RunContext, and the SDK gives an agent's
 * hooks no way to see that run's input (a resumed turn starts no agent): such a run is not written,
 * its model calls get no memory block, and `onError` gets a ConfigError. Run restored states
 * through `new Runner(memoryRunConfig({ memory }))`, which writes them (with or without this wrapper).
 *
 * @example
 * const agent = withMemory(existingAgent, { memory });
 * await run(agent, "hi", { context: { userId: "alice" } });
 */
export function withMemory<TContext, TOutput extends AgentOutputType>(
  agent: Agent<TContext, TOutput>,
  options: MemoryAdapterOptions,
): Agent<TContext, TOutput> {
  if (!isAgent(agent)) throw new ConfigError({ message: "withMemory() takes an Agent of @openai/agents." });
  const turns = new TurnMemory(resolveAdapterOptions(parseConfig(adapterOptionsSchema, options, "withMemory")));
  const inputs = new WeakMap<RunContext<TContext>, AgentInputItem[]>();
  const own = agent.instructions;

  const clone = agent.clone({
    instructions: async (runContext, self) => {
      const scope = runScope(runContext.context);
      const base = typeof own === "function" ? await own(runContext, self) : own;
      if (hasMemoryBlock(base)) return base;
      const query = latestUserText(inputs.get(runContext));
      const { block } = await turns.recall({ scope, key: recallKey(scope, runContext, query), query });
      return withBlock(base, block) ?? "";
    },
  });

  // agent_start comes before the instructions are read, with the run's input.
  clone.on("agent_start", (runContext, _agent, turnInput) => {
    if (turnInput) inputs.set(runContext, turnInput);
  });
  clone.on("agent_end", (runContext, output) => {
    const input = inputs.get(runContext);
    inputs.delete(runContext);
    let scope: Scope;
    try {
      scope = runScope(runContext.context);
    } catch {
      return; // the run was refused before the model was called
    }
    if (input === undefined) {
      // A run restored with RunState.fromString goes on in a new RunContext, and a resumed turn
      // starts no agent: no hook of this agent sees the run's input.
      const written = writtenByRunConfig.has(runContext) || writtenByRunConfig.has(runContext.context as object);
      if (turns.options.remember && !written) turns.report(new ConfigError({ message: restoredRunMessage }), "remember");
      return;
    }
    const user = latestUserText(input);
    turns.remember({
      scope,
      key: recallKey(scope, runContext, user),
      call: runWriteKey(scope, runContext),
      user,
      assistant: output.trim(),
    });
  });

  // A clone starts with no listeners: pass its events on to the original agent's own.
  type Emit = (type: string, ...args: unknown[]) => boolean;
  const emitOwn = clone.emit.bind(clone) as Emit;
  const emitOriginal = agent.emit.bind(agent) as Emit;
  clone.emit = ((type: string, ...args: unknown[]) => {
    const heard = emitOwn(type, ...args);
    return emitOriginal(type, ...args) || heard;
  }) as typeof clone.emit;
  return clone;
}
