import type { LanguageModelV4CallOptions, LanguageModelV4GenerateResult } from "@ai-sdk/provider";
import { MockLanguageModelV4 } from "ai/test";

/** What the scripted model was asked, flattened to text. */
export interface ScriptedPrompt {
  /** The system instructions (all system messages, joined). */
  system: string;
  /** The other messages in order, their text parts joined. */
  messages: { role: "user" | "assistant" | "tool"; content: string }[];
  /** Everything the model was given, system and messages, as one text: handy for `toContain`. */
  text: string;
  /** The structured-output format requested, if any (`{ type: "json", schema }`). */
  responseFormat?: LanguageModelV4CallOptions["responseFormat"];
}

export interface ScriptedUsage {
  inputTokens: number;
  outputTokens: number;
}

/**
 * One scripted reply:
 * - a string: the model's text, as is (malformed output can be scripted this way);
 * - `{ json }`: the value serialised as the model's text;
 * - `{ text }`: the text, with `usage` (default: about one token per 4 characters);
 * - an `Error`: the call fails with it (a transport error; an AI SDK `APICallError` with
 *   `isRetryable: false` is not retried).
 */
export type ScriptedResponse = string | Error | { text: string; usage?: ScriptedUsage } | { json: unknown; usage?: ScriptedUsage };

/** Computes a reply from the prompt; `call` counts from 0. */
export type ScriptedReplier = (prompt: ScriptedPrompt, call: number) => ScriptedResponse | Promise<ScriptedResponse>;

/** Replies in order (each a reply or a function of that call's prompt), or one function for every call. */
export type Script = readonly (ScriptedResponse | ScriptedReplier)[] | ScriptedReplier;

export interface ScriptedLanguageModel extends MockLanguageModelV4 {
  /** Every prompt received, in order, failed calls included. */
  readonly prompts: ScriptedPrompt[];
}

/**
 * An AI SDK language model for tests, built on `ai/test`'s `MockLanguageModelV4`: it answers from
 * a script (the given replies in order, each possibly a function of its prompt, or one function
 * for every call) and records every prompt.
 * No network. Honours the call's abort signal, so a reply that never comes times out.
 *
 * Needs the `ai` package, like `engram/test` as a whole.
 *
 * @example
 * const llm = scriptedLanguageModel([{ json: { memory: [{ id: "new", event: "ADD", text: "Likes tea" }] } }]);
 * const memory = new Memory({ llm });
 * await memory.add("I like tea", { userId: "alice" });
 * llm.prompts[0].text; // what the extraction model was asked
 */
export function scriptedLanguageModel(script: Script, { modelId = "scripted" }: { modelId?: string } = {}): ScriptedLanguageModel {
  const prompts: ScriptedPrompt[] = [];
  const model = new MockLanguageModelV4({
    provider: "engram-test",
    modelId,
    doGenerate: async (options) => {
      const prompt = flatten(options);
      const call = prompts.length;
      prompts.push(prompt);
      const pending = (async () => {
        if (typeof script === "function") return script(prompt, call);
        const next = script[call];
        if (next === undefined)
          throw new Error(`scriptedLanguageModel: no reply scripted for call ${call + 1} (the script has ${script.length})`);
        return typeof next === "function" ? next(prompt, call) : next;
      })();
      const response = await abortable(pending, options.abortSignal);
      if (response instanceof Error) throw response;
      return reply(prompt, response, call);
    },
  });
  return Object.assign(model, { prompts });
}

function flatten(options: LanguageModelV4CallOptions): ScriptedPrompt {
  const system: string[] = [];
  const messages: ScriptedPrompt["messages"] = [];
  for (const message of options.prompt) {
    if (message.role === "system") system.push(message.content);
    else {
      const content = message.content
        .map((part) => (part.type === "text" || part.type === "reasoning" ? part.text : JSON.stringify(part)))
        .join("\n");
      messages.push({ role: message.role, content });
    }
  }
  const prompt: ScriptedPrompt = {
    system: system.join("\n\n"),
    messages,
    text: [...system, ...messages.map((message) => message.content)].join("\n\n"),
  };
  if (options.responseFormat) prompt.responseFormat = options.responseFormat;
  return prompt;
}

function reply(prompt: ScriptedPrompt, response: Exclude<ScriptedResponse, Error>, call: number): LanguageModelV4GenerateResult {
  const text =
    typeof response === "string"
      ? response
      : response != null && typeof response === "object" && "json" in response
        ? JSON.stringify(response.json)
        : (response as { text?: unknown } | undefined)?.text;
  if (typeof text !== "string") {
    throw new TypeError(`scriptedLanguageModel: reply ${call + 1} is not a string, { text }, { json } or an Error`);
  }
  const usage = (typeof response === "object" && response.usage) || {
    inputTokens: Math.ceil(prompt.text.length / 4),
    outputTokens: Math.ceil(text.length / 4),
  };
  return {
    content: text === "" ? [] : [{ type: "text", text }],
    finishReason: { unified: "stop", raw: "stop" },
    usage: {
      inputTokens: { total: usage.inputTokens, noCache: usage.inputTokens, cacheRead: 0, cacheWrite: 0 },
      outputTokens: { total: usage.outputTokens, text: usage.outputTokens, reasoning: 0 },
    },
    warnings: [],
  };
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
