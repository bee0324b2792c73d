import type { Agent, AgentConfig } from "@mastra/core/agent";
import type { InputProcessorOrWorkflow, OutputProcessorOrWorkflow } from "@mastra/core/processors";
import type { RequestContext } from "@mastra/core/request-context";
import { ConfigError } from "../../src/index.js";
import type { TurnMemory } from "../shared/turn.js";
import { callScope, memoryIdsOf } from "./call-scope.js";
import { createMemoryProcessor, type MemoryProcessorOptions, turnMemoryFor } from "./memory-processor.js";

// biome-ignore lint/suspicious/noExplicitAny: any agent, whatever its id, tools, output and context types (as Mastra's own types write it).
type AnyAgent = Agent<any, any, any, any>;
// biome-ignore lint/suspicious/noExplicitAny: the config of any agent.
type AnyAgentConfig = AgentConfig<any, any, any, any>;

/** The options of `generate` / `stream` this wrapper reads or extends. */
interface CallOptions {
  requestContext?: RequestContext;
  memory?: unknown;
  inputProcessors?: InputProcessorOrWorkflow[];
  outputProcessors?: OutputProcessorOrWorkflow[];
}

type Call = (messages: unknown, options?: CallOptions) => Promise<unknown>;

type ProcessorList<T> = T[] | ((context: { requestContext: RequestContext }) => T[] | Promise<T[]>);

function appendProcessor<T>(list: ProcessorList<T> | undefined, processor: T): ProcessorList<T> {
  if (list === undefined) return [processor];
  if (typeof list === "function") return async (context) => [...(await list(context)), processor];
  return [...list, processor];
}

function isAgent(value: unknown): value is AnyAgent {
  const candidate = value as Partial<Record<"generate" | "stream" | "listConfiguredInputProcessors", unknown>> | null;
  return (
    candidate != null &&
    typeof candidate.generate === "function" &&
    typeof candidate.stream === "function" &&
    typeof candidate.listConfiguredInputProcessors === "function"
  );
}

/**
 * Wraps `generate` and `stream` of an agent: each call first checks its scope (so a call without
 * one throws MissingScopeError before the run starts), then runs with the agent's own processors
 * plus a memory processor for this call. Everything else is the agent itself.
 */
function wrapAgent<TAgent extends AnyAgent>(agent: TAgent, turns: TurnMemory): TAgent {
  const wrap = (method: "generate" | "stream"): Call => {
    const original = agent[method].bind(agent) as Call;
    return async (messages, options = {}) => {
      const defaults = ((await agent.getDefaultOptions?.({ requestContext: options.requestContext })) ?? {}) as CallOptions;
      const requestContext = options.requestContext ?? defaults.requestContext;
      const ids = memoryIdsOf(options.memory ?? defaults.memory);
      callScope(`agent.${method}()`, requestContext, ids);
      let recallFailure: unknown;
      const processor = createMemoryProcessor(turns, ids, (error) => {
        recallFailure = error;
      });
      // Per-call processor lists replace the agent's, so the agent's own come first.
      const inputProcessors =
        options.inputProcessors ?? defaults.inputProcessors ?? (await agent.listConfiguredInputProcessors(requestContext));
      const outputProcessors =
        options.outputProcessors ?? defaults.outputProcessors ?? (await agent.listConfiguredOutputProcessors(requestContext));
      try {
        return await original(messages, {
          ...options,
          inputProcessors: [...inputProcessors, processor],
          outputProcessors: [...outputProcessors, processor],
        });
      } catch (error) {
        // Mastra wraps a processor's error in its own: the caller gets Engram's (a TimeoutError, say).
        throw recallFailure ?? error;
      }
    };
  };
  const generate = wrap("generate");
  const stream = wrap("stream");
  const bound = new WeakMap<object, unknown>();
  // A proxy rather than a subclass or a mutation: the original agent stays as it was, and every
  // other member (private fields included) keeps working because it runs on the agent itself.
  return new Proxy(agent, {
    get(target, property) {
      if (property === "generate") return generate;
      if (property === "stream") return stream;
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      if (!bound.has(value)) bound.set(value, value.bind(target));
      return bound.get(value);
    },
  });
}

/**
 * Gives a Mastra agent long-term memory: the one line.
 *
 * - On an Agent instance it returns the agent with `generate` and `stream` wrapped: the agent's own
 *   processors are kept, a memory processor is added per call, and a call without scope throws
 *   MissingScopeError before the run starts. The original agent is not changed.
 * - On an agent config it returns the config with the memory processor appended to its input and
 *   output processors, for `new Agent(...)`. A call without scope is then refused through Mastra's
 *   tripwire: the result's `tripwire.reason` is the MissingScopeError message.
 *
 * The scope of each call is `userId` / `agentId` / `runId` on its RequestContext, else Mastra's own
 * memory ids (resource → userId, thread → runId).
 *
 * @example
 * const agent = withMemory(existingAgent, { memory });
 * await agent.generate("hi", { requestContext: new RequestContext([["userId", "alice"]]) });
 * const other = new Agent(withMemory({ id, name, instructions, model }, { memory }));
 */
export function withMemory<TAgent extends AnyAgent>(agent: TAgent, options: MemoryProcessorOptions): TAgent;
export function withMemory<TConfig extends AnyAgentConfig>(config: TConfig, options: MemoryProcessorOptions): TConfig;
export function withMemory(target: AnyAgent | AnyAgentConfig, options: MemoryProcessorOptions): AnyAgent | AnyAgentConfig {
  if (target == null || typeof target !== "object") {
    throw new ConfigError({ message: "withMemory() takes a Mastra Agent, or the config of one for new Agent(config)." });
  }
  const turns = turnMemoryFor(options, "withMemory");
  if (isAgent(target)) return wrapAgent(target, turns);
  const processor = createMemoryProcessor(turns);
  const config = target as AnyAgentConfig;
  return {
    ...config,
    inputProcessors: appendProcessor<InputProcessorOrWorkflow>(config.inputProcessors, processor),
    outputProcessors: appendProcessor<OutputProcessorOrWorkflow>(config.outputProcessors, processor),
  };
}
