// Trains the search ranker and the cut-off on conversation benchmarks in the LoCoMo schema
// (`npm run train:ranker -- [file.json] [--embedding-cache <file>]`), through the product's own
// stages: every turn is added verbatim (its speaker as the message's name), each question is
// scored by src/retrieval's features, a memory is relevant when it holds an evidence turn.
// Prints leave-one-conversation-out figures (each conversation scored by a ranker and a cut-off
// fitted without it) beside in-sample ones, then writes the fit on every conversation to
// src/retrieval/ranker-weights.json and src/retrieval/cutoff-gate.json.
//   --embedding-cache <file>  keep vectors in a file between runs (for iterating; not for timing)
//   --dry-run                  report, write nothing
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { readLocomo, sessionOf } from "./support/locomo.js";
import {
  type Conversation,
  crossValidate,
  crossValidateCutoff,
  fitCutoff,
  loadConversations,
  nextConversation,
  noSharedSpeaker,
  type Run,
  resultOrder,
  runsOf,
} from "./support/ranker-training.js";
import { ingestTurns } from "./support/raw-ingest.js";
import { defaultDataFile, figure, repoRoot } from "./support/report.js";
import { trialMemory } from "./support/trial-memory.js";

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: { "embedding-cache": { type: "string" }, "dry-run": { type: "boolean", default: false } },
});
const file = resolve(positionals[0] ?? defaultDataFile);
const { samples } = readLocomo(file);
const { embedder, store, memory, dispose } = trialMemory("engram-train-", options["embedding-cache"]);
const pct = (x: number) => figure(x * 100, 1);

try {
  let started = performance.now();
  const ingested = await ingestTurns(memory, samples);
  console.log(
    `${file}: ${ingested.adds} turns added in ${figure((performance.now() - started) / 1000)} s, ${ingested.dropped} not stored (filler)`,
  );
  started = performance.now();
  const conversations = await loadConversations(samples, store, embedder, ingested.sources);
  console.log(
    `${conversations.reduce((n, c) => n + c.index.memories.length, 0)} memories indexed in ${figure((performance.now() - started) / 1000)} s`,
  );
  reportSessions(
    conversations,
    samples.reduce((n, sample) => n + sample.sessions.filter((session) => session.turns.length > 0).length, 0),
  );

  const on = await runsOf(conversations);
  const { folds, all } = crossValidate(conversations, on);
  const recall10 = (runs: readonly Run[], pick: (run: Run) => (typeof folds)[number]) => {
    const byCategory = new Map<string, number[]>();
    for (const run of runs) {
      const positions = resultOrder(conversations[run.conv] as Conversation, run, pick(run));
      const found = new Set(positions.slice(0, 10).flatMap((k) => run.evidence[k] as number[]));
      const recall = found.size / run.question.evidence.length;
      for (const key of ["overall", `category ${run.question.category}`]) byCategory.set(key, [...(byCategory.get(key) ?? []), recall]);
    }
    return [...byCategory.entries()]
      .sort()
      .map(([key, list]) => `${key} ${pct(list.reduce((a, b) => a + b, 0) / list.length)}`)
      .join(", ");
  };
  console.log(`R@10 held-out (leave one conversation out): ${recall10(on, (run) => folds[run.conv] as (typeof folds)[number])}`);
  console.log(`R@10 in-sample: ${recall10(on, () => all)}`);

  const pairings = [
    ["next conversation", nextConversation(conversations.length)],
    ["no shared speaker", noSharedSpeaker(conversations)],
  ] as const;
  let shipped: ReturnType<typeof fitCutoff> | undefined;
  for (const [name, pair] of pairings) {
    const off = await runsOf(conversations, pair);
    const report = crossValidateCutoff(conversations, on, off, folds, name);
    console.log(
      `cut-off, off-topic = ${name} (held-out): R@10 ${pct(report.cutRecall10)} of uncut ${pct(report.uncutRecall10)} → evidence kept ${pct(report.keptShare)} %, ${figure(report.memoriesPerQuery, 2)} memories/query; off-topic ${figure(report.offTopicPerQuery, 2)} memories/query (${pct(report.offTopicAnyShare)} % inject any; naming a speaker of the scope ${figure(report.namingSpeaker.perQuery, 2)} over ${report.namingSpeaker.queries}, others ${figure(report.notNaming.perQuery, 2)} over ${report.notNaming.queries})`,
    );
    // Shipped: calibrated against the harder pairing (scopes that may share a speaker's name).
    shipped ??= fitCutoff(on, off, all, undefined, conversations);
  }
  if (!shipped) throw new Error("no cut-off fitted");
  console.log(`shipped cut-off: gate probability ≥ ${shipped.minProbability}, gap ${shipped.gap} logits`);
  if (!options["dry-run"]) {
    writeFileSync(join(repoRoot, "src/retrieval/ranker-weights.json"), `${JSON.stringify(all)}\n`);
    writeFileSync(join(repoRoot, "src/retrieval/cutoff-gate.json"), `${JSON.stringify(shipped)}\n`);
    console.log("wrote src/retrieval/ranker-weights.json and src/retrieval/cutoff-gate.json");
  }
} finally {
  await dispose();
}

/** How sessions by time gap (what search uses) compare with the dataset's session ids. */
function reportSessions(conversations: readonly Conversation[], dataSessions: number): void {
  let pairs = 0;
  let agree = 0;
  let gapSessions = 0;
  for (const conversation of conversations) {
    const { index, sources } = conversation;
    for (let i = 1; i < index.memories.length; i++) {
      const session = sessionOf((sources[i] as string[])[0] ?? "");
      pairs++;
      const sameData = sessionOf((sources[i - 1] as string[])[0] ?? "") === session;
      if (sameData === (index.session[i] === index.session[i - 1])) agree++;
    }
    gapSessions += (index.session.at(-1) ?? -1) + 1;
  }
  console.log(
    `sessions: ${gapSessions} by the 30-minute gap rule, ${dataSessions} in the dataset; consecutive memories classified alike ${pct(agree / (pairs || 1))} %`,
  );
}
