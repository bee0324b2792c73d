/**
 * `npm run bench:add` — what one `add` with extraction costs: model calls, prompt and completion
 * tokens, embedding calls, wall time.
 *
 * Feeds consecutive REALTALK turns (../shared/data/realtalk.json from the repo root) through
 * `Memory.add` with a scripted extraction model. Both REALTALK speakers are people, so neither is
 * an assistant: each turn is one `add` of a single user message in its own speaker's scope
 * (`userId` = speaker), dated with its session's date. Each speaker's memory grows turn by turn,
 * so later adds are reconciled against a realistic, growing set of similar memories.
 *
 * The scripted model decides deterministically from the prompt it gets: every sentence of the new
 * user message with at least 3 keywords becomes a fact; a fact sharing at least half its keywords
 * with a shown memory is an UPDATE of it (NONE when identical), else an ADD. Token counts are
 * gpt-tokenizer o200k counts of the actual prompt (instructions, messages, output schema) and reply.
 *
 * Each run measures the adds twice, on fresh data dirs: graph memory off, then on (the same call
 * then also returns each fact's relations; the stub names the capitalised words of a fact). mem0's
 * graph mode makes 3 model calls per add in mem0/memory/graph_memory.py (`MemoryGraph.add`:
 * entity extraction, relation extraction, stale-relation deletion; mem0ai/mem0 at 07462ad), on
 * top of the calls of its vector memory; Engram's graph adds none to its 1.
 *
 * Options: --turns=500  --conversation=0  --embedder=deterministic|local  --graph=both|off|on
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import { type Embedder, localEmbedder, Memory, type Usage } from "../src/index.js";
import { keywordTerms } from "../src/store-kit/index.js";
import { deterministicEmbedder, type ScriptedPrompt, scriptedLanguageModel } from "../src/testing/index.js";
import { readLocomo } from "./support/locomo.js";
import { defaultDataFile, mean, percentile, writeResults } from "./support/report.js";

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value = "true"] = arg.replace(/^--/, "").split("=");
    return [key, value];
  }),
);
const turnCount = Number(args.turns ?? 500);
const conversationIndex = Number(args.conversation ?? 0);
const embedderName = args.embedder ?? "deterministic";
const graphModes = ({ both: [false, true], off: [false], on: [true] } as Record<string, boolean[]>)[args.graph ?? "both"];
if (!graphModes) throw new Error("--graph must be both, off or on");

/** Consecutive turns of one conversation, each dated by its session (read by the shared LoCoMo reader). */
function loadTurns(): { sample: string; turns: { speaker: string; diaId: string; text: string; timestamp: string }[] } {
  const { samples } = readLocomo(defaultDataFile);
  const sample = samples[conversationIndex];
  if (!sample) throw new Error(`realtalk.json has no conversation ${conversationIndex}`);
  const turns = sample.sessions.flatMap((session) => {
    if (!session.date) throw new Error(`Session ${session.number} of ${sample.sampleId} has no readable date`);
    const timestamp = session.date.toISOString();
    return session.turns.map((turn) => ({ speaker: turn.speaker, diaId: turn.diaId, text: turn.text, timestamp }));
  });
  return { sample: sample.sampleId, turns: turns.filter((turn) => turn.text.trim() !== "").slice(0, turnCount) };
}

// ── the scripted extraction model ───────────────────────────────────────────────────────────────

function overlap(a: string[], b: string[]): number {
  const set = new Set(b);
  const shared = a.filter((word) => set.has(word)).length;
  return shared / Math.max(1, Math.min(a.length, b.length));
}

