import type { MessageList } from "@mastra/core/agent";
import type { MastraDBMessage } from "@mastra/core/agent/message-list";
import type { ProcessInputArgs, ProcessOutputResultArgs, Processor } from "@mastra/core/processors";
import type { RequestContext } from "@mastra/core/request-context";
import { hasMemoryBlock, InvalidScopeError, MissingScopeError, memoryBlockTag, type Scope } from "../../src/index.js";
import { parseConfig } from "../../src/validation.js";
import { adapterOptionsSchema, type MemoryAdapterOptions, resolveAdapterOptions } from "../shared/options.js";
import { TurnMemory, turnKey } from "../shared/turn.js";
import { callScope, type MastraMemoryIds } from "./call-scope.js";

/** The id of Engram's processor in an agent's processor lists. */
export const memoryProcessorId = "engram-memory";

export type MemoryProcessorOptions = MemoryAdapterOptions;

/** One processor that is both an input processor (recall) and an output processor (remember). */
export type MemoryProcessor = Processor<typeof memoryProcessorId> &
  Required<Pick<Processor<typeof memoryProcessorId>, "processInput" | "processOutputResult">>;

/** Ends of a call that leave no reply to remember: a tool loop cut short, a failed, aborted or suspended call. */
const unfinished = new Set(["tool-calls", "error", "aborted", "suspended"]);

interface Turn {
  scope: Scope;
  key: string;
  query: string | undefined;
}

/** Mastra's memory context of a call, set on the RequestContext when the agent has a Mastra memory. */
interface MastraMemoryContext {
  thread?: { id?: unknown };
  resourceId?: unknown;
}

function textOf(message: MastraDBMessage): string {
  const parts = message.content.parts ?? [];
  const text = parts
    .map((part) => (part.type === "text" ? part.text : ""))
    .filter((piece) => piece !== "")
    .join("\n");
  return text || (typeof message.content.content === "string" ? message.content.content : "");
}

function memoryIdsIn(requestContext: RequestContext | undefined, messageList: MessageList): MastraMemoryIds {
  const context = requestContext?.get("MastraMemory") as MastraMemoryContext | undefined;
  const info = messageList.serialize().memoryInfo;
  const asString = (value: unknown) => (typeof value === "string" ? value : undefined);
  return {
    resourceId: asString(context?.resourceId) ?? info?.resourceId,
    threadId: asString(context?.thread?.id) ?? info?.threadId,
  };
}

/**
 * The user turn of a call: its scope, the latest user message of the call's input (the search
 * query), and a key naming the turn. The key uses the message id, which Mastra gives every input
 * message, so a later identical question is a new turn.
 */
function turnOf(requestContext: RequestContext | undefined, messageList: MessageList, ids: MastraMemoryIds | undefined): Turn {
  const found = memoryIdsIn(requestContext, messageList);
  const scope = callScope("agent.generate()/stream()", requestContext, {
    resourceId: ids?.resourceId ?? found.resourceId,
    threadId: ids?.threadId ?? found.threadId,
  });
  const latest = messageList.get.input
    .db()
    .filter((message) => message.role === "user")
    .at(-1);
  const query = latest ? textOf(latest) : (messageList.getLatestUserContent() ?? undefined);
  return { scope, query, key: turnKey(scope, ["mastra", latest?.id ?? null, query ?? null]) };
}

const isScopeError = (error: unknown) => MissingScopeError.isInstance(error) || InvalidScopeError.isInstance(error);

/**
 * Builds the processor over one TurnMemory; `ids` are a call's memory ids when known up front.
 * `onRecallFailure` sees a failed recall before Mastra wraps it in its own error (without `failOpen`).
 */
export function createMemoryProcessor(
  turns: TurnMemory,
  ids?: MastraMemoryIds,
  onRecallFailure?: (error: unknown) => void,
): MemoryProcessor {
  return {
    id: memoryProcessorId,
    name: "Engram memory",
    description: "Recalls what Engram remembers about this user before the call; remembers the turn after it.",

    async processInput({ messageList, requestContext, abort }: ProcessInputArgs) {
      let turn: Turn;
      try {
        turn = turnOf(requestContext, messageList, ids);
      } catch (error) {
        // A call without a valid scope is refused before the model is called.
        if (isScopeError(error)) abort((error as Error).message, { metadata: { code: (error as MissingScopeError).code } });
        throw error;
      }
      const injected = messageList
        .getAllSystemMessages()
        .some((message) => typeof message.content === "string" && hasMemoryBlock(message.content));
      if (injected) return messageList;
      let block: string | undefined;
      try {
        ({ block } = await turns.recall(turn));
      } catch (error) {
        onRecallFailure?.(error);
        throw error;
      }
      // A tagged system message: Mastra puts it after the agent's instructions and keeps it for every step of the call.
      if (block) messageList.addSystem({ role: "system", content: block }, memoryBlockTag);
      return messageList;
    },

    processOutputResult({ messageList, requestContext, result, abortSignal }: ProcessOutputResultArgs) {
      if (abortSignal?.aborted || unfinished.has(result.finishReason)) return messageList;
      let turn: Turn;
      try {
        turn = turnOf(requestContext, messageList, ids);
      } catch (error) {
        if (isScopeError(error)) return messageList;
        throw error;
      }
      // The last step's text is the reply; earlier steps hold what was said around tool calls.
      const reply = result.steps.at(-1)?.text ?? result.text;
      turns.remember({ scope: turn.scope, key: turn.key, user: turn.query, assistant: reply.trim() });
      return messageList;
    },
  };
}

/**
 * A Mastra processor that gives an agent long-term memory. Add the SAME object to both lists:
 * - as an input processor (once per call, not per step) it reads the scope (`userId` / `agentId`
 *   / `runId` on the RequestContext, else Mastra's memory ids: resource → userId, thread → runId),
 *   searches the memory with the latest user message and adds ONE labelled system message after
 *   the agent's instructions. A call without scope is refused through `abort` (a tripwire whose
 *   reason is the MissingScopeError message); the model is never called.
 * - as an output processor it queues the user message and the final reply for the memory's
 *   durable write-behind once the call has finished; the reply never waits for it.
 *
 * @example
 * const memories = memoryProcessor({ memory });
 * new Agent({ ...config, inputProcessors: [memories], outputProcessors: [memories] });
 */
export function memoryProcessor(options: MemoryProcessorOptions): MemoryProcessor {
  const parsed = parseConfig(adapterOptionsSchema, options, "memoryProcessor");
  return createMemoryProcessor(new TurnMemory(resolveAdapterOptions(parsed)));
}

/** Parses options once for `withMemory`, which builds one processor per call over a shared TurnMemory. */
export function turnMemoryFor(options: MemoryProcessorOptions, call: string): TurnMemory {
  return new TurnMemory(resolveAdapterOptions(parseConfig(adapterOptionsSchema, options, call)));
}
