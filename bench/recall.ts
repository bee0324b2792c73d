// Retrieval quality on conversation benchmarks in the LoCoMo schema
// (`npm run bench:recall -- [file.json] [--mode raw|extract|both] [--llm <base url>] [--embedding-cache <file>]`).
//
// Each conversation is ingested in its own scope (userId = sample_id), session by session, with
// the session date as the turn timestamp. Then every question is searched inside its
// conversation's scope and scored against its evidence turns (dia_ids):
//   recall@k        share of the evidence ids among the sources of the top k
//   all@10          the top 10 hold every evidence id
//   session@10      the top 10 hold a turn of a session that holds evidence
//   MRR@10          1 / rank of the first memory holding evidence (0 past rank 10)
//   block tokens    o200k tokens of the top 10 rendered as the memory block a model would get
// Two plain BM25 rankings are scored beside it, in the same run: over the same stored memories,
// and over the turns ("speaker: text", one document per turn, as a keyword index of the raw
// conversation would hold them).
//
// Engram is scored three ways: in-sample (Memory.search with the shipped ranker, trained on this
// file by bench/train-ranker.ts, no cut-off: `threshold: 0`), held-out (each conversation ranked
// by a ranker trained without it, leave-one-conversation-out, through the same stages), and with
// the default cut-off (what Memory.search returns without a threshold). The cut-off is measured on
// both sides: evidence kept, and memories returned for off-topic queries (each conversation's
// questions searched in another conversation's scope: the next one, and the next one that shares
// no speaker).
//
// Modes: `raw` stores each turn verbatim (infer off; the speaker as the message's name) with its dia_id in metadata;
// `extract` adds each turn through the extraction model given by --llm (an OpenAI-compatible base
// URL, or `stub` for the local deterministic stub); a memory's sources are the turns whose adds created, updated or confirmed it.
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createOpenAI } from "@ai-sdk/openai";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import { localEmbedder, type MemoryItem, renderMemoryBlock } from "../src/index.js";
import type { LinearModel } from "../src/retrieval/ranker.js";
import { bm25Scores, keywordTerms } from "../src/store-kit/index.js";
import { cachedEmbedder } from "./support/cached-embedder.js";
import { type Question, type ReadStats, readLocomo, type Sample, sessionOf } from "./support/locomo.js";
import { type Ingested, ingestLocomo } from "./support/locomo-ingest.js";
import { startOpenAiStub } from "./support/openai-stub.js";
import {
  type Conversation,
  type CutoffReport,
  crossValidate,
  crossValidateCutoff,
  loadConversations,
  nextConversation,
  noSharedSpeaker,
  recordsOf,
  resultOrder,
  runsOf,
} from "./support/ranker-training.js";
import { commit, currentLoad, defaultDataFile, figure, machine, mean, percentile, ratio, table, writeResults } from "./support/report.js";

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    mode: { type: "string" },
    llm: { type: "string" },
    model: { type: "string", default: "gpt-5-mini" },
    samples: { type: "string" },
    "embedding-cache": { type: "string" },
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

// ── evaluation ───────────────────────────────────────────────────────────────────────────────

const sourcesOf = (owned: Map<string, Set<string>>, item: { id: string; metadata: Readonly<Record<string, unknown>> }) => {
  const known = owned.get(item.id);
  if (known) return [...known];
  return typeof item.metadata.dia_id === "string" ? [item.metadata.dia_id] : [];
};

interface OffTopic {
  pairing: string;
  /** Memory.search as shipped (cut-off fitted on every conversation). */
  inSamplePerQuery: number;
  held: CutoffReport;
}

interface ModeResult {
  mode: "raw" | "extract";
  ingest: { seconds: number; adds: number; dropped: number; memories: number; llmCalls: number; inputTokens: number; outputTokens: number };
  searchMs: { p50: number; p95: number };
  engram: Record<string, Aggregate>;
  heldOut: Record<string, Aggregate>;
  cut: Record<string, Aggregate> & { memoriesPerQuery?: number };
  bm25: Record<string, Aggregate>;
  bm25Turns: Record<string, Aggregate>;
  offTopic: OffTopic[];
}

