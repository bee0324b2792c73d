// Consolidation of near-duplicates on conversation benchmarks in the LoCoMo schema
// (`npm run bench:consolidate -- [file.json] [--samples n] [--similarity 0.9] [--keyword-overlap 0.5] [--embedding-cache <file>]`).
//
// Every turn is stored verbatim, each conversation in its own scope (bench:recall's raw ingest).
// Then, in the same run:
//   pairs       each memory's most similar other memory of its scope and speaker: how many pairs
//               fall in each cosine band, how many also share keywords, and examples of each band
//               (what the default threshold rests on)
//   recall      R@10 and all@10 of Memory.search (threshold 0, as bench:recall in-sample) before
//               consolidation and after it; a memory merged into another counts through the one it
//               was merged into (which now stands for both turns)
//   clusters    memories, clusters and memories merged by Memory.consolidate on every scope
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { defaultMergeKeywordOverlap, defaultMergeSimilarity, findClusters } from "../src/consolidate.js";
import { localEmbedder } from "../src/index.js";
import { originOf } from "../src/memory-origin.js";
import { keywordTerms, stem } from "../src/retrieval/keywords.js";
import type { MemoryRecord } from "../src/stores/vector-store.js";
import { cachedEmbedder } from "./support/cached-embedder.js";
import { readLocomo } from "./support/locomo.js";
import { ingestLocomo } from "./support/locomo-ingest.js";
import { commit, currentLoad, defaultDataFile, figure, machine, mean, table, writeResults } from "./support/report.js";

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    samples: { type: "string" },
    similarity: { type: "string" },
    "keyword-overlap": { type: "string" },
    "embedding-cache": { type: "string" },
    examples: { type: "string", default: "3" },
  },
});
const similarity = options.similarity ? Number(options.similarity) : defaultMergeSimilarity;
const keywordOverlap = options["keyword-overlap"] ? Number(options["keyword-overlap"]) : defaultMergeKeywordOverlap;
const file = resolve(positionals[0] ?? defaultDataFile);
const { samples: all } = readLocomo(file);
const samples = options.samples ? all.slice(0, Number(options.samples)) : all;
const machineInfo = machine();
console.log(`Consolidation on ${file} (${samples.length} conversations); load ${machineInfo.load.join(" ")}`);

const local = localEmbedder();
const embedder = options["embedding-cache"] ? cachedEmbedder(local, resolve(options["embedding-cache"])) : local;
const workDir = join(tmpdir(), `engram-consolidate-${process.pid}`);
mkdirSync(workDir, { recursive: true });

type WithVector = MemoryRecord & { vector: Float32Array };
const unit = (v: Float32Array) => {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
  return v.map((x) => x / n);
};
const termsOf = (text: string) => new Set(keywordTerms(text).map(stem));
const jaccard = (a: Set<string>, b: Set<string>) => {
  let shared = 0;
  for (const t of a) if (b.has(t)) shared++;
  return a.size + b.size - shared === 0 ? 1 : shared / (a.size + b.size - shared);
};
const speaker = (r: MemoryRecord) => `${originOf(r.metadata)?.name ?? ""}`;

