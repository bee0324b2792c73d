import { type EngramError, ExtractionError } from "../errors.js";
import { loadAiSdk } from "../internal/ai-sdk.js";
import type { RetryOptions } from "../internal/async.js";
import type { ErrorContext, Usage } from "../types.js";
import type { AiSdkLanguageModel } from "./language-model.js";
import { type ChatMessage, modelText } from "./model-call.js";
import { type Decision, extractionOutputSchema, graphExtractionOutputSchema, type ParsedProfile, parseExtractionOutput } from "./output.js";
import { repairPrompt } from "./prompt.js";

export interface ModelCallOptions extends RetryOptions {
  /** Longest wait for one model call before it counts as failed (and is retried). */
  timeoutMs: number;
  /** Graph memory: the output schema asks for each entry's relations too. */
  graph?: boolean;
}

/** Longest previous output sent back with a repair request: enough to fix, bounded in cost. */
const MAX_REPAIR_ECHO = 8_000;

/**
 * The one extraction call: instructions and prompt in, the model's decisions out. Transport
 * failures and timeouts are retried with backoff; output that cannot be read gets one repair
 * request. Every call made is counted in `usage`, failed ones included. Throws ExtractionError
 * (with `cause`, or with `rawOutput`) when the decisions cannot be had.
 */
export async function extractDecisions(
  model: AiSdkLanguageModel,
  { instructions, prompt }: { instructions: string; prompt: string },
  options: ModelCallOptions,
  { usage, report }: { usage: Usage; report: (error: EngramError, context: ErrorContext) => void },
): Promise<{ decisions: Decision[]; warnings: string[]; profile?: ParsedProfile }> {
  const ai = await loadAiSdk("Extraction with an llm");
  const structured = ai.Output.object({
    schema: options.graph ? graphExtractionOutputSchema : extractionOutputSchema,
    name: "memory_events",
    description: "What to add to, update in or delete from the memory",
  });
  // The provider is asked for JSON of the schema; the text is read here, tolerantly, so that
  // fenced or slightly malformed output from smaller models is still usable.
  const output = { ...structured, parseCompleteOutput: async ({ text }: { text: string }) => text };

  const call = (messages: ChatMessage[]): Promise<string> =>
    modelText(
      ai,
      model,
      { instructions, messages, output },
      { ...options, label: "The extraction model call" },
      {
        usage,
        onRetry: (error, attempt) => report(callFailed(error), { operation: "extract", attempt, willRetry: true }),
        fail: callFailed,
      },
    );

  const conversation: ChatMessage[] = [{ role: "user", content: prompt }];
  const first = await call(conversation);
  const parsed = parseExtractionOutput(first);
  if (parsed.ok) return parsed;

  report(
    new ExtractionError({
      message: `The extraction model's output could not be used (${parsed.reason}); asking it once to repair it`,
      rawOutput: first,
    }),
    { operation: "extract", attempt: 0, willRetry: true },
  );
  const second = await call([
    ...conversation,
    { role: "assistant", content: first.slice(0, MAX_REPAIR_ECHO) },
    { role: "user", content: repairPrompt(parsed.reason) },
  ]);
  const repaired = parseExtractionOutput(second);
  if (!repaired.ok) {
    throw new ExtractionError({
      message: `The extraction model's output could not be used, even after one repair request: ${repaired.reason}. Nothing was stored. If the model is small or local, check that it can produce JSON (see docs/extraction.md)`,
      rawOutput: second,
    });
  }
  return {
    ...repaired,
    warnings: [`The model's first output could not be used (${parsed.reason}); its repaired output was.`, ...repaired.warnings],
  };
}

/** Without `attempts`: one failed attempt that will be retried. With it: the final failure. */
function callFailed(error: unknown, attempts?: number): ExtractionError {
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const message =
    attempts === undefined
      ? `The extraction model call failed: ${reason}`
      : `The extraction model call failed ${attempts === 1 ? "once, not worth retrying" : `${attempts} times`}: ${reason}. Nothing was stored`;
  return new ExtractionError({ message, cause: error });
}
