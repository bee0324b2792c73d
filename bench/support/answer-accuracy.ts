// Answer accuracy on conversation benchmarks in the LoCoMo schema: for each question, the
// memories `Memory.search` finds in the conversation's scope (with the adapters' defaults) are
// rendered as the block the adapters inject, a model answers from it, and the answer is graded
// twice: by a model as judge (CORRECT / WRONG, generous on wording, as the J score of the mem0
// paper) and by token F1 against the gold answer (normalised as LoCoMo's evaluation does).
import { mkdirSync } from "node:fs";
import { createOpenAI } from "@ai-sdk/openai";
import { APICallError, generateText, type LanguageModel, type SystemModelMessage } from "ai";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import { stemmer } from "stemmer";
import { type ResolvedAdapterOptions, resolveAdapterOptions } from "../../integrations/shared/options.js";
import { type Embedder, renderMemoryBlock } from "../../src/index.js";
import type { Question, Sample } from "./locomo.js";
import { ingestLocomo } from "./locomo-ingest.js";
import { figure, mean, percentile, table } from "./report.js";

// ── prompts ──────────────────────────────────────────────────────────────────────────────────

export const answerInstructions = [
  "You answer questions about a long conversation between two people, from the memories of it given to you.",
  "Answer in a short phrase (a dozen words at most): the fact asked for, without explanation.",
  "For a question about time, give the actual date or period, worked out from the date of the memory that mentions it (a memory dated 2023-05-08 that says 'last week' means the week before 8 May 2023).",
  'If the memories do not say, answer "Not mentioned."',
].join("\n");

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim();

/**
 * The answer call's prompt: the instructions, then the memory block (when anything was found) as
 * a system message of its own, as the adapters place it; the question as the user's message.
 */
export function answerPrompt(question: string, block: string | undefined): { instructions: SystemModelMessage[]; prompt: string } {
  return {
    instructions: [{ role: "system", content: answerInstructions }, ...(block ? [{ role: "system" as const, content: block }] : [])],
    prompt: `Question: ${oneLine(question)}`,
  };
}

/** The judge's prompt; its reply ends with the label. */
export function judgePrompt(question: string, gold: string, answer: string): string {
  return [
    "Label a generated answer to a question about a past conversation as CORRECT or WRONG, against the gold answer.",
    "",
    "The gold answer is usually short; the generated answer may be longer. Be generous: if the generated answer refers to the same thing, person, place, event or fact as the gold answer, it is CORRECT, whatever its wording or length. For a question about time, it is CORRECT if it names the same date or period in any format ('7 May' and 'May 7th'), or a relative reference that comes to the same. It is WRONG if it misses or contradicts the gold answer, or says the information is not known.",
    "",
    `Question: ${oneLine(question)}`,
    `Gold answer: ${oneLine(gold)}`,
    `Generated answer: ${oneLine(answer)}`,
    "",
    "Write one sentence of reasoning, then on the last line only the label: CORRECT or WRONG.",
  ].join("\n");
}

/** The judge's label: the last CORRECT or WRONG (upper case) in its reply, undefined when it gives none. */
export function readVerdict(reply: string): "CORRECT" | "WRONG" | undefined {
  const labels = reply.match(/\b(CORRECT|WRONG)\b/g);
  return labels?.at(-1) as "CORRECT" | "WRONG" | undefined;
}

// ── token F1 ─────────────────────────────────────────────────────────────────────────────────

/**
 * An answer's tokens as LoCoMo's evaluation reads them (SQuAD's normalisation, plus stemming):
 * lower case, punctuation removed, the articles and "and" dropped, each word Porter-stemmed.
 */
export function answerTokens(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, "")
    .replace(/\b(a|an|the|and)\b/g, " ")
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => stemmer(word));
}

