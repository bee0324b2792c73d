// What comparing the query without the speakers' names costs at search time
// (`node --import tsx bench/topic-embedding-cost.ts [file.json]`): the local model's embedding call
// for a question naming a speaker alone, with the same question without the names in the same
// call (what search does once the scope's speakers are known), and as two calls (a scope's first
// search). The three are interleaved per question so that load drifts alike. Prints the load average.
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { localEmbedder } from "../src/index.js";
import { stem } from "../src/retrieval/keywords.js";
import { withoutSpeakerNames } from "../src/retrieval/speaker-names.js";
import { readLocomo } from "./support/locomo.js";
import { defaultDataFile, figure, percentile } from "./support/report.js";

const file = resolve(process.argv[2] ?? defaultDataFile);
const { samples } = readLocomo(file);
const embedder = localEmbedder();
await embedder.embed(["warm up"]);
const pairs: [string, string][] = [];
for (const sample of samples) {
  const speakers = new Map(
    sample.speakers.flatMap((name) =>
      name
        .toLowerCase()
        .split(/\s+/)
        .map((word) => [stem(word), name] as const),
    ),
  );
  for (const question of sample.questions.slice(0, 12)) {
    const topic = withoutSpeakerNames(question.question, speakers);
    if (topic !== undefined) pairs.push([question.question, topic]);
  }
}
const load = () =>
  loadavg()
    .map((x) => figure(x, 2))
    .join(" ");
console.log(`${file}: ${pairs.length} questions naming a speaker; load average ${load()}`);
const alone: number[] = [];
const together: number[] = [];
const twoCalls: number[] = [];
for (const [query, topic] of pairs) {
  let started = performance.now();
  await embedder.embed([query]);
  alone.push(performance.now() - started);
  started = performance.now();
  await embedder.embed([query, topic]);
  together.push(performance.now() - started);
  started = performance.now();
  await embedder.embed([query]);
  await embedder.embed([topic]);
  twoCalls.push(performance.now() - started);
}
for (const [name, times] of [
  ["the query alone", alone],
  ["with the query without the names, one call", together],
  ["the two in two calls", twoCalls],
] as const)
  console.log(`${name}: p50 ${figure(percentile(times, 50), 1)} ms, p95 ${figure(percentile(times, 95), 1)} ms`);
console.log(`load average after ${load()}`);
