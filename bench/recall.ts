// Retrieval quality on conversation benchmarks in the LoCoMo schema
// (`npm run bench:recall -- [file.json] [--mode raw|extract|both] [--llm <base url>] [--sweep]`).
//
// Each conversation is ingested in its own scope (userId = sample_id), session by session, with
// the session date as the turn timestamp. Then every question is searched inside its
// conversation's scope and scored against its evidence turns (dia_ids):
//   recall@k        share of the evidence ids among the sources of the top k
//   all@10          the top 10 hold every evidence id
//   session@10      the top 10 hold a turn of a session that holds evidence
//   MRR@10          1 / rank of the first memory holding evidence (0 past rank 10)
//   block tokens    o200k tokens of the top 10 rendered as the memory block a model would get
// A plain BM25 ranking over the same stored texts is scored beside it, in the same run.
//
// Modes: `raw` stores each turn verbatim ("speaker: text", infer off) with its dia_id in metadata;
// `extract` adds each turn through the extraction model given by --llm (an OpenAI-compatible base
// URL, or `stub` for the local deterministic stub); a memory's sources are the turns whose adds created, updated or confirmed it.
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createOpenAI } from "@ai-sdk/openai";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import {
  type Embedder,
  localEmbedder,
  Memory,
  type MemoryItem,
  type MemoryOptions,
  renderMemoryBlock,
  type ScoredRecord,
  sqliteStore,
} from "../src/index.js";
import { fuseHits } from "../src/retrieval/hybrid.js";
import { bm25Scores, keywordTerms } from "../src/store-kit/index.js";
import { batchingEmbedder } from "./support/batching-embedder.js";
import { type Question, type ReadStats, readLocomo, type Sample, sessionOf } from "./support/locomo.js";
import { startOpenAiStub } from "./support/openai-stub.js";
import { commit, currentLoad, defaultDataFile, figure, machine, mean, percentile, table, writeResults } from "./support/report.js";

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    mode: { type: "string" },
    llm: { type: "string" },
    model: { type: "string", default: "gpt-5-mini" },
    sweep: { type: "boolean", default: false },
    samples: { type: "string" },
  },
});

const file = resolve(positionals[0] ?? defaultDataFile);
let llmUrl = options.llm;
const requested = options.mode ?? (llmUrl ? "both" : "raw");
if (!["raw", "extract", "both"].includes(requested)) throw new Error(`--mode must be raw, extract or both, not ${requested}`);
const modes = (requested === "both" ? ["raw", "extract"] : [requested]) as ("raw" | "extract")[];

// ── scoring ──────────────────────────────────────────────────────────────────────────────────

interface Ranked {
  /** The dia_ids each ranked memory stands for, best first. */
  sources: string[][];
  items: Pick<MemoryItem, "memory" | "createdAt" | "updatedAt">[];
}

interface QuestionScore {
  category: string;
  recall5: number;
  recall10: number;
  recall20: number;
  all10: number;
  session10: number;
  mrr10: number;
  blockTokens: number;
}

function recallAt(evidence: readonly string[], sources: readonly string[][], k: number): number {
  const found = new Set(sources.slice(0, k).flat());
  return evidence.filter((id) => found.has(id)).length / evidence.length;
}

function score(question: Question, top10: Ranked, top20: Ranked): QuestionScore {
  const evidence = question.evidence;
  const sessions = new Set(evidence.map(sessionOf));
  const firstHit = top10.sources.findIndex((ids) => ids.some((id) => evidence.includes(id)));
  const block = renderMemoryBlock(top10.items.slice(0, 10));
  return {
    category: question.category,
    recall5: recallAt(evidence, top10.sources, 5),
    recall10: recallAt(evidence, top10.sources, 10),
    recall20: recallAt(evidence, top20.sources, 20),
    all10: recallAt(evidence, top10.sources, 10) === 1 ? 1 : 0,
    session10: top10.sources.slice(0, 10).some((ids) => ids.some((id) => sessions.has(sessionOf(id)))) ? 1 : 0,
    mrr10: firstHit === -1 ? 0 : 1 / (firstHit + 1),
    blockTokens: block ? countTokens(block) : 0,
  };
}

