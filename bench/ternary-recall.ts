// How much of the exact nearest neighbours the ternary first pass of a large scope's scan keeps, on
// a sentence model's vectors (`node --import tsx bench/ternary-recall.ts [file.json]
// [--embedding-cache <file>]`): every turn of the benchmark file and every question embedded by the
// local model; per question, the share of the 10 and of the 200 turns nearest by exact cosine that
// are among the best K by the ternary dot product (`quantized-rows.ts`), for K = 500, 1,000, 2,000.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { localEmbedder } from "../src/index.js";
import { ternaryInto } from "../src/retrieval/quantized-rows.js";
import { cachedEmbedder } from "./support/cached-embedder.js";
import { readLocomo } from "./support/locomo.js";
import { defaultDataFile, figure } from "./support/report.js";

const { values, positionals } = parseArgs({ allowPositionals: true, options: { "embedding-cache": { type: "string" } } });
const file = resolve(positionals[0] ?? defaultDataFile);
const { samples } = readLocomo(file);
const local = localEmbedder();
const embedder = values["embedding-cache"] ? cachedEmbedder(local, resolve(values["embedding-cache"])) : local;
const turns = [...new Set(samples.flatMap((sample) => sample.sessions.flatMap((session) => session.turns.map((turn) => turn.text))))];
const questions = [...new Set(samples.flatMap((sample) => sample.questions.map((question) => question.question)))];
const [rows, queries] = [await embedder.embed(turns), await embedder.embed(questions)];
const dimension = (rows[0] as Float32Array).length;
const plane = Math.ceil(dimension / 128) * 16;
const planesOf = (vector: Float32Array) => {
  const planes = new Uint8Array(2 * plane);
  ternaryInto(vector, dimension, planes, plane);
  return planes;
};
const bits = new Uint8Array(256).map((_, byte) => byte.toString(2).replaceAll("0", "").length);
const ternaryDot = (a: Uint8Array, b: Uint8Array) => {
  let dot = 0;
  for (let k = 0; k < plane; k++) {
    const both = (a[k] as number) & (b[k] as number);
    dot += (bits[both] as number) - 2 * (bits[both & ((a[plane + k] as number) ^ (b[plane + k] as number))] as number);
  }
  return dot;
};
const unit = (vector: Float32Array) => {
  const norm = Math.hypot(...vector) || 1;
  return vector.map((value) => value / norm);
};
const rowPlanes = rows.map(planesOf);
const units = rows.map(unit);
const sizes = [500, 1_000, 2_000];
const kept = sizes.map(() => ({ top10: 0, top200: 0 }));
for (const query of queries) {
  const q = unit(query);
  const exact = units
    .map((row, i) => {
      let dot = 0;
      for (let k = 0; k < dimension; k++) dot += (row[k] as number) * (q[k] as number);
      return { i, dot };
    })
    .sort((a, b) => b.dot - a.dot || a.i - b.i);
  const planes = planesOf(query);
  const ternary = rowPlanes.map((row, i) => ({ i, dot: ternaryDot(row, planes) })).sort((a, b) => b.dot - a.dot || a.i - b.i);
  for (const [s, size] of sizes.entries()) {
    const shortlist = new Set(ternary.slice(0, size).map((hit) => hit.i));
    const share = (n: number) => exact.slice(0, n).filter((hit) => shortlist.has(hit.i)).length / n;
    (kept[s] as { top10: number; top200: number }).top10 += share(10);
    (kept[s] as { top10: number; top200: number }).top200 += share(200);
  }
}
console.log(`${file}: ${rows.length} turns, ${queries.length} questions, ${dimension} dimensions`);
for (const [s, size] of sizes.entries()) {
  const { top10, top200 } = kept[s] as { top10: number; top200: number };
  console.log(
    `best ${size} by ternary dot product (${figure((100 * size) / rows.length)} % of the turns): ` +
      `${figure((100 * top10) / queries.length)} % of the exact 10 nearest, ${figure((100 * top200) / queries.length)} % of the exact 200 nearest`,
  );
}
process.exit(0);
