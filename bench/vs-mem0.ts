// Engram and mem0 side by side, same workload, same run (`npm run bench:vs-mem0`).
//
// Both libraries talk to one local OpenAI-compatible stub (bench/support/openai-stub.ts) that
// answers deterministically after a fixed latency and counts requests and tokens. mem0 is its own
// TypeScript library, mem0ai/oss 3.3.1, installed in bench/peers/mem0 and run on the machine's
// Node.js; Engram runs from this checkout on the project's Node.js. Each library runs in its own
// child process, one after the other, and times its own calls.
//
// 1. Workload: 500 consecutive REALTALK turns as adds for 5 users (100 turns of 5 conversations,
//    one user each, interleaved), then 200 searches (the conversations' own questions).
// 2. Scale: search latency of each library's default store holding 1k, 10k and 100k memories,
//    stored without an LLM (infer off) with the stub's deterministic embeddings.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readLocomo, type Sample } from "./support/locomo.js";
import { emptyCounters, type OpenAiStub, type StubCounters, startOpenAiStub } from "./support/openai-stub.js";
import {
  commit,
  currentLoad,
  defaultDataFile,
  figure,
  machine,
  mean,
  percentile,
  ratio,
  repoRoot,
  table,
  writeResults,
} from "./support/report.js";
import { type Runner, type RunnerMessage, startRunner } from "./support/runner-client.js";

const { values: options } = parseArgs({
  options: {
    data: { type: "string", default: defaultDataFile },
    "latency-ms": { type: "string", default: "25" },
    users: { type: "string", default: "5" },
    turns: { type: "string", default: "500" },
    searches: { type: "string", default: "200" },
    dimension: { type: "string", default: "256" },
    scale: { type: "string", default: "1000,10000,100000" },
    "scale-searches": { type: "string", default: "50" },
    "scale-budget-s": { type: "string", default: "900" },
    systems: { type: "string", default: "mem0,engram" },
  },
});

const latencyMs = Number(options["latency-ms"]);
const userCount = Number(options.users);
const turnCount = Number(options.turns);
const searchCount = Number(options.searches);
const dimension = Number(options.dimension);
const scaleLevels = options.scale === "" ? [] : options.scale.split(",").map(Number);
const scaleSearches = Number(options["scale-searches"]);
const scaleBudgetMs = Number(options["scale-budget-s"]) * 1000;
const systems = options.systems.split(",") as ("mem0" | "engram")[];
const llmModel = "gpt-5-mini";
const embeddingModel = "text-embedding-3-small";

const mem0Folder = join(repoRoot, "bench", "peers", "mem0");
const workDir = join(tmpdir(), `engram-bench-${process.pid}`);
const resultsLog = join(repoRoot, "bench", "results");
mkdirSync(workDir, { recursive: true });
mkdirSync(resultsLog, { recursive: true });

// ── the peer install ─────────────────────────────────────────────────────────────────────────

function mem0Node(): string {
  const marker = join(mem0Folder, "node_modules", ".engram-peer-node");
  const installed = join(mem0Folder, "node_modules", "mem0ai", "package.json");
  const ok = existsSync(marker) && existsSync(installed) && JSON.parse(readFileSync(installed, "utf8")).version === "3.3.1";
  if (!ok) {
    console.log("Installing mem0 3.3.1 in bench/peers/mem0 (once) …");
    execFileSync("bash", [join(mem0Folder, "setup.sh")], { stdio: "inherit" });
  }
  return readFileSync(marker, "utf8").trim();
}

function packageVersion(folder: string, name: string): string {
  try {
    return JSON.parse(readFileSync(join(folder, "node_modules", name, "package.json"), "utf8")).version;
  } catch {
    return "not installed";
  }
}