/** The stub's relations of a fact: the user to its first capitalised word, and each such word to the next. */
function relationsOf(fact: string): { source: string; relation: string; target: string }[] {
  const names = [...fact.matchAll(/(?<=\s)\p{Lu}[\p{L}'-]+/gu)].map((match) => match[0]);
  const relations = names.slice(0, 1).map((name) => ({ source: "user", relation: "mentions", target: name }));
  for (let i = 1; i < names.length; i++) relations.push({ source: names[i - 1] as string, relation: "with", target: names[i] as string });
  return relations;
}

function decide(prompt: ScriptedPrompt): string {
  const graph = JSON.stringify(prompt.responseFormat ?? {}).includes('"relations"');
  const data = prompt.messages.at(-1)?.content ?? "";
  const lines = data.split("\n");
  const shown = lines.filter((line) => line.startsWith('{"id":')).map((line) => JSON.parse(line) as { id: string; text: string });
  const said = lines.filter((line) => line.startsWith("USER: ")).map((line) => JSON.parse(line.slice(6)) as string);
  const memory: { id: string; event: string; text: string; relations?: ReturnType<typeof relationsOf> }[] = [];
  const used = new Set<string>();
  for (const sentence of said.flatMap((text) => text.split(/(?<=[.!?])\s+/))) {
    const fact = sentence.trim();
    const words = keywordTerms(fact);
    if (words.length < 3) continue;
    const similar = shown.find((item) => !used.has(item.id) && overlap(words, keywordTerms(item.text)) >= 0.5);
    if (similar) {
      used.add(similar.id);
      const event = similar.text === fact ? "NONE" : "UPDATE";
      memory.push({ id: similar.id, event, text: fact, ...(graph ? { relations: event === "NONE" ? [] : relationsOf(fact) } : {}) });
    } else memory.push({ id: "new", event: "ADD", text: fact, ...(graph ? { relations: relationsOf(fact) } : {}) });
  }
  return JSON.stringify({ memory });
}

/** Instructions and output schema: the part of the prompt that is the same for every add. */
function fixedTokens(prompt: ScriptedPrompt): number {
  const format = prompt.responseFormat?.type === "json" ? JSON.stringify(prompt.responseFormat.schema ?? {}) : "";
  return countTokens(prompt.system) + countTokens(format);
}

function promptTokens(prompt: ScriptedPrompt): number {
  return fixedTokens(prompt) + prompt.messages.reduce((sum, message) => sum + countTokens(message.content), 0);
}

// ── figures ─────────────────────────────────────────────────────────────────────────────────────

const summary = (values: number[]) => ({
  mean: mean(values),
  p50: percentile(values, 50),
  p95: percentile(values, 95),
  max: Math.max(...values),
  total: values.reduce((sum, value) => sum + value, 0),
});

async function measure(graph: boolean) {
  const { sample, turns } = loadTurns();
  const dataDir = mkdtempSync(join(tmpdir(), "engram-bench-add-"));
  const deterministic = embedderName === "deterministic" ? deterministicEmbedder() : undefined;
  const embedder: Embedder = deterministic ?? localEmbedder();
  const llm = scriptedLanguageModel((prompt) => {
    const text = decide(prompt);
    return { text, usage: { inputTokens: promptTokens(prompt), outputTokens: countTokens(text) } };
  });
  const memory = new Memory({ dataDir, embedder, llm, writeBehind: { enabled: false }, graph });

  // Loads the embedding model and opens the store outside the measured adds.
  await memory.search("warm up", { userId: "warm-up" });

  const rows: { turn: string; llmCalls: number; promptTokens: number; completionTokens: number; embeddingCalls: number; ms: number }[] = [];
  const events: Record<string, number> = { ADD: 0, UPDATE: 0, DELETE: 0, NONE: 0 };
  let warnings = 0;
  let usageMismatch = 0;
  for (const turn of turns) {
    const promptsBefore = llm.prompts.length;
    const embedsBefore = deterministic?.calls.length ?? 0;
    const started = performance.now();
    const result = await memory.add([{ role: "user", content: turn.text }], { userId: turn.speaker, timestamp: turn.timestamp });
    const ms = performance.now() - started;
    const prompts = llm.prompts.slice(promptsBefore);
    const tokens = prompts.reduce((sum, prompt) => sum + promptTokens(prompt), 0);
    const usage: Usage = result.usage;
    if (usage.inputTokens !== tokens) usageMismatch++;
    const embeddingCalls = deterministic ? deterministic.calls.length - embedsBefore : usage.embeddingCalls;
    rows.push({
      turn: turn.diaId,
      llmCalls: prompts.length,
      promptTokens: tokens,
      completionTokens: usage.outputTokens,
      embeddingCalls,
      ms,
    });
    for (const item of result.results) events[item.event] = (events[item.event] ?? 0) + 1;
    warnings += result.warnings?.length ?? 0;
  }
  const stored = (
    await Promise.all([...new Set(turns.map((turn) => turn.speaker))].map((userId) => memory.getAll({ userId, limit: 1000 })))
  ).reduce((sum, { results }) => sum + results.length, 0);
  await memory.close();
  rmSync(dataDir, { recursive: true, force: true });

  const called = rows.filter((row) => row.llmCalls > 0);
  const figures = {
    llmCalls: summary(rows.map((row) => row.llmCalls)),
    promptTokens: summary(called.map((row) => row.promptTokens)),
    completionTokens: summary(called.map((row) => row.completionTokens)),
    embeddingCalls: summary(rows.map((row) => row.embeddingCalls)),
    addMs: summary(rows.map((row) => row.ms)),
  };
  const fixedPromptTokens = llm.prompts[0] ? fixedTokens(llm.prompts[0]) : 0;

  const format = (value: number, digits = 1) => (Number.isInteger(value) ? String(value) : value.toFixed(digits));
  console.log(
    `bench:add — ${rows.length} REALTALK turns of ${sample}, one add each (user message, speaker's scope), graph memory ${graph ? "on" : "off"}`,
  );
  console.log(
    `embedder: ${embedder.modelId ?? embedderName}, store: sqlite (${dataDir}), model: scripted (deterministic from the prompt)\n`,
  );
  const table = [
    ["per add", "mean", "p50", "p95", "max", "total"],
    ...Object.entries(figures).map(([name, s]) => [
      name === "addMs" ? "add wall time (ms)" : name,
      format(s.mean, 2),
      format(s.p50),
      format(s.p95),
      format(s.max),
      name === "addMs" ? format(s.total, 0) : format(s.total),
    ]),
  ];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  for (const row of table)
    console.log(row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  "));
  console.log(
    `\nadds that called the model: ${called.length}/${rows.length}; fixed part of every prompt (instructions + output schema): ${fixedPromptTokens} tokens`,
  );
  console.log(
    `events: ${Object.entries(events)
      .map(([event, count]) => `${event} ${count}`)
      .join(", ")}; warnings: ${warnings}; memories stored: ${stored}`,
  );
  if (usageMismatch > 0) console.log(`WARNING: ${usageMismatch} adds reported input tokens different from the prompt's count`);

  const file = writeResults(graph ? "add-graph" : "add", {
    benchmark: "add",
    graph,
    sample,
    turns: rows.length,
    embedder: embedder.modelId ?? embedderName,
    node: process.version,
    fixedPromptTokens,
    figures,
    events,
    warnings,
    stored,
    rows,
  });
  console.log(`\nraw figures: ${file}\n`);
  return { fixedPromptTokens, figures };
}

const measured = [];
for (const graph of graphModes) measured.push({ graph, ...(await measure(graph)) });
if (measured.length === 2) {
  const [off, on] = measured as [(typeof measured)[number], (typeof measured)[number]];
  const line = (name: string, pick: (m: typeof off) => number, digits = 1) =>
    console.log(`${name.padEnd(28)} ${pick(off).toFixed(digits).padStart(8)}  ${pick(on).toFixed(digits).padStart(8)}`);
  console.log(`${"graph memory".padEnd(28)} ${"off".padStart(8)}  ${"on".padStart(8)}`);
  line("model calls per add (mean)", (m) => m.figures.llmCalls.mean, 2);
  line("fixed prompt tokens", (m) => m.fixedPromptTokens, 0);
  line("prompt tokens per call", (m) => m.figures.promptTokens.mean);
  line("completion tokens per call", (m) => m.figures.completionTokens.mean);
  line("embedding calls per add", (m) => m.figures.embeddingCalls.mean, 2);
  line("add wall time p50 (ms)", (m) => m.figures.addMs.p50);
  console.log(
    "mem0 graph mode: 3 model calls per add in MemoryGraph.add (graph_memory.py), besides its vector memory's; Engram: 1 in all.",
  );
}
