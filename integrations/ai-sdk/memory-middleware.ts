import type {
  LanguageModelV4CallOptions,
  LanguageModelV4FinishReason,
  LanguageModelV4Message,
  LanguageModelV4Middleware,
  LanguageModelV4StreamPart,
} from "@ai-sdk/provider";
import type { LanguageModelMiddleware } from "ai";
import { z } from "zod";
import { hasMemoryBlock, MissingScopeError, type Scope, validateScope } from "../../src/index.js";
import { parseConfig } from "../../src/validation.js";
import { adapterOptionsShape, type MemoryAdapterOptions, resolveAdapterOptions } from "../shared/options.js";
import { TurnMemory, turnKey } from "../shared/turn.js";

/** The `providerOptions` key that carries the scope of a call. */
export const providerOptionsKey = "memory";

/**
 * The parameters of a model call, as the installed AI SDK types them: AI SDK 7's call options, or
 * AI SDK 6's (the middleware works with both, see `memoryMiddleware`).
 */
export type MemoryMiddlewareCallOptions = Parameters<NonNullable<LanguageModelMiddleware["transformParams"]>>[0]["params"];

export interface MemoryMiddlewareOptions extends MemoryAdapterOptions {
  /**
   * Derives the scope of a call from its parameters, for apps that know it another way.
   * @default reads `providerOptions.memory` ({ userId?, agentId?, runId? })
   */
  scope?: (params: MemoryMiddlewareCallOptions) => Scope;
}

/** Reads `providerOptions.memory`; without a scope the error says where the scope goes. */
function scopeFromProviderOptions(given: unknown): Scope {
  try {
    return validateScope("generate", given);
  } catch (error) {
    if (!MissingScopeError.isInstance(error)) throw error;
    throw new MissingScopeError({
      call: "generate",
      message: `A model wrapped with Engram's memory needs the scope of each call in providerOptions.memory: pass at least one non-empty id of userId, agentId or runId, e.g. providerOptions: { memory: { userId: "alice" } } (memoryScope({ userId: "alice" }) from engram/ai-sdk types it). Engram has no global namespace.`,
    });
  }
}

const optionsSchema = z.strictObject({
  ...adapterOptionsShape,
  scope: z.custom<MemoryMiddlewareOptions["scope"]>((value) => typeof value === "function", "scope must be a function").optional(),
});

interface Turn {
  scope: Scope;
  key: string;
  user: string | undefined;
}

function textOf(message: LanguageModelV4Message): string {
  if (typeof message.content === "string") return message.content;
  return message.content
    .map((part) => (part.type === "text" ? part.text : ""))
    .filter((text) => text !== "")
    .join("\n");
}

/** Ends of a step after which the turn is not over (tools run next) or has no reply to remember. */
const unfinished = new Set<LanguageModelV4FinishReason["unified"]>(["tool-calls", "error"]);

/**
 * AI SDK language-model middleware that gives a model long-term memory:
 * - before each call it reads the scope (`providerOptions.memory`, refused with MissingScopeError
 *   when absent, and removed before the call goes on), searches the memory with the latest user
 *   message (once per turn: the steps of a tool loop share the search) and adds ONE labelled system
 *   block after the caller's own system messages;
 * - after the final step of a turn (generate, or stream once fully read) it queues the user message
 *   and the reply for the memory's durable write-behind. The reply never waits for it; steps ending
 *   in tool calls or errors, and aborted streams, write nothing.
 *
 * Works with AI SDK 7 (language model specification v4) and AI SDK 6 (v3): it reads and writes
 * only the parts of a call the two specifications share, and its type is the installed `ai`'s own.
 *
 * @example
 * const model = wrapLanguageModel({ model: openai("gpt-5-mini"), middleware: memoryMiddleware({ memory }) });
 */
export function memoryMiddleware(options: MemoryMiddlewareOptions): LanguageModelMiddleware {
  return createMiddleware(options) as LanguageModelMiddleware;
}

function createMiddleware(options: MemoryMiddlewareOptions): LanguageModelV4Middleware {
  const parsed = parseConfig(optionsSchema, options, "memoryMiddleware") as MemoryMiddlewareOptions;
  const turns = new TurnMemory(resolveAdapterOptions(parsed));
  const scopeOf = parsed.scope as ((params: LanguageModelV4CallOptions) => Scope) | undefined;
  const pending = new WeakMap<LanguageModelV4CallOptions, Turn>();

  const remember = (turn: Turn, assistant: string) => turns.remember({ ...turn, assistant });

  return {
    specificationVersion: "v4",

    async transformParams({ params }) {
      const { [providerOptionsKey]: given, ...otherProviderOptions } = params.providerOptions ?? {};
      const scope = scopeOf ? validateScope("generate", scopeOf(params)) : scopeFromProviderOptions(given);
      const prompt = params.prompt;
      const lastUser = prompt.findLastIndex((message) => message.role === "user");
      const user = lastUser === -1 ? undefined : textOf(prompt[lastUser] as LanguageModelV4Message);
      const conversation = prompt.slice(0, lastUser + 1).map((message) => [message.role, textOf(message)]);
      const key = turnKey(scope, conversation);

      const alreadyInjected = prompt.some((message) => message.role === "system" && hasMemoryBlock(message.content));
      const { block } = alreadyInjected
        ? { block: undefined }
        : await turns.recall({ scope, query: user, key, signal: params.abortSignal });
      let nextPrompt = prompt;
      if (block) {
        const leadingSystem = prompt.findIndex((message) => message.role !== "system");
        const at = leadingSystem === -1 ? prompt.length : leadingSystem;
        nextPrompt = [...prompt.slice(0, at), { role: "system", content: block }, ...prompt.slice(at)];
      }
      const next: LanguageModelV4CallOptions = {
        ...params,
        prompt: nextPrompt,
        providerOptions: Object.keys(otherProviderOptions).length > 0 ? otherProviderOptions : undefined,
      };
      if (params.providerOptions === undefined) delete next.providerOptions;
      pending.set(next, { scope, key, user });
      return next;
    },

    async wrapGenerate({ doGenerate, params }) {
      const result = await doGenerate();
      const turn = pending.get(params);
      if (turn && !unfinished.has(result.finishReason.unified)) {
        const text = result.content
          .map((part) => (part.type === "text" ? part.text : ""))
          .join("")
          .trim();
        remember(turn, text);
      }
      return result;
    },

    async wrapStream({ doStream, params }) {
      const { stream, ...rest } = await doStream();
      const turn = pending.get(params);
      if (!turn) return { stream, ...rest };
      let text = "";
      let finish: LanguageModelV4FinishReason["unified"] | undefined;
      let failed = false;
      const watched = stream.pipeThrough(
        new TransformStream<LanguageModelV4StreamPart, LanguageModelV4StreamPart>({
          transform(part, controller) {
            // Every chunk goes on at once; the turn is only watched.
            controller.enqueue(part);
            if (part.type === "text-delta") text += part.delta;
            else if (part.type === "finish") finish = part.finishReason.unified;
            else if (part.type === "error") failed = true;
          },
          flush() {
            if (failed || finish === undefined || unfinished.has(finish) || params.abortSignal?.aborted) return;
            remember(turn, text.trim());
          },
        }),
      );
      return { stream: watched, ...rest };
    },
  };
}