/** Token F1 of an answer against the gold one (both normalised by `answerTokens`); 1 when both are empty. */
export function tokenF1(answer: string, gold: string): number {
  const predicted = answerTokens(answer);
  const expected = answerTokens(gold);
  if (predicted.length === 0 || expected.length === 0) return predicted.length === expected.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const token of expected) counts.set(token, (counts.get(token) ?? 0) + 1);
  let same = 0;
  for (const token of predicted) {
    const left = counts.get(token) ?? 0;
    if (left > 0) {
      same++;
      counts.set(token, left - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / predicted.length;
  const recall = same / expected.length;
  return (2 * precision * recall) / (precision + recall);
}

// ── model calls ──────────────────────────────────────────────────────────────────────────────

export interface RetryPolicy {
  /** Tries per call, the first included. */
  attempts: number;
  /** Wait before the first retry, doubled before each next one. */
  delayMs: number;
  /** The longest one try may take. */
  timeoutMs: number;
}

type Tried<T> = { ok: true; value: T; attempts: number } | { ok: false; error: Error; attempts: number };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `call` up to `attempts` times; a request the endpoint refuses for good (e.g. 400, 401) is not retried. */
async function tried<T>(policy: RetryPolicy, call: (signal: AbortSignal) => Promise<T>): Promise<Tried<T>> {
  let attempt = 0;
  for (;;) {
    attempt++;
    try {
      return { ok: true, value: await call(AbortSignal.timeout(policy.timeoutMs)), attempts: attempt };
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      const permanent = APICallError.isInstance(error) && !error.isRetryable;
      if (permanent || attempt >= policy.attempts) return { ok: false, error: failure, attempts: attempt };
      await sleep(policy.delayMs * 2 ** (attempt - 1));
    }
  }
}

interface Usage {
  /** Undefined when the endpoint reported no usage. */
  input: number | undefined;
  output: number | undefined;
}

// ── the run ──────────────────────────────────────────────────────────────────────────────────

export interface AnswerRunOptions {
  /** Conversations with their questions (as `readLocomo` reads them). */
  samples: readonly Sample[];
  embedder: Embedder;
  /** Where the memories are stored for the run. */
  dataDir: string;
  /** OpenAI-compatible base URL of the answering (and judging) model. */
  baseURL: string;
  apiKey?: string;
  model: string;
  /** @default model */
  judgeModel?: string;
  /** Only the first this many questions (in file order); only their conversations are ingested. */
  limit?: number;
  /** @default { attempts: 3, delayMs: 1000, timeoutMs: 120000 } */
  retry?: Partial<RetryPolicy>;
  /** Questions in flight at once. @default 4 */
  concurrency?: number;
  /** Progress on stdout when it is a terminal. @default true */
  progress?: boolean;
  /** The search's threshold. @default the adapters' default (the calibrated cut-off) */
  threshold?: number;
}

export interface QuestionResult {
  sampleId: string;
  category: string;
  question: string;
  gold: string;
  /** Undefined when the answer call failed. */
  answer?: string;
  verdict?: "CORRECT" | "WRONG";
  /** Which step failed (search, answer or judge), and why, after its retries. */
  failed?: string;
  /** 1 when the judge said CORRECT; 0 otherwise, a failed question included. */
  j: number;
  /** Token F1 of the answer; 0 without one. */
  f1: number;
  memories: number;
  blockTokens: number;
  answerUsage: Usage;
  judgeUsage: Usage;
  /** The answer call's time (its successful try), in milliseconds. */
  answerMs?: number;
  /** Tries beyond the first, answer and judge together. */
  retries: number;
}

export interface AnswerAggregate {
  questions: number;
  failed: number;
  /** Share judged CORRECT (failed questions count as wrong). */
  j: number;
  f1: number;
  /** Per answered question; NaN when the endpoint reported no usage. */
  promptTokens: number;
  completionTokens: number;
  judgePromptTokens: number;
  judgeCompletionTokens: number;
  blockTokens: number;
  memories: number;
  answerMsP50: number;
  answerMsP95: number;
}

export interface AnswerReport {
  model: string;
  judgeModel: string;
  /** The retrieval the adapters use by default. */
  retrieval: Pick<ResolvedAdapterOptions, "limit" | "threshold">;
  conversations: number;
  questions: number;
  /** Questions not asked: unanswerable ones (the file gives only an adversarial answer) and ones with an empty gold answer. */
  skipped: { adversarial: number; noGoldAnswer: number };
  ingest: { seconds: number; adds: number };
  retries: number;
  /** A few of the failures, for the report. */
  failureExamples: string[];
  groups: Record<string, AnswerAggregate>;
  perQuestion: QuestionResult[];
}

const usageOf = (usage: { inputTokens: number | undefined; outputTokens: number | undefined }): Usage => ({
  input: usage.inputTokens,
  output: usage.outputTokens,
});

function aggregate(results: readonly QuestionResult[]): Record<string, AnswerAggregate> {
  const of = (list: readonly QuestionResult[]): AnswerAggregate => {
    const reported = (values: (number | undefined)[]) => mean(values.filter((v): v is number => v !== undefined));
    const times = list.map((r) => r.answerMs).filter((ms): ms is number => ms !== undefined);
    return {
      questions: list.length,
      failed: list.filter((r) => r.failed !== undefined).length,
      j: mean(list.map((r) => r.j)),
      f1: mean(list.map((r) => r.f1)),
      promptTokens: reported(list.map((r) => r.answerUsage.input)),
      completionTokens: reported(list.map((r) => r.answerUsage.output)),
      judgePromptTokens: reported(list.map((r) => r.judgeUsage.input)),
      judgeCompletionTokens: reported(list.map((r) => r.judgeUsage.output)),
      blockTokens: mean(list.map((r) => r.blockTokens)),
      memories: mean(list.map((r) => r.memories)),
      answerMsP50: percentile(times, 50),
      answerMsP95: percentile(times, 95),
    };
  };
  const groups = new Map<string, QuestionResult[]>();
  for (const r of results) groups.set(r.category, [...(groups.get(r.category) ?? []), r]);
  const result: Record<string, AnswerAggregate> = {};
  for (const category of [...groups.keys()].sort()) result[`category ${category}`] = of(groups.get(category) ?? []);
  result.overall = of(results);
  return result;
}

/** Ingests the conversations, then answers and grades each question. */
export async function runAnswerBench(options: AnswerRunOptions): Promise<AnswerReport> {
  const judgeModelName = options.judgeModel ?? options.model;
  const policy: RetryPolicy = { attempts: 3, delayMs: 1000, timeoutMs: 120_000, ...options.retry };
  const provider = createOpenAI({ baseURL: options.baseURL, apiKey: options.apiKey ?? "none" });
  const answerModel: LanguageModel = provider.chat(options.model);
  const judgeModel: LanguageModel = provider.chat(judgeModelName);

  const skipped = { adversarial: 0, noGoldAnswer: 0 };
  const eligible: { sample: Sample; question: Question }[] = [];
  for (const sample of options.samples) {
    for (const question of sample.questions) {
      if (question.adversarial) skipped.adversarial++;
      else if (question.answer.trim() === "") skipped.noGoldAnswer++;
      else eligible.push({ sample, question });
    }
  }
  const jobs = options.limit === undefined ? eligible : eligible.slice(0, options.limit);
  const samples = options.samples.filter((sample) => jobs.some((job) => job.sample === sample));

  mkdirSync(options.dataDir, { recursive: true });
  const ingested = await ingestLocomo({
    mode: "raw",
    samples,
    dataDir: options.dataDir,
    embedder: options.embedder,
    progress: options.progress ?? true,
  });
  const { memory } = ingested;
  const { limit, threshold, label } = resolveAdapterOptions({
    memory,
    ...(options.threshold === undefined ? {} : { threshold: options.threshold }),
  });
  const showProgress = (options.progress ?? true) && process.stdout.isTTY;

  const ask = async ({ sample, question }: (typeof jobs)[number]): Promise<QuestionResult> => {
    const result: QuestionResult = {
      sampleId: sample.sampleId,
      category: question.category,
      question: question.question,
      gold: question.answer,
      j: 0,
      f1: 0,
      memories: 0,
      blockTokens: 0,
      answerUsage: { input: undefined, output: undefined },
      judgeUsage: { input: undefined, output: undefined },
      retries: 0,
    };
    let block: string | undefined;
    try {
      const { results } = await memory.search(question.question, { userId: sample.sampleId, limit, threshold });
      block = renderMemoryBlock(results, { label });
      result.memories = results.length;
      result.blockTokens = block ? countTokens(block) : 0;
    } catch (error) {
      result.failed = `search: ${(error as Error).message}`;
      return result;
    }
    const answered = await tried(policy, async (abortSignal) => {
      const started = performance.now();
      const reply = await generateText({ model: answerModel, ...answerPrompt(question.question, block), maxRetries: 0, abortSignal });
      return { text: reply.text.trim(), usage: usageOf(reply.usage), ms: performance.now() - started };
    });
    result.retries += answered.attempts - 1;
    if (!answered.ok) {
      result.failed = `answer: ${answered.error.message}`;
      return result;
    }
    result.answer = answered.value.text;
    result.answerUsage = answered.value.usage;
    result.answerMs = answered.value.ms;
    result.f1 = tokenF1(result.answer, question.answer);
    const judged = await tried(policy, async (abortSignal) => {
      const reply = await generateText({
        model: judgeModel,
        prompt: judgePrompt(question.question, question.answer, answered.value.text),
        maxRetries: 0,
        abortSignal,
      });
      const verdict = readVerdict(reply.text);
      if (!verdict) throw new Error(`the judge's reply has no CORRECT or WRONG label: ${JSON.stringify(reply.text.slice(0, 200))}`);
      return { verdict, usage: usageOf(reply.usage) };
    });
    result.retries += judged.attempts - 1;
    if (!judged.ok) {
      result.failed = `judge: ${judged.error.message}`;
      return result;
    }
    result.verdict = judged.value.verdict;
    result.judgeUsage = judged.value.usage;
    result.j = result.verdict === "CORRECT" ? 1 : 0;
    return result;
  };

  const perQuestion: QuestionResult[] = new Array(jobs.length);
  try {
    let next = 0;
    let done = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const index = next++;
        perQuestion[index] = await ask(jobs[index] as (typeof jobs)[number]);
        done++;
        if (showProgress) process.stdout.write(`\r\x1b[K  answered ${done}/${jobs.length}`);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, jobs.length)) }, worker));
    if (showProgress) process.stdout.write("\r\x1b[K");
  } finally {
    await memory.close();
  }

  const failures = perQuestion.filter((r) => r.failed !== undefined);
  return {
    model: options.model,
    judgeModel: judgeModelName,
    retrieval: { limit, threshold },
    conversations: samples.length,
    questions: perQuestion.length,
    skipped,
    ingest: { seconds: ingested.seconds, adds: ingested.adds },
    retries: perQuestion.reduce((sum, r) => sum + r.retries, 0),
    failureExamples: failures.slice(0, 5).map((r) => `${r.sampleId}: ${r.question} → ${r.failed}`),
    groups: aggregate(perQuestion),
    perQuestion,
  };
}

/** The report as a text table: one row per category and one overall. */
export function answerTable(report: AnswerReport): string {
  const pct = (value: number) => figure(value * 100, 1);
  const rows: string[][] = [
    [
      "group",
      "questions",
      "failed",
      "J %",
      "F1 %",
      "prompt tok/q",
      "completion tok/q",
      "block tokens",
      "judge tok/q",
      "answer p50 ms",
      "p95 ms",
    ],
  ];
  for (const [group, a] of Object.entries(report.groups)) {
    rows.push([
      group,
      String(a.questions),
      String(a.failed),
      pct(a.j),
      pct(a.f1),
      figure(a.promptTokens, 0),
      figure(a.completionTokens, 1),
      figure(a.blockTokens, 0),
      figure(a.judgePromptTokens + a.judgeCompletionTokens, 0),
      figure(a.answerMsP50, 0),
      figure(a.answerMsP95, 0),
    ]);
  }
  return table(rows);
}