async function evaluate(mode: "raw" | "extract", samples: readonly Sample[], ingested: Ingested): Promise<ModeResult> {
  const { memory, store, embedder, sources } = ingested;
  const engramScores: QuestionScore[] = [];
  const cutScores: QuestionScore[] = [];
  const bm25ScoresList: QuestionScore[] = [];
  const bm25TurnScores: QuestionScore[] = [];
  const searchMs: number[] = [];
  let shown = 0;
  let memories = 0;
  const ranked = (owned: Map<string, Set<string>>, items: MemoryItem[]): Ranked => ({
    sources: items.map((item) => sourcesOf(owned, item)),
    items,
  });
  // Timed first, back to back as an app's searches run (the scoring below makes garbage that would
  // otherwise be collected during them): the default search (query embedding, index check,
  // ranking, cut-off), every question once.
  const defaultResults = new Map<Sample["questions"][number], MemoryItem[]>();
  for (const sample of samples) {
    for (const question of sample.questions) {
      if (question.evidence.length === 0) continue;
      const started = performance.now();
      const { results } = await memory.search(question.question, { userId: sample.sampleId, limit: 10 });
      searchMs.push(performance.now() - started);
      defaultResults.set(question, results);
    }
  }
  for (const sample of samples) {
    const owned = sources.get(sample.sampleId) ?? new Map();
    const scope = { userId: sample.sampleId };
    const stored: MemoryItem[] = [];
    for await (const item of memory.iterate(scope)) stored.push(item);
    memories += stored.length;
    const texts = stored.map((item) => item.memory);
    const turns = sample.sessions.flatMap((session) =>
      session.turns.map((turn) => ({
        diaId: turn.diaId,
        item: { memory: `${turn.speaker}: ${turn.text}`, createdAt: (session.date ?? new Date(0)).toISOString(), updatedAt: "" },
      })),
    );
    const turnTexts = turns.map((turn) => turn.item.memory);
    for (const question of sample.questions) {
      if (question.evidence.length === 0) continue;
      const cut = defaultResults.get(question) as MemoryItem[];
      shown += cut.length;
      cutScores.push(score(question, ranked(owned, cut), ranked(owned, cut)));
      const { results: top20 } = await memory.search(question.question, { ...scope, limit: 20, threshold: 0 });
      engramScores.push(score(question, ranked(owned, top20.slice(0, 10)), ranked(owned, top20)));

      const bm25 = bm25Scores(keywordTerms(question.question), texts)
        .map((value, index) => ({ value, index }))
        .filter((hit) => hit.value > 0)
        .sort((a, b) => b.value - a.value || a.index - b.index)
        .map((hit) => stored[hit.index] as MemoryItem);
      bm25ScoresList.push(score(question, ranked(owned, bm25.slice(0, 10)), ranked(owned, bm25.slice(0, 20))));
      const byTurn = bm25Scores(keywordTerms(question.question), turnTexts)
        .map((value, index) => ({ value, index }))
        .filter((hit) => hit.value > 0)
        .sort((a, b) => b.value - a.value || a.index - b.index)
        .map((hit) => turns[hit.index] as (typeof turns)[number]);
      const turnRanking = (list: typeof byTurn): Ranked => ({ sources: list.map((t) => [t.diaId]), items: list.map((t) => t.item) });
      bm25TurnScores.push(score(question, turnRanking(byTurn.slice(0, 10)), turnRanking(byTurn.slice(0, 20))));
    }
  }

  // Held-out: the same stages, each conversation ranked by a ranker trained without it.
  const conversations = await loadConversations(samples, store, embedder, sources);
  const on = await runsOf(conversations);
  const { folds } = crossValidate(conversations, on);
  const heldScores = on.map((run) => {
    const conversation = conversations[run.conv] as Conversation;
    const items = recordsOf(conversation, run, resultOrder(conversation, run, folds[run.conv] as LinearModel, 20).slice(0, 20));
    const asRanked = (list: typeof items): Ranked => ({
      sources: list.map((x) => x.sources),
      items: list.map((x) => ({ memory: x.record.text, createdAt: x.record.createdAt, updatedAt: x.record.updatedAt })),
    });
    return score(run.question, asRanked(items.slice(0, 10)), asRanked(items));
  });

  const offTopic: OffTopic[] = [];
  for (const [pairing, pair] of [
    ["next conversation", nextConversation(conversations.length)],
    ["next conversation sharing no speaker", noSharedSpeaker(conversations)],
  ] as const) {
    let injected = 0;
    let queries = 0;
    for (const [i, conversation] of conversations.entries()) {
      const target = (conversations[pair(i)] as Conversation).scope;
      for (const { question } of conversation.questions) {
        const { results } = await memory.search(question.question, { userId: target.userId as string, limit: 10 });
        injected += results.length;
        queries++;
      }
    }
    const held = crossValidateCutoff(conversations, on, await runsOf(conversations, pair), folds, pairing);
    offTopic.push({ pairing, inSamplePerQuery: injected / (queries || 1), held });
  }

  const cutAggregate = aggregate(cutScores);
  return {
    mode,
    ingest: {
      seconds: ingested.seconds,
      adds: ingested.adds,
      dropped: ingested.dropped,
      memories,
      llmCalls: ingested.llmCalls,
      inputTokens: ingested.inputTokens,
      outputTokens: ingested.outputTokens,
    },
    searchMs: { p50: percentile(searchMs, 50), p95: percentile(searchMs, 95) },
    engram: aggregate(engramScores),
    heldOut: aggregate(heldScores),
    cut: Object.assign(cutAggregate, { memoriesPerQuery: shown / (cutScores.length || 1) }),
    bm25: aggregate(bm25ScoresList),
    bm25Turns: aggregate(bm25TurnScores),
    offTopic,
  };
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────

function printMode(result: ModeResult): void {
  const pct = (value: number) => figure(value * 100, 1);
  const rows: string[][] = [["ranking", "questions", "R@5 %", "R@10 %", "R@20 %", "all@10 %", "session@10 %", "MRR@10", "block tokens"]];
  for (const [name, figures] of [
    ["Engram in-sample", result.engram],
    ["Engram held-out", result.heldOut],
    ["Engram + cut-off", result.cut],
    ["BM25 memories", result.bm25],
    ["BM25 turns", result.bm25Turns],
  ] as const) {
    for (const [group, a] of Object.entries(figures)) {
      if (typeof a !== "object") continue;
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
  const overall = (figures: Record<string, Aggregate>) => (figures.overall as Aggregate).recall10;
  for (const [baseline, figures] of [
    ["BM25 over the same memories", result.bm25],
    ["BM25 over turns", result.bm25Turns],
  ] as const)
    console.log(
      `Engram / ${baseline} on R@10: in-sample ${ratio(overall(result.engram), overall(figures))}, held-out ${ratio(overall(result.heldOut), overall(figures))}`,
    );
  console.log(
    `cut-off (in-sample, Memory.search default): evidence kept ${pct(overall(result.cut) / overall(result.engram))} % of uncut R@10, ${figure(result.cut.memoriesPerQuery, 2)} memories/query`,
  );
  for (const { pairing, inSamplePerQuery, held } of result.offTopic) {
    console.log(
      `off-topic (${pairing}): ${figure(inSamplePerQuery, 2)} memories/query in-sample; held-out ${figure(held.offTopicPerQuery, 2)} (${pct(held.offTopicAnyShare)} % of queries get any; naming a speaker of the scope ${figure(held.namingSpeaker.perQuery, 2)} over ${held.namingSpeaker.queries} queries, others ${figure(held.notNaming.perQuery, 2)} over ${held.notNaming.queries}); held-out evidence kept ${pct(held.keptShare)} % (R@10 ${pct(held.cutRecall10)} of ${pct(held.uncutRecall10)}), ${figure(held.memoriesPerQuery, 2)} memories/query`,
    );
  }
  const i = result.ingest;
  console.log(
    `ingest: ${i.adds} adds → ${i.memories} memories (${i.dropped} turns not stored) in ${figure(i.seconds)} s${i.llmCalls ? `; ${i.llmCalls} LLM calls, ${i.inputTokens} input / ${i.outputTokens} output tokens` : ""}; Engram search p50 ${figure(result.searchMs.p50)} ms, p95 ${figure(result.searchMs.p95)} ms (query embedding included; every question once, back to back, before the scoring)`,
  );
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

const local = localEmbedder();
const embedder = options["embedding-cache"] ? cachedEmbedder(local, resolve(options["embedding-cache"])) : local;
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
      const llm =
        mode === "extract"
          ? createOpenAI({ baseURL: llmUrl, apiKey: process.env.OPENAI_API_KEY ?? "none" }).chat(options.model as string)
          : undefined;
      ingested = await ingestLocomo({ mode, samples, dataDir, embedder, ...(llm ? { llm } : {}) });
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