type Aggregate = Omit<QuestionScore, "category"> & { questions: number };

function aggregate(scores: readonly QuestionScore[]): Record<string, Aggregate> {
  const groups = new Map<string, QuestionScore[]>();
  for (const s of scores) groups.set(s.category, [...(groups.get(s.category) ?? []), s]);
  const result: Record<string, Aggregate> = {};
  const of = (list: readonly QuestionScore[]): Aggregate => ({
    questions: list.length,
    recall5: mean(list.map((s) => s.recall5)),
    recall10: mean(list.map((s) => s.recall10)),
    recall20: mean(list.map((s) => s.recall20)),
    all10: mean(list.map((s) => s.all10)),
    session10: mean(list.map((s) => s.session10)),
    mrr10: mean(list.map((s) => s.mrr10)),
    blockTokens: mean(list.map((s) => s.blockTokens)),
  });
  for (const category of [...groups.keys()].sort()) result[`category ${category}`] = of(groups.get(category) ?? []);
  result.overall = of(scores);
  return result;
}

// ── ingestion ────────────────────────────────────────────────────────────────────────────────

interface Ingested {
  memory: Memory;
  store: ReturnType<typeof sqliteStore>;
  embedder: Embedder;
  /** Per conversation: memory id → the dia_ids it stands for. */
  sources: Map<string, Map<string, Set<string>>>;
  seconds: number;
  adds: number;
  llmCalls: number;
  inputTokens: number;
  outputTokens: number;
}

async function ingest(mode: "raw" | "extract", samples: readonly Sample[], dataDir: string, embedder: Embedder): Promise<Ingested> {
  const store = sqliteStore({ path: join(dataDir, "engram.db") });
  const base: MemoryOptions = { dataDir, embedder, vectorStore: store, writeBehind: { enabled: false } };
  let memory: Memory;
  if (mode === "extract") {
    const llm = createOpenAI({ baseURL: llmUrl, apiKey: process.env.OPENAI_API_KEY ?? "none" }).chat(options.model as string);
    try {
      memory = new Memory({ ...base, llm } as MemoryOptions);
    } catch (error) {
      throw new Error(`extract mode needs Engram's extraction (new Memory({ llm })): ${(error as Error).message}`);
    }
  } else {
    memory = new Memory(base);
  }
  const sources = new Map<string, Map<string, Set<string>>>();
  const started = performance.now();
  let adds = 0;
  const usage = { llmCalls: 0, inputTokens: 0, outputTokens: 0 };
  const turnsTotal = samples.reduce((sum, s) => sum + s.sessions.reduce((n, session) => n + session.turns.length, 0), 0);
  // Conversations are ingested concurrently (each in order, in its own scope); a conversation's
  // turns go in with addMany, 100 per embedding call and transaction.
  const ingestSample = async (sample: Sample) => {
    const owned = new Map<string, Set<string>>();
    sources.set(sample.sampleId, owned);
    const turns = sample.sessions.flatMap((session) =>
      session.turns.map((turn, index) => ({
        turn,
        // The session's date, plus the turn's index in milliseconds: memories then list in turn
        // order (not by random id), so rankings that tie are the same in every run.
        timestamp: session.date ? new Date(session.date.getTime() + index) : undefined,
      })),
    );
    for (let start = 0; start < turns.length; start += 100) {
      const slice = turns.slice(start, start + 100);
      const { results } = await memory.addMany(
        slice.map(({ turn, timestamp }) => ({
          messages: [{ role: "user" as const, content: turn.speaker ? `${turn.speaker}: ${turn.text}` : turn.text }],
          userId: sample.sampleId,
          infer: mode === "extract",
          metadata: { dia_id: turn.diaId },
          ...(timestamp ? { timestamp } : {}),
        })),
      );
      results.forEach((result, i) => {
        const { turn } = slice[i] as (typeof slice)[number];
        adds++;
        usage.llmCalls += result.usage.llmCalls;
        usage.inputTokens += result.usage.inputTokens;
        usage.outputTokens += result.usage.outputTokens;
        for (const item of result.results) {
          if (item.event === "DELETE") owned.delete(item.id);
          else owned.set(item.id, (owned.get(item.id) ?? new Set()).add(turn.diaId));
        }
      });
      if (process.stdout.isTTY) process.stdout.write(`\r\x1b[K  ${mode}: ${adds}/${turnsTotal} turns`);
    }
  };
  await Promise.all(samples.map(ingestSample));
  if (process.stdout.isTTY) process.stdout.write("\r\x1b[K");
  return { memory, store, embedder, sources, seconds: (performance.now() - started) / 1000, adds, ...usage };
}

