// Graph memory's effect on retrieval (`npm run bench:graph -- [file.json] [--embedding-cache <file>]`).
//
// Each conversation is stored verbatim (raw mode, as bench:recall) with graph memory on, in its own
// scope. Every question is then searched twice in the same run, on the same stored memories:
// `search(question, { limit: 10 })` as shipped (ranker and calibrated cut-off), and the same call
// with `graph: true`. Scored per category against the question's evidence turns, as bench:recall:
// recall@10 (share of the evidence among the results' turns), all@10, results per query. The
// graph is built without a model here (names found with wink-nlp, linked as "co-occurs").
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { localEmbedder, type MemoryItem } from "../src/index.js";
import { cachedEmbedder } from "./support/cached-embedder.js";
import { readLocomo } from "./support/locomo.js";
import { ingestLocomo } from "./support/locomo-ingest.js";
import { commit, currentLoad, defaultDataFile, figure, machine, mean, table, writeResults } from "./support/report.js";

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: { "embedding-cache": { type: "string" }, samples: { type: "string" } },
});
const file = resolve(positionals[0] ?? defaultDataFile);
const local = localEmbedder();
const embedder = options["embedding-cache"] ? cachedEmbedder(local, resolve(options["embedding-cache"])) : local;

interface Score {
  category: string;
  recall10: number;
  all10: number;
  results: number;
}

const aggregate = (scores: readonly Score[]) => {
  const groups = new Map<string, Score[]>();
  for (const s of scores) groups.set(s.category, [...(groups.get(s.category) ?? []), s]);
  const of = (list: readonly Score[]) => ({
    questions: list.length,
    recall10: mean(list.map((s) => s.recall10)),
    all10: mean(list.map((s) => s.all10)),
    results: mean(list.map((s) => s.results)),
  });
  const result: Record<string, ReturnType<typeof of>> = {};
  for (const category of [...groups.keys()].sort()) result[`category ${category}`] = of(groups.get(category) ?? []);
  result.overall = of(scores);
  return result;
};

async function main() {
  const { samples: all } = readLocomo(file);
  const samples = options.samples ? all.slice(0, Number(options.samples)) : all;
  const dataDir = mkdtempSync(join(tmpdir(), "engram-bench-graph-"));
  const loadBefore = currentLoad();
  const ingested = await ingestLocomo({ mode: "raw", samples, dataDir, embedder, graph: true });
  const { memory, sources } = ingested;
  const off: Score[] = [];
  const on: Score[] = [];
  const ms = { off: [] as number[], on: [] as number[] };
  let relations = 0;
  try {
    for (const sample of samples) {
      const owned = sources.get(sample.sampleId) ?? new Map<string, Set<string>>();
      const turnsOf = (item: MemoryItem) =>
        owned.get(item.id) ?? new Set(typeof item.metadata.dia_id === "string" ? [item.metadata.dia_id] : []);
      const scope = { userId: sample.sampleId };
      const scoreOf = (category: string, evidence: readonly string[], results: MemoryItem[]): Score => {
        const found = new Set(results.slice(0, 10).flatMap((item) => [...turnsOf(item)]));
        const recall10 = evidence.filter((id) => found.has(id)).length / evidence.length;
        return { category, recall10, all10: recall10 === 1 ? 1 : 0, results: results.length };
      };
      for (const question of sample.questions) {
        if (question.evidence.length === 0) continue;
        let started = performance.now();
        const plain = await memory.search(question.question, { ...scope, limit: 10 });
        ms.off.push(performance.now() - started);
        started = performance.now();
        const graphed = await memory.search(question.question, { ...scope, limit: 10, graph: true });
        ms.on.push(performance.now() - started);
        relations += graphed.relations?.length ?? 0;
        off.push(scoreOf(question.category, question.evidence, plain.results));
        on.push(scoreOf(question.category, question.evidence, graphed.results));
      }
    }
  } finally {
    await memory.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  const before = aggregate(off);
  const after = aggregate(on);
  const rows = [["", "questions", "recall@10 off", "recall@10 graph", "all@10 off", "all@10 graph", "results/query off", "graph"]];
  for (const key of Object.keys(before)) {
    const b = before[key] as (typeof before)[string];
    const a = after[key] as (typeof after)[string];
    rows.push([
      key,
      String(b.questions),
      figure(b.recall10 * 100),
      figure(a.recall10 * 100),
      figure(b.all10 * 100),
      figure(a.all10 * 100),
      figure(b.results, 2),
      figure(a.results, 2),
    ]);
  }
  const p50 = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)] ?? 0;
  console.log(
    `bench:graph — ${file}, ${samples.length} conversations stored verbatim (graph memory on), default search (limit 10, cut-off) without and with graph: true\n`,
  );
  console.log(table(rows));
  console.log(
    `\nsearch p50: ${figure(p50(ms.off))} ms without, ${figure(p50(ms.on))} ms with graph: true; relations returned per query: ${figure(relations / Math.max(1, on.length), 2)}`,
  );
  console.log(
    `ingest: ${figure(ingested.seconds)} s for ${ingested.adds} adds; load average before ${loadBefore.join(", ")}, after ${currentLoad().join(", ")}`,
  );
  const out = writeResults("graph", { benchmark: "graph", file, commit: commit(), machine: machine(), off: before, graph: after, ms });
  console.log(`\nraw figures: ${out}`);
}

await main();