const ingested = await ingestLocomo({ mode: "raw", samples, dataDir: join(workDir, "raw"), embedder });
const { memory, store, sources } = ingested;
try {
  // ── pairs: each memory's nearest neighbour of the same scope and speaker ──
  const bands = [0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.95, 0.98, 1.0001];
  const counts = bands.slice(0, -1).map(() => ({ pairs: 0, sharing: [0, 0, 0] as number[], examples: [] as string[] }));
  const overlapSteps = [0.3, 0.5, 0.7];
  const byScope = new Map<string, WithVector[]>();
  for (const sample of samples) {
    const scope = { userId: sample.sampleId };
    const records: WithVector[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.list({ filter: { scope }, limit: 500, cursor });
      records.push(
        ...((await store.get(
          page.records.map((r) => r.id),
          { scope },
        )) as WithVector[]),
      );
      cursor = page.cursor;
    } while (cursor);
    byScope.set(sample.sampleId, records);
    const units = records.map((r) => unit(r.vector));
    const terms = records.map((r) => termsOf(r.text));
    for (let i = 0; i < records.length; i++) {
      let best = -1;
      let bestCos = -2;
      for (let j = 0; j < records.length; j++) {
        if (j === i || speaker(records[i] as WithVector) !== speaker(records[j] as WithVector)) continue;
        let c = 0;
        const a = units[i] as Float32Array;
        const b = units[j] as Float32Array;
        for (let k = 0; k < a.length; k++) c += (a[k] as number) * (b[k] as number);
        if (c > bestCos) {
          bestCos = c;
          best = j;
        }
      }
      if (best < i) continue; // each pair once (and only mutual-or-first direction)
      const band = bands.findIndex((edge, k) => bestCos >= edge && bestCos < (bands[k + 1] as number));
      if (band === -1) continue;
      const entry = counts[band] as (typeof counts)[number];
      entry.pairs++;
      const overlap = jaccard(terms[i] as Set<string>, terms[best] as Set<string>);
      overlapSteps.forEach((step, s) => {
        if (overlap >= step) (entry.sharing[s] as number)++;
      });
      if (entry.examples.length < Number(options.examples)) {
        entry.examples.push(
          `cos ${bestCos.toFixed(3)} kw ${overlap.toFixed(2)} | ${(records[i] as WithVector).text.slice(0, 90)} || ${(records[best] as WithVector).text.slice(0, 90)}`,
        );
      }
    }
  }
  console.log("\nnearest same-speaker neighbour of each memory, by cosine band");
  console.log(
    table([
      ["cosine", "pairs", "kw ≥ 0.3", "kw ≥ 0.5", "kw ≥ 0.7"],
      ...counts.map((c, k) => [`${bands[k]}–${Math.min(1, bands[k + 1] as number)}`, String(c.pairs), ...c.sharing.map(String)]),
    ]),
  );
  for (const [k, c] of counts.entries()) {
    if ((bands[k] as number) < 0.8) continue;
    for (const example of c.examples) console.log(`  [${bands[k]}] ${example}`);
  }

  // ── clusters a threshold grid would find (no change) ──
  const grid: string[][] = [["similarity", "keyword overlap", "clusters", "memories merged"]];
  for (const s of [0.85, 0.88, 0.9, 0.92, 0.95]) {
    for (const o of [0.3, 0.5, 0.7]) {
      let clusters = 0;
      let merged = 0;
      for (const records of byScope.values()) {
        const found = findClusters(records, { similarity: s, keywordOverlap: o });
        clusters += found.length;
        merged += found.reduce((n, c) => n + c.members.length - 1, 0);
      }
      grid.push([String(s), String(o), String(clusters), String(merged)]);
    }
  }
  console.log("\nclusters by threshold (no change)");
  console.log(table(grid));

  // ── recall before / after ──
  const recallRun = async (owned: Map<string, Map<string, Set<string>>>) => {
    const r10: number[] = [];
    const all10: number[] = [];
    for (const sample of samples) {
      const map = owned.get(sample.sampleId) ?? new Map<string, Set<string>>();
      for (const question of sample.questions) {
        if (question.evidence.length === 0) continue;
        const { results } = await memory.search(question.question, { userId: sample.sampleId, limit: 10, threshold: 0 });
        const found = new Set(
          results.flatMap((item) => [...(map.get(item.id) ?? (typeof item.metadata.dia_id === "string" ? [item.metadata.dia_id] : []))]),
        );
        const share = question.evidence.filter((id) => found.has(id)).length / question.evidence.length;
        r10.push(share);
        all10.push(share === 1 ? 1 : 0);
      }
    }
    return { recall10: mean(r10), all10: mean(all10), questions: r10.length };
  };
  // A memory's sources (dia_ids): from the ingest, else its own dia_id.
  const owned = new Map<string, Map<string, Set<string>>>();
  for (const [sampleId, records] of byScope) {
    const known = sources.get(sampleId) ?? new Map<string, Set<string>>();
    owned.set(
      sampleId,
      new Map(records.map((r) => [r.id, known.get(r.id) ?? new Set(typeof r.metadata.dia_id === "string" ? [r.metadata.dia_id] : [])])),
    );
  }
  const before = await recallRun(owned);

  let clusters = 0;
  let merged = 0;
  let memories = 0;
  const started = performance.now();
  for (const sample of samples) {
    const result = await memory.consolidate({ userId: sample.sampleId }, { similarity, keywordOverlap });
    memories += result.memories;
    clusters += result.clusters.length;
    merged += result.merged;
    const map = owned.get(sample.sampleId) as Map<string, Set<string>>;
    for (const cluster of result.clusters) {
      const union = new Set(cluster.members.flatMap((m) => [...(map.get(m.id) ?? [])]));
      map.set(cluster.into, union);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const after = await recallRun(owned);
  let left = 0;
  for (const sample of samples) for await (const _ of memory.iterate({ userId: sample.sampleId })) left++;

  console.log(`\nconsolidate (similarity ≥ ${similarity}, keyword overlap ≥ ${keywordOverlap}), verbatim (no llm)`);
  console.log(
    `memories ${memories} → ${left}; clusters ${clusters}; merged ${merged} (${figure((merged / memories) * 100, 2)} %) in ${figure(seconds, 2)} s`,
  );
  const pct = (v: number) => figure(v * 100, 2);
  console.log(
    table([
      ["Memory.search, threshold 0", "questions", "R@10 %", "all@10 %"],
      ["before consolidation", String(before.questions), pct(before.recall10), pct(before.all10)],
      ["after consolidation", String(after.questions), pct(after.recall10), pct(after.all10)],
    ]),
  );
  console.log(`\nLoad average before ${machineInfo.load.join(" ")}, after ${currentLoad().join(" ")} (${machineInfo.cores} cores)`);
  const out = writeResults("consolidate", {
    file,
    date: new Date().toISOString(),
    commit: commit(),
    machine: { ...machineInfo, loadAfter: currentLoad() },
    samples: samples.length,
    similarity,
    keywordOverlap,
    pairs: counts.map((c, k) => ({ band: bands[k], pairs: c.pairs, sharing: c.sharing })),
    grid,
    memories,
    left,
    clusters,
    merged,
    seconds,
    before,
    after,
  });
  console.log(`Raw figures: ${out}`);
} finally {
  await memory.close();
  rmSync(workDir, { recursive: true, force: true });
}
