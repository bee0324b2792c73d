import { mergePlans, planVerbatimBatch } from "./add-many.js";
import type { Components } from "./components.js";
import { ConfigError, type EngramError, InvalidInputError } from "./errors.js";
import { type ExtractionSettings, planExtraction } from "./extraction/plan-extraction.js";
import type { Message } from "./history/outbox.js";
import { defaultRetry } from "./internal/async.js";
import type { MemoryOptions } from "./memory-options.js";
import { emptyUsage, type Plan } from "./plan.js";
import { planVerbatim } from "./plan-verbatim.js";
import { defaultProfileMaxTokens } from "./profile.js";
import { callHook } from "./report.js";
import type { Runtime } from "./runtime.js";
import type { Scope, ValidScope } from "./scope.js";
import { modelAttributes, usageAttributes } from "./telemetry/attributes.js";
import type { ErrorContext, Usage } from "./types.js";

/** How adds are decided, fixed by the `Memory` options. */
export interface DecideSettings {
  /** Set when the Memory has an extraction model. */
  extraction: ExtractionSettings | undefined;
  runtime: Runtime;
  onUsage: MemoryOptions["onUsage"];
  report(error: EngramError, context: ErrorContext): void;
}

/** The extraction settings of a Memory's options, or undefined without an `llm`. */
export function extractionSettings(options: MemoryOptions, maxLength: number): ExtractionSettings | undefined {
  const { llm, extractFrom = "user", customInstructions, similarMemories = 10, llmRetry, maxFactsPerAdd = 50, graph } = options;
  if (llm === undefined) return undefined;
  return {
    model: llm,
    extractFrom,
    customInstructions,
    similarMemories,
    call: { ...defaultRetry, timeoutMs: 60_000, ...llmRetry },
    maxLength,
    maxFacts: maxFactsPerAdd,
    profile: { enabled: options.profile?.fromExtraction ?? true, maxTokens: options.profile?.maxTokens ?? defaultProfileMaxTokens },
    ...(graph === undefined || graph === false ? {} : { graph: true }),
  };
}

export interface TurnOptions {
  metadata?: Record<string, unknown>;
  infer?: boolean;
  /** ISO 8601. */
  timestamp?: string;
  profileAcrossRuns?: boolean;
  /** ISO 8601, or null for never; set when the call was made (queued turns keep it). */
  expiresAt?: string | null;
  ttl?: string | number;
  /** Several verbatim adds in one queued entry (`enqueueMany`): each takes the next `count` messages. */
  turns?: { count: number; timestamp?: string; metadata?: Record<string, unknown> }[];
}

/**
 * Decides what an add does, without changing anything: extraction with the model, or the messages
 * verbatim. Its cost goes to `onUsage`, also when it fails. `entryId` marks a write-behind turn.
 */
export async function decideAdd(
  { extraction, runtime, onUsage, report }: DecideSettings,
  { store, embedder, history, tracing, dimension }: Components,
  { scope, messages, options, entryId }: { scope: ValidScope; messages: Message[]; options: TurnOptions; entryId?: string },
): Promise<Plan> {
  const infer = options.infer ?? extraction !== undefined;
  if (infer && !extraction) {
    throw new ConfigError({
      message:
        entryId === undefined
          ? "add() with infer: true needs an extraction model: new Memory({ llm })."
          : "This turn was queued for extraction, but this Memory has no llm. Process the outbox with Memory instances configured with the same llm (writeBehind: { enabled: false } on the others), then retryFailed().",
    });
  }
  const usage = emptyUsage();
  const profileScope = options.profileAcrossRuns ? profileScopeOf(scope) : scope;
  const request = { scope, profileScope, messages, metadata: options.metadata, timestamp: options.timestamp, usage };
  let failed = true;
  try {
    const reportTurn = (error: EngramError, context: ErrorContext) =>
      report(error, entryId === undefined ? context : { ...context, entryId });
    const plan =
      infer && extraction
        ? await tracing.span("engram.extract", modelAttributes(extraction.model), async (record) => {
            const plan = await planExtraction(extraction, { store, history, embedder, report: reportTurn, runtime }, request);
            record({ ...usageAttributes({ usage }), "engram.extract.decisions": plan.results.length });
            return plan;
          })
        : options.turns
          ? await planTurns({ store, embedder, runtime, dimension }, scope, messages, options.turns, usage)
          : await planVerbatim({ store, embedder, runtime }, request);
    failed = false;
    return plan;
  } finally {
    callHook("onUsage", onUsage, { ...usage }, { scope: { ...scope }, failed, ...(entryId === undefined ? {} : { entryId }) });
  }
}

/**
 * The scope whose profile an add with `profileAcrossRuns` edits: without its `runId` when it has a
 * `userId`. Its lock key is the add's (turns are serialised per user), as `setProfile`'s is.
 */
export function profileScopeOf<S extends Scope>(scope: S): S {
  if (scope.userId === undefined || scope.runId === undefined) return scope;
  const { runId: _runId, ...rest } = scope;
  return rest as S;
}

/** The verbatim adds of one `enqueueMany` entry, planned as `addMany` plans them, as one plan. */
async function planTurns(
  { store, embedder, runtime, dimension }: Pick<Components, "store" | "embedder" | "dimension"> & { runtime: Runtime },
  scope: ValidScope,
  messages: readonly Message[],
  turns: NonNullable<TurnOptions["turns"]>,
  usage: Usage,
): Promise<Plan> {
  if (turns.reduce((sum, turn) => sum + turn.count, 0) !== messages.length) {
    throw new InvalidInputError({
      message: "A queued entry's turns do not add up to its messages: it was not written by enqueueMany. Delete it from the outbox.",
      field: "turns",
    });
  }
  let next = 0;
  const batch = turns.map(({ count, timestamp, metadata }) => {
    const turn = { scope, messages: messages.slice(next, next + count), metadata, timestamp };
    next += count;
    return turn;
  });
  const plan = mergePlans(await planVerbatimBatch({ store, embedder, runtime, dimension }, batch));
  for (const key of Object.keys(usage) as (keyof Usage)[]) usage[key] += plan.usage[key];
  return { ...plan, usage };
}