function start(system: "mem0" | "engram", label: string): Runner {
  const logFile = join(resultsLog, `${system}-runner.log`);
  if (system === "mem0") {
    return startRunner("mem0", mem0Node(), [join(mem0Folder, "runner.mjs")], {
      logFile,
      env: { MEM0_TELEMETRY: "false", MEM0_DIR: join(workDir, `${label}-mem0-home`) },
    });
  }
  return startRunner(
    "engram",
    process.execPath,
    ["--disable-warning=ExperimentalWarning", "--import", "tsx", join(repoRoot, "bench", "support", "engram-runner.ts")],
    { logFile },
  );
}

// ── the workload ─────────────────────────────────────────────────────────────────────────────

interface Workload {
  adds: { userId: string; messages: RunnerMessage[] }[];
  searches: { userId: string; query: string }[];
}

function workload(samples: Sample[]): Workload {
  const users = samples.slice(0, userCount);
  const perUser = Math.ceil(turnCount / users.length);
  const turns = users.map((sample) => sample.sessions.flatMap((session) => session.turns).slice(0, perUser));
  const adds: Workload["adds"] = [];
  for (let i = 0; i < perUser && adds.length < turnCount; i++) {
    users.forEach((sample, u) => {
      const turn = turns[u]?.[i];
      if (turn && adds.length < turnCount) adds.push({ userId: sample.sampleId, messages: [{ role: "user", content: turn.text }] });
    });
  }
  const searches: Workload["searches"] = [];
  for (let i = 0; searches.length < searchCount && i < 1000; i++) {
    for (const sample of users) {
      const question = sample.questions[i];
      if (question && searches.length < searchCount) searches.push({ userId: sample.sampleId, query: question.question });
    }
  }
  return { adds, searches };
}

interface SystemFigures {
  library: string;
  version: string;
  node: string;
  extract: boolean;
  note?: string;
  adds: number;
  llmCallsPerAdd: number;
  promptTokensPerAdd: number;
  completionTokensPerAdd: number;
  embeddingRequestsPerAdd: number;
  storedPerAdd: number;
  addMs: { p50: number; p95: number; mean: number };
  searches: number;
  searchMs: { p50: number; p95: number; mean: number };
  llmCallsPerSearch: number;
  embeddingRequestsPerSearch: number;
  counters: { adds: StubCounters; searches: StubCounters };
  blockedRequests: number;
  load: { before: number[]; after: number[] };
  /** Every timing, in ms. */
  raw: { addMs: number[]; searchMs: number[] };
}

/** A progress line on a terminal, nothing in a log. */
function progress(text: string | undefined): void {
  if (!process.stdout.isTTY) return;
  process.stdout.write(text === undefined ? "\r\x1b[K" : `\r\x1b[K  ${text}`);
}

const summary = (ms: number[]) => ({ p50: percentile(ms, 50), p95: percentile(ms, 95), mean: mean(ms) });

/** Runs `call` and adds what it cost at the stub to `into` (calls run one at a time). */
async function counted<T>(stub: OpenAiStub, into: StubCounters, call: () => Promise<T>): Promise<T> {
  const before = stub.counters();
  const result = await call();
  const after = stub.counters();
  for (const key of Object.keys(into) as (keyof StubCounters)[]) into[key] += after[key] - before[key];
  return result;
}

/**
 * Runs the workload on every system, call by call in turn (add i on mem0, add i on Engram, …),
 * so that a busy machine weighs on both alike. Only one call runs at a time.
 */