// ── evaluation ───────────────────────────────────────────────────────────────────────────────

const sourcesOf = (owned: Map<string, Set<string>>, item: { id: string; metadata: Readonly<Record<string, unknown>> }) => {
  const known = owned.get(item.id);
  if (known) return [...known];
  return typeof item.metadata.dia_id === "string" ? [item.metadata.dia_id] : [];
};

interface ModeResult {
  mode: "raw" | "extract";
  ingest: { seconds: number; adds: number; memories: number; llmCalls: number; inputTokens: number; outputTokens: number };
  searchMs: { p50: number; p95: number };
  engram: Record<string, Aggregate>;
  bm25: Record<string, Aggregate>;
  sweep?: SweepRow[];
  sweepMatchesSearch?: { questions: number; identicalTop10: number };
}

interface SweepRow {
  keywordWeight: number;
  candidates: number;
  recall5: number;
  recall10: number;
  all10: number;
  mrr10: number;
}

const sweepWeights = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1];
const sweepCandidates = [10, 30, 60, 100];

async function evaluate(mode: "raw" | "extract", samples: readonly Sample[], ingested: Ingested): Promise<ModeResult> {
  const { memory, store, embedder, sources } = ingested;
  const engramScores: QuestionScore[] = [];
  const bm25ScoresList: QuestionScore[] = [];
  const searchMs: number[] = [];
  const sweepScores = new Map<string, QuestionScore[]>();
  let identicalTop10 = 0;
  let compared = 0;
  let memories = 0;
  for (const sample of samples) {
    const owned = sources.get(sample.sampleId) ?? new Map();
    const scope = { userId: sample.sampleId };
    const stored: MemoryItem[] = [];
    for await (const item of memory.iterate(scope)) stored.push(item);
    memories += stored.length;
    const texts = stored.map((item) => item.memory);
    for (const question of sample.questions) {
      if (question.evidence.length === 0) continue;
      const started = performance.now();
      const { results: top10 } = await memory.search(question.question, { ...scope, limit: 10 });
      searchMs.push(performance.now() - started);
      const { results: top20 } = await memory.search(question.question, { ...scope, limit: 20 });
      const ranked = (items: MemoryItem[]): Ranked => ({ sources: items.map((item) => sourcesOf(owned, item)), items });
      engramScores.push(score(question, ranked(top10), ranked(top20)));

      const bm25 = bm25Scores(keywordTerms(question.question), texts)
        .map((value, index) => ({ value, index }))
        .filter((hit) => hit.value > 0)
        .sort((a, b) => b.value - a.value || a.index - b.index)
        .map((hit) => stored[hit.index] as MemoryItem);
      bm25ScoresList.push(score(question, ranked(bm25.slice(0, 10)), ranked(bm25.slice(0, 20))));

      if (options.sweep) {
        // The same fusion as Memory.search, from one pair of store queries at the largest
        // candidate count (store results are best first, so smaller counts are prefixes).
        const [vector] = (await embedder.embed([question.question])) as [Float32Array];
        const filter = { scope };
        const most = Math.max(...sweepCandidates);
        const [vectorHits, keywordHits] = await Promise.all([
          store.search({ vector, filter, limit: most }),
          store.keywordSearch({ text: question.question, filter, limit: most }),
        ]);
        for (const weight of sweepWeights) {
          for (const candidates of sweepCandidates) {
            const fused = fuseHits(
              vectorHits.slice(0, candidates),
              weight > 0 ? keywordHits.slice(0, candidates) : ([] as ScoredRecord[]),
              vector,
              weight,
            )
              .slice(0, 10)
              .map((hit) => ({
                id: hit.record.id,
                memory: hit.record.text,
                createdAt: hit.record.createdAt,
                updatedAt: hit.record.updatedAt,
                metadata: hit.record.metadata,
              }));
            const key = `${weight}|${candidates}`;
            const list = sweepScores.get(key) ?? [];
            const rankedFused: Ranked = { sources: fused.map((item) => sourcesOf(owned, item)), items: fused };
            list.push(score(question, rankedFused, rankedFused));
            sweepScores.set(key, list);
            if (weight === 0.3 && candidates === 30) {
              compared++;
              if (fused.map((f) => f.id).join() === top10.map((t) => t.id).join()) identicalTop10++;
            }
          }
        }
      }
    }
  }
  const result: ModeResult = {
    mode,
    ingest: {
      seconds: ingested.seconds,
      adds: ingested.adds,
      memories,
      llmCalls: ingested.llmCalls,
      inputTokens: ingested.inputTokens,
      outputTokens: ingested.outputTokens,
    },
    searchMs: { p50: percentile(searchMs, 50), p95: percentile(searchMs, 95) },
    engram: aggregate(engramScores),
    bm25: aggregate(bm25ScoresList),
  };
  if (options.sweep) {
    result.sweep = [...sweepScores.entries()].map(([key, list]) => {
      const [keywordWeight, candidates] = key.split("|").map(Number) as [number, number];
      const overall = aggregate(list).overall as Aggregate;
      return {
        keywordWeight,
        candidates,
        recall5: overall.recall5,
        recall10: overall.recall10,
        all10: overall.all10,
        mrr10: overall.mrr10,
      };
    });
    result.sweepMatchesSearch = { questions: compared, identicalTop10 };
  }
  return result;
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────

function printMode(result: ModeResult): void {
  const pct = (value: number) => figure(value * 100, 1);
  const rows: string[][] = [["ranking", "questions", "R@5 %", "R@10 %", "R@20 %", "all@10 %", "session@10 %", "MRR@10", "block tokens"]];
  for (const [name, figures] of [
    ["Engram", result.engram],
    ["BM25", result.bm25],
  ] as const) {
    for (const [group, a] of Object.entries(figures)) {
      rows.push([
        `${name} ${group}`,
        String(a.questions),
        pct(a.recall5),
        pct(a.recall10),
        pct(a.recall20),
        pct(a.all10),
        pct(a.session10),
        figure(a.mrr10, 3),
        figure(a.blockTokens, 0),
      ]);
    }
  }
  console.log(`\n${result.mode} mode`);
  console.log(table(rows));
  const i = result.ingest;
  console.log(
    `ingest: ${i.adds} adds → ${i.memories} memories in ${figure(i.seconds)} s${i.llmCalls ? `; ${i.llmCalls} LLM calls, ${i.inputTokens} input / ${i.outputTokens} output tokens` : ""}; Engram search p50 ${figure(result.searchMs.p50)} ms, p95 ${figure(result.searchMs.p95)} ms`,
  );
  if (result.sweep) {
    const sweepRows: string[][] = [["keywordWeight", "candidates", "R@5 %", "R@10 %", "all@10 %", "MRR@10"]];
    for (const row of result.sweep) {
      sweepRows.push([
        String(row.keywordWeight),
        String(row.candidates),
        pct(row.recall5),
        pct(row.recall10),
        pct(row.all10),
        figure(row.mrr10, 3),
      ]);
    }
    console.log("\nHybrid fusion sweep (overall, top 10; default keywordWeight 0.3 with 30 candidates):");
    console.log(table(sweepRows));
    const check = result.sweepMatchesSearch;
    if (check)
      console.log(
        `sweep at the default settings gives Memory.search's exact top 10 for ${check.identicalTop10} of ${check.questions} questions`,
      );
  }
}

function printStats(stats: ReadStats): void {
  console.log(
    `${stats.samples} conversations, ${stats.sessions} sessions (${stats.undatedSessions} without a readable date), ${stats.turns} turns, ${stats.questions} questions`,
  );
  console.log(
    `evidence: ${stats.evidenceEntries} entries → ${stats.evidenceIds} ids; ${stats.splitEntries} entries held several ids, ${stats.zeroPadded} ids had leading zeros, ${stats.expandedRanges} ranges expanded; dropped ${stats.droppedUnknown} ids no turn has and ${stats.droppedMalformed} malformed entries; ${stats.questionsWithoutEvidence} questions left without evidence are not scored`,
  );
  if (stats.droppedExamples.length) console.log(`dropped, e.g.: ${stats.droppedExamples.join(", ")}`);
}

const { samples: allSamples, stats } = readLocomo(file);
const samples = options.samples ? allSamples.slice(0, Number(options.samples)) : allSamples;
const machineInfo = machine();
console.log(`Retrieval quality on ${file}; load ${machineInfo.load.join(" ")}`);
printStats(stats);

const embedder = batchingEmbedder(localEmbedder());
// `--llm stub` runs the extract path against the local deterministic stub (each sentence of a
// turn becomes a fact): a check of the plumbing and of the cost, not of extraction quality.
const stub = llmUrl === "stub" ? await startOpenAiStub() : undefined;
if (stub) llmUrl = stub.baseURL;
const results: ModeResult[] = [];
const skipped: string[] = [];
const workDir = join(tmpdir(), `engram-recall-${process.pid}`);
try {
  for (const mode of modes) {
    if (mode === "extract" && !llmUrl) {
      const message =
        "extract mode skipped: no extraction model given (pass --llm <OpenAI-compatible base URL>, e.g. --llm http://127.0.0.1:8787/v1)";
      console.log(`\n${message}`);
      skipped.push(message);
      continue;
    }
    const dataDir = join(workDir, mode);
    mkdirSync(dataDir, { recursive: true });
    console.log(`\ningesting (${mode}) …`);
    let ingested: Ingested;
    try {
      ingested = await ingest(mode, samples, dataDir, embedder);
    } catch (error) {
      const message = `${mode} mode skipped: ${(error as Error).message.split("\n")[0]}`;
      console.log(message);
      skipped.push(message);
      continue;
    }
    try {
      const result = await evaluate(mode, samples, ingested);
      results.push(result);
      printMode(result);
    } finally {
      await ingested.memory.close();
    }
  }
} finally {
  rmSync(workDir, { recursive: true, force: true });
  await stub?.close();
}

console.log(`\nLoad average before ${machineInfo.load.join(" ")}, after ${currentLoad().join(" ")} (${machineInfo.cores} cores)`);
const out = writeResults("recall", {
  file,
  date: new Date().toISOString(),
  commit: commit(),
  machine: { ...machineInfo, loadAfter: currentLoad() },
  embedder: "universal-sentence-encoder-lite (local default)",
  llm: llmUrl ? { baseURL: stub ? "stub" : llmUrl, model: options.model } : undefined,
  read: stats,
  samples: samples.length,
  results,
  skipped,
});
console.log(`Raw figures: ${out}`);
