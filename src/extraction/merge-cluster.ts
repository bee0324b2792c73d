import { jsonrepair } from "jsonrepair";
import { z } from "zod";
import { type EngramError, ExtractionError } from "../errors.js";
import { loadAiSdk } from "../internal/ai-sdk.js";
import type { ErrorContext, Usage } from "../types.js";
import type { ModelCallOptions } from "./extract.js";
import type { AiSdkLanguageModel } from "./language-model.js";
import { modelText } from "./model-call.js";

export const mergeOutputSchema = z.strictObject({
  memory: z.string().describe("The one memory that says what every memory given says, and nothing more"),
});

export const mergeInstructions = `You merge near-duplicate memories of a memory layer for an assistant.
You are given memories that say (almost) the same thing about one person or conversation.
Write ONE memory that keeps every fact they state, in the words of the memories where possible.
Add nothing they do not say: no inference, no new detail. When two of them disagree, keep the later one (they are given oldest first).
Reply with JSON only: {"memory": "<the merged memory>"}`;

/** The text of `{"memory": "..."}` in the model's reply (fenced, or slightly malformed JSON accepted), or undefined. */
export function readMergeOutput(text: string): string | undefined {
  const body = text
    .trim()
    .replace(/^```(?:json)?\s*/i, "")
    .replace(/\s*```$/, "");
  try {
    const parsed = mergeOutputSchema.safeParse(JSON.parse(jsonrepair(body)));
    return parsed.success ? parsed.data.memory.trim() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * ONE model call writes the merged memory of a cluster (`texts`, oldest first). Transport failures
 * and timeouts are retried with backoff, like extraction's call; every call is counted in `usage`.
 * @throws ExtractionError when no usable text comes back.
 */
export async function mergeWithModel(
  model: AiSdkLanguageModel,
  texts: readonly string[],
  options: ModelCallOptions,
  { usage, report }: { usage: Usage; report: (error: EngramError, context: ErrorContext) => void },
): Promise<string> {
  const ai = await loadAiSdk("Consolidation with an llm");
  const prompt = `Memories, oldest first:\n${texts.map((text, i) => `${i + 1}. ${text}`).join("\n")}`;
  const structured = ai.Output.object({ schema: mergeOutputSchema, name: "merged_memory", description: "The merged memory" });
  const output = { ...structured, parseCompleteOutput: async ({ text }: { text: string }) => text };
  const raw = await modelText(
    ai,
    model,
    { instructions: mergeInstructions, messages: [{ role: "user", content: prompt }], output },
    { ...options, label: "The consolidation model call" },
    {
      usage,
      onRetry: (error, attempt) =>
        report(new ExtractionError({ message: `The consolidation model call failed: ${String(error)}`, cause: error }), {
          operation: "consolidate",
          attempt,
          willRetry: true,
        }),
      fail: (error, attempts) =>
        new ExtractionError({
          message: `The consolidation model call failed ${attempts} time${attempts === 1 ? "" : "s"}: ${error instanceof Error ? error.message : String(error)}. Nothing was changed`,
          cause: error,
        }),
    },
  );
  const merged = readMergeOutput(raw);
  if (merged === undefined) {
    throw new ExtractionError({
      message:
        'The consolidation model\'s output could not be read as {"memory": "..."}. Nothing was changed; run consolidate again, or without an llm to keep one text verbatim',
      rawOutput: raw,
    });
  }
  return merged;
}
