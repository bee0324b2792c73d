import { isUserError } from "../errors.js";
import type { loadAiSdk } from "../internal/ai-sdk.js";
import { type RetryOptions, retry, withDeadline } from "../internal/async.js";
import type { Usage } from "../types.js";
import type { AiSdkLanguageModel } from "./language-model.js";

export type ChatMessage = { role: "user" | "assistant"; content: string };

/**
 * One model call for its text, as extraction and consolidation make it: the output schema is sent
 * to the provider, the text is read by the caller (tolerantly); transport failures and timeouts are
 * retried with backoff (`onRetry` each time); every call made is counted in `usage`, failed ones
 * included; the final failure is what `fail` makes of it (user errors pass through as they are).
 */
export async function modelText(
  ai: Awaited<ReturnType<typeof loadAiSdk>>,
  model: AiSdkLanguageModel,
  request: { instructions: string; messages: ChatMessage[]; output: object },
  options: RetryOptions & { timeoutMs: number; label: string },
  hooks: { usage: Usage; onRetry(error: unknown, attempt: number): void; fail(error: unknown, attempts: number): Error },
): Promise<string> {
  const { usage } = hooks;
  let attempts = 0;
  return retry(
    async () => {
      attempts++;
      usage.llmCalls++;
      // The deadline holds even for a model that ignores its abort signal.
      const result = await withDeadline(options.label, options.timeoutMs, (abortSignal) =>
        ai.generateText({
          model: model as Parameters<typeof ai.generateText>[0]["model"],
          instructions: request.instructions,
          messages: request.messages,
          output: request.output as Parameters<typeof ai.generateText>[0]["output"],
          maxRetries: 0,
          abortSignal,
        }),
      );
      usage.inputTokens += result.usage.inputTokens ?? 0;
      usage.outputTokens += result.usage.outputTokens ?? 0;
      try {
        return result.output as string;
      } catch {
        return result.text; // no output at all (e.g. cut off at the token limit): read as empty
      }
    },
    {
      ...options,
      // Providers mark errors no retry can fix (a bad API key, a malformed request) as not retryable.
      shouldRetry: (error) => !isUserError(error) && (error as { isRetryable?: unknown } | null)?.isRetryable !== false,
      onRetry: hooks.onRetry,
    },
  ).catch((error) => {
    throw isUserError(error) ? error : hooks.fail(error, attempts);
  });
}