async function runWorkload(stub: OpenAiStub, work: Workload): Promise<Record<string, SystemFigures>> {
  const runners = systems.map((system) => ({ system, runner: start(system, "workload") }));
  const before = currentLoad();
  try {
    const state = await Promise.all(
      runners.map(async ({ system, runner }) => {
        const dataDir = join(workDir, `${system}-workload`);
        mkdirSync(dataDir, { recursive: true });
        const info = await runner.call("open", { baseURL: stub.baseURL, dataDir, dimension, llmModel, embeddingModel, extract: true });
        return {
          system,
          runner,
          info,
          addMs: [] as number[],
          searchMs: [] as number[],
          stored: 0,
          addCounters: emptyCounters(),
          searchCounters: emptyCounters(),
        };
      }),
    );
    for (const [i, add] of work.adds.entries()) {
      for (const s of state) {
        const result = await counted(stub, s.addCounters, () => s.runner.call("add", { ...add, infer: true }));
        s.addMs.push(result.ms);
        s.stored += result.stored;
      }
      if ((i + 1) % 10 === 0) progress(`${i + 1}/${work.adds.length} adds`);
    }
    progress(undefined);
    for (const search of work.searches) {
      for (const s of state) {
        s.searchMs.push((await counted(stub, s.searchCounters, () => s.runner.call("search", { ...search, limit: 10 }))).ms);
      }
    }
    const after = currentLoad();
    const figures: Record<string, SystemFigures> = {};
    for (const s of state) {
      const { blockedRequests } = await s.runner.call("close", {});
      const adds = work.adds.length;
      const searches = work.searches.length;
      figures[s.system] = {
        ...s.info,
        adds,
        llmCallsPerAdd: s.addCounters.llmRequests / adds,
        promptTokensPerAdd: s.addCounters.promptTokens / adds,
        completionTokensPerAdd: s.addCounters.completionTokens / adds,
        embeddingRequestsPerAdd: s.addCounters.embeddingRequests / adds,
        storedPerAdd: s.stored / adds,
        addMs: summary(s.addMs),
        searches,
        searchMs: summary(s.searchMs),
        llmCallsPerSearch: s.searchCounters.llmRequests / searches,
        embeddingRequestsPerSearch: s.searchCounters.embeddingRequests / searches,
        counters: { adds: s.addCounters, searches: s.searchCounters },
        blockedRequests,
        load: { before, after },
        raw: { addMs: s.addMs.map(round), searchMs: s.searchMs.map(round) },
      };
    }
    return figures;
  } finally {
    await Promise.all(runners.map(({ runner }) => runner.stop()));
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;

// ── scale ────────────────────────────────────────────────────────────────────────────────────

interface ScaleLevel {
  memories: number;
  fillSeconds: number;
  searches: number;
  searchMs: { p50: number; p95: number; mean: number };
  load: number[];
}

interface ScaleFigures {
  levels: ScaleLevel[];
  /** Levels not run, and why. */
  skipped: { memories: number; reason: string }[];
  method: string;
}

/** `count` distinct texts made from the corpus' turns (later cycles are marked so they stay distinct). */
function scaleTexts(samples: Sample[], from: number, count: number): string[] {
  const distinct = [...new Set(samples.flatMap((s) => s.sessions.flatMap((session) => session.turns.map((t) => t.text.trim()))))];
  const texts: string[] = [];
  for (let i = from; i < from + count; i++) {
    const cycle = Math.floor(i / distinct.length);
    texts.push(cycle === 0 ? (distinct[i % distinct.length] as string) : `${distinct[i % distinct.length]} (take ${cycle + 1})`);
  }
  return texts;
}

const scaleMethod = {
  mem0: "mem0's own API: add(messages, { userId, infer: false }), 100 messages per add (mem0 embeds each message in its own request)",
  engram: "Engram's own API: add(messages, { userId, infer: false }), 100 messages per add (one embedding request per add)",
};

/**
 * Grows each system's store level by level (all memories in one scope, so every search covers
 * the whole store), then searches it, the systems' searches in turn. A system whose next fill
 * would overrun the budget stops there.
 */
async function runScale(stub: OpenAiStub, samples: Sample[]): Promise<Record<string, ScaleFigures>> {
  const queries = samples.flatMap((sample) => sample.questions.map((q) => q.question));
  const state = systems.map((system) => ({
    system,
    runner: start(system, "scale"),
    figures: { levels: [], skipped: [], method: scaleMethod[system] } as ScaleFigures,
    stored: 0,
    fillMs: 0,
    stopped: false,
  }));
  try {
    for (const s of state) {
      const dataDir = join(workDir, `${s.system}-scale`);
      mkdirSync(dataDir, { recursive: true });
      await s.runner.call("open", { baseURL: stub.baseURL, dataDir, dimension, llmModel, embeddingModel, extract: false });
    }
    for (const level of scaleLevels) {
      const filled: { s: (typeof state)[number]; fillSeconds: number; searchMs: number[] }[] = [];
      for (const s of state) {
        if (s.stopped) {
          s.figures.skipped.push({ memories: level, reason: "a smaller level was not reached" });
          continue;
        }
        const missing = level - s.stored;
        const rate = s.stored > 0 ? s.stored / s.fillMs : undefined; // memories per ms
        if (rate !== undefined && missing / rate > scaleBudgetMs) {
          s.stopped = true;
          s.figures.skipped.push({
            memories: level,
            reason: `filling ${missing.toLocaleString("en-US")} more memories would take about ${Math.round(missing / rate / 1000)} s at its measured rate (budget ${scaleBudgetMs / 1000} s)`,
          });
          continue;
        }
        const started = performance.now();
        while (s.stored < level && performance.now() - started < scaleBudgetMs) {
          const texts = scaleTexts(samples, s.stored, Math.min(1000, level - s.stored));
          const result = await s.runner.call("fill", { texts, userId: "scale", batchSize: 100 });
          if (result.stored !== texts.length) throw new Error(`${s.system} stored ${result.stored} of ${texts.length} distinct texts`);
          s.stored += texts.length;
          progress(`${s.system}: ${s.stored.toLocaleString("en-US")} memories stored`);
        }
        progress(undefined);
        const fillMs = performance.now() - started;
        s.fillMs += fillMs;
        if (s.stored < level) {
          s.stopped = true;
          s.figures.skipped.push({
            memories: level,
            reason: `filling stopped at ${s.stored.toLocaleString("en-US")} memories when the ${scaleBudgetMs / 1000} s budget ran out`,
          });
          continue;
        }
        filled.push({ s, fillSeconds: fillMs / 1000, searchMs: [] });
      }
      // Searches in turn; a slow store gets fewer of them (never fewer than 10).
      const spent = new Map(filled.map((f) => [f.s.system, 0]));
      for (let i = 0; i < scaleSearches; i++) {
        for (const f of filled) {
          if (i >= 10 && (spent.get(f.s.system) ?? 0) > scaleBudgetMs / 4) continue;
          const { ms } = await f.s.runner.call("search", { query: queries[i % queries.length] as string, userId: "scale", limit: 10 });
          f.searchMs.push(ms);
          spent.set(f.s.system, (spent.get(f.s.system) ?? 0) + ms);
        }
      }
      for (const f of filled) {
        f.s.figures.levels.push({
          memories: level,
          fillSeconds: f.fillSeconds,
          searches: f.searchMs.length,
          searchMs: summary(f.searchMs),
          load: currentLoad(),
        });
      }
    }
    for (const s of state) await s.runner.call("close", {});
  } finally {
    await Promise.all(state.map((s) => s.runner.stop()));
  }
  return Object.fromEntries(state.map((s) => [s.system, s.figures]));
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────

const { samples } = readLocomo(options.data);
const work = workload(samples);
const startedAt = new Date();
const machineBefore = machine();
console.log(
  `Engram vs mem0 — ${work.adds.length} adds for ${new Set(work.adds.map((a) => a.userId)).size} users, ${work.searches.length} searches; stub latency ${latencyMs} ms; load ${machineBefore.load.join(" ")}`,
);

const stub = await startOpenAiStub({ latencyMs, dimension });
const results: Record<string, SystemFigures> = {};
const scale: Record<string, ScaleFigures> = {};
try {
  console.log(`workload: ${systems.join(" and ")}, call by call in turn …`);
  Object.assign(results, await runWorkload(stub, work));
  stub.setLatency({ latencyMs: 0, embeddingLatencyMs: 0 });
  if (scaleLevels.length > 0) {
    console.log(`scale: ${scaleLevels.map((l) => l.toLocaleString("en-US")).join(", ")} memories …`);
    Object.assign(scale, await runScale(stub, samples));
  }
} finally {
  await stub.close();
  rmSync(workDir, { recursive: true, force: true });
}

const engram = results.engram;
const mem0 = results.mem0;
const rows: string[][] = [["per add / per search", "mem0", "Engram", "Engram / mem0"]];
const metric = (name: string, pick: (f: SystemFigures) => number, digits = 1) =>
  rows.push([
    name,
    figure(mem0 && pick(mem0), digits),
    figure(engram && pick(engram), digits),
    ratio(engram && pick(engram), mem0 && pick(mem0)),
  ]);
metric("LLM calls per add", (f) => f.llmCallsPerAdd, 2);
metric("prompt tokens per add", (f) => f.promptTokensPerAdd, 0);
metric("completion tokens per add", (f) => f.completionTokensPerAdd, 0);
metric("embedding requests per add", (f) => f.embeddingRequestsPerAdd, 2);
metric("memories stored per add", (f) => f.storedPerAdd, 2);
metric("add p50 ms", (f) => f.addMs.p50);
metric("add p95 ms", (f) => f.addMs.p95);
metric("search p50 ms", (f) => f.searchMs.p50);
metric("search p95 ms", (f) => f.searchMs.p95);
metric("embedding requests per search", (f) => f.embeddingRequestsPerSearch, 2);

console.log("\n");
console.log(table(rows));
for (const [name, f] of Object.entries(results)) {
  console.log(
    `${name}: ${f.library} ${f.version} on Node ${f.node}${f.note ? ` — ${f.note}` : ""}; non-loopback requests blocked: ${f.blockedRequests}`,
  );
}

if (Object.keys(scale).length > 0) {
  const scaleRows: string[][] = [["stored memories", "mem0 p50 ms", "mem0 p95 ms", "Engram p50 ms", "Engram p95 ms", "p50 Engram / mem0"]];
  for (const level of scaleLevels) {
    const m = scale.mem0?.levels.find((l) => l.memories === level);
    const e = scale.engram?.levels.find((l) => l.memories === level);
    scaleRows.push([
      level.toLocaleString("en-US"),
      figure(m?.searchMs.p50),
      figure(m?.searchMs.p95),
      figure(e?.searchMs.p50),
      figure(e?.searchMs.p95),
      ratio(e?.searchMs.p50, m?.searchMs.p50),
    ]);
  }
  console.log(`\nSearch latency by store size (default local stores, infer off, ${dimension}-d deterministic embeddings, stub latency 0):`);
  console.log(table(scaleRows));
  for (const [name, s] of Object.entries(scale)) {
    for (const skipped of s.skipped) console.log(`${name}: ${skipped.memories.toLocaleString("en-US")} not measured: ${skipped.reason}`);
    console.log(
      `${name}: ${s.method}; searches per level ${s.levels.map((l) => l.searches).join("/")}; fill time ${s.levels.map((l) => `${Math.round(l.fillSeconds)} s`).join("/")}`,
    );
  }
}

const machineAfter = machine();
console.log(`\nLoad average before ${machineBefore.load.join(" ")}, after ${machineAfter.load.join(" ")} (${machineAfter.cores} cores)`);
const file = writeResults("vs-mem0", {
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  commit: commit(),
  machine: { ...machineBefore, loadAfter: machineAfter.load },
  versions: {
    engram: engram?.version,
    engramNode: engram?.node,
    mem0ai: packageVersion(mem0Folder, "mem0ai"),
    mem0Node: mem0?.node,
    "better-sqlite3": packageVersion(mem0Folder, "better-sqlite3"),
    "@ai-sdk/openai": packageVersion(repoRoot, "@ai-sdk/openai"),
    ai: packageVersion(repoRoot, "ai"),
  },
  config: {
    latencyMs,
    dimension,
    llmModel,
    embeddingModel,
    adds: work.adds.length,
    users: userCount,
    searches: work.searches.length,
    scaleLevels,
  },
  workload: results,
  scale,
});
console.log(`Raw figures: ${file}`);
