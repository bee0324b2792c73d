// Answer accuracy on conversation benchmarks in the LoCoMo schema
// (`npm run bench:answer -- [file.json] --llm <base url | stub> [--model name] [--judge-model name] [--limit N] [--samples N]`).
//
// Each conversation is stored verbatim in its own scope (as `bench:recall` does in raw mode);
// each question is searched in its conversation's scope with the adapters' defaults, answered by
// the model from the memory block the adapters inject, and graded by the model as judge (J:
// CORRECT / WRONG) and by token F1 against the gold answer. `--llm stub` runs it against the
// local deterministic stub: a check of the path and of the cost, not of answer quality.
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { localEmbedder } from "../src/index.js";
import { answerTable, runAnswerBench } from "./support/answer-accuracy.js";
import { readLocomo } from "./support/locomo.js";
import { startOpenAiStub } from "./support/openai-stub.js";
import { commit, currentLoad, defaultDataFile, figure, machine, writeResults } from "./support/report.js";

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    llm: { type: "string" },
    model: { type: "string" },
    "judge-model": { type: "string" },
    limit: { type: "string" },
    samples: { type: "string" },
    concurrency: { type: "string", default: "4" },
    attempts: { type: "string", default: "3" },
  },
});

const positiveInteger = (name: string, text: string | undefined): number | undefined => {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a whole number of at least 1, not ${text}`);
  return value;
};

if (!options.llm) {
  throw new Error(
    "bench:answer needs a model: pass --llm <OpenAI-compatible base URL> (e.g. --llm https://api.openai.com/v1, with OPENAI_API_KEY set), or --llm stub for the offline check",
  );
}
const limit = positiveInteger("limit", options.limit);
const sampleCount = positiveInteger("samples", options.samples);
const concurrency = positiveInteger("concurrency", options.concurrency) as number;
const attempts = positiveInteger("attempts", options.attempts) as number;
const file = resolve(positionals[0] ?? defaultDataFile);

const { samples: allSamples, stats } = readLocomo(file);
const samples = sampleCount === undefined ? allSamples : allSamples.slice(0, sampleCount);
const machineInfo = machine();
console.log(`Answer accuracy on ${file}; load ${machineInfo.load.join(" ")}`);
console.log(`${stats.samples} conversations, ${stats.turns} turns, ${stats.questions} questions`);

const stub = options.llm === "stub" ? await startOpenAiStub() : undefined;
const baseURL = stub ? stub.baseURL : options.llm;
if (stub) console.log("Model: the local deterministic stub (checks the path and the cost, not the quality of answers)");
const workDir = join(tmpdir(), `engram-answer-${process.pid}`);
mkdirSync(workDir, { recursive: true });
let report: Awaited<ReturnType<typeof runAnswerBench>>;
try {
  report = await runAnswerBench({
    samples,
    embedder: localEmbedder(),
    dataDir: workDir,
    baseURL,
    ...(process.env.OPENAI_API_KEY ? { apiKey: process.env.OPENAI_API_KEY } : {}),
    model: options.model ?? (stub ? "stub" : "gpt-5-mini"),
    ...(options["judge-model"] ? { judgeModel: options["judge-model"] } : {}),
    ...(limit === undefined ? {} : { limit }),
    concurrency,
    retry: { attempts },
  });
} finally {
  rmSync(workDir, { recursive: true, force: true });
  await stub?.close();
}

console.log(
  `\n${report.questions} questions from ${report.conversations} conversation${report.conversations === 1 ? "" : "s"} (skipped: ${report.skipped.adversarial} unanswerable, ${report.skipped.noGoldAnswer} without a gold answer); ` +
    `${report.ingest.adds} turns stored in ${figure(report.ingest.seconds)} s; search: top ${report.retrieval.limit}, threshold ${report.retrieval.threshold}; ` +
    `answer model ${report.model}, judge ${report.judgeModel}`,
);
console.log(answerTable(report));
const failed = report.groups.overall?.failed ?? 0;
console.log(
  `${failed} failed after ${attempts} tries (counted as wrong), ${report.retries} retries in all; tokens per answered question, judge tokens (prompt + completion) per judged one`,
);
for (const example of report.failureExamples) console.log(`  failed: ${example}`);
console.log(`Load average before ${machineInfo.load.join(" ")}, after ${currentLoad().join(" ")} (${machineInfo.cores} cores)`);
const out = writeResults("answer", {
  file,
  date: new Date().toISOString(),
  commit: commit(),
  machine: { ...machineInfo, loadAfter: currentLoad() },
  embedder: "universal-sentence-encoder-lite (local default)",
  llm: { baseURL: stub ? "stub" : baseURL, model: report.model, judgeModel: report.judgeModel },
  read: stats,
  ...report,
});
console.log(`Raw figures: ${out}`);
