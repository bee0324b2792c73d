/**
 * `npm run bench:ingest` — how fast turns get into memory, next to how fast the embedder alone is
 * in the same minute (the machine is shared: compare the two, not figures of different runs).
 *
 * Parts (`--part=embedder,write-behind,import`, default all three, in that order):
 * - embedder: the local embedding model alone on REALTALK turn texts (`--texts=600`), in calls of
 *   `--embed-batch` texts (default: the local embedder's own default), sentences per second.
 * - write-behind: `--entries=300` turns queued one `enqueue` each (one message, its speaker's
 *   scope, as an app's adapter queues them) on a fresh data dir, then `flush`: entries per second
 *   through the worker, with `writeBehind.batchSize` 1 (each turn alone) and 16 (the default)
 *   one after the other (`--write-behind-batch=1,16`). Each conversation is one user, both
 *   speakers in it. `--call-ms=100` swaps the local model for deterministic vectors whose every
 *   call takes that long, as a remote embedding API's does.
 * - import: `engram import <file>` of the built CLI (`npx tsup` first; `--cli=path/to/cli/index.js`
 *   for another build) on a fresh data dir, wall time of the whole process and turns per second;
 *   then the embedder alone on exactly the texts the import wrote, to compare.
 *
 * Options: --file=../shared/data/realtalk.json  --conversations=N (import only the first N of
 * the file)  --texts  --entries  --embed-batch  --batch-size (import's --batch-size)
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path, { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { DatabaseSync } from "node:sqlite";
import { type Embedder, localEmbedder, Memory } from "../src/index.js";
import { deterministicEmbedder } from "../src/testing/index.js";
import { readLocomo } from "./support/locomo.js";
import { currentLoad, defaultDataFile, repoRoot } from "./support/report.js";

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value = "true"] = arg.replace(/^--/, "").split("=");
    return [key, value];
  }),
);
const file = resolve(args.file ?? defaultDataFile);
const parts = (args.part ?? "embedder,write-behind,import").split(",");
const textCount = Number(args.texts ?? 600);
const entryCount = Number(args.entries ?? 300);
const embedBatch = args["embed-batch"] === undefined ? undefined : Number(args["embed-batch"]);
const writeBehindBatches = (args["write-behind-batch"] ?? "1,16").split(",").map(Number);
const callMs = Number(args["call-ms"] ?? 0);

/** A stand-in for an embedding API: deterministic vectors, each call taking `ms` however many texts it has. */
function slowCalls(ms: number): Embedder {
  const inner = deterministicEmbedder();
  return {
    dimension: inner.dimension,
    modelId: `deterministic, ${ms} ms a call`,
    async embed(texts) {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return inner.embed(texts);
    },
  };
}

const load = () => currentLoad().join(" / ");
const stamp = () => new Date().toISOString().slice(0, 16).replace("T", " ");

function turnsOf(path: string) {
  const { samples } = readLocomo(path);
  return samples.flatMap((sample) =>
    sample.sessions.flatMap((session) =>
      session.turns
        .filter((turn) => turn.text.trim() !== "")
        .map((turn) => ({ sample: sample.sampleId, speaker: turn.speaker, text: turn.text, timestamp: session.date?.toISOString() })),
    ),
  );
}

async function embedderSpeed() {
  const texts = turnsOf(file)
    .slice(0, textCount)
    .map((turn) => `${turn.speaker}: ${turn.text}`);
  const embedder = localEmbedder(embedBatch === undefined ? {} : { batchSize: embedBatch });
  await embedder.embed(["warm up"]);
  const before = load();
  const started = performance.now();
  await embedder.embed(texts);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `embedder   ${texts.length} texts in ${seconds.toFixed(1)} s = ${(texts.length / seconds).toFixed(1)} sentences/s` +
      ` (local, batch ${embedBatch ?? "default"}; load ${before} → ${load()}; ${stamp()} UTC)`,
  );
}

async function writeBehindSpeed(batchSize: number) {
  const turns = turnsOf(file).slice(0, entryCount);
  const dataDir = mkdtempSync(join(tmpdir(), "engram-bench-ingest-"));
  const memory = new Memory({ dataDir, writeBehind: { enabled: true, batchSize }, ...(callMs > 0 ? { embedder: slowCalls(callMs) } : {}) });
  try {
    await memory.search("warm up", { userId: "warm-up" });
    const before = load();
    const started = performance.now();
    for (const turn of turns) {
      await memory.enqueue([{ role: "user", name: turn.speaker, content: turn.text }], {
        userId: turn.sample,
        ...(turn.timestamp === undefined ? {} : { timestamp: turn.timestamp }),
      });
    }
    const queuedAt = performance.now();
    const { processed, failed } = await memory.flush();
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `write-behind  batchSize ${batchSize}${callMs > 0 ? `, embedder ${callMs} ms a call` : ", local embedder"}: ${processed} entries (${failed} failed) in ${seconds.toFixed(1)} s = ${(processed / seconds).toFixed(1)} entries/s` +
        ` (queued in ${((queuedAt - started) / 1000).toFixed(1)} s; load ${before} → ${load()}; ${stamp()} UTC)`,
    );
  } finally {
    await memory.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The texts an import wrote (each memory's text when added or changed), in the order written. */
function writtenTexts(file: string): string[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = db.prepare("SELECT new_value FROM memory_history WHERE event IN ('ADD', 'UPDATE') ORDER BY created_at, rowid").all() as {
      new_value: string;
    }[];
    return rows.map((row) => row.new_value);
  } finally {
    db.close();
  }
}

async function importSpeed() {
  const cli = resolve(args.cli ?? join(repoRoot, "dist", "cli", "index.js"));
  const dataDir = mkdtempSync(join(tmpdir(), "engram-bench-import-"));
  let input = file;
  if (args.conversations !== undefined) {
    const subset = (JSON.parse(readFileSync(file, "utf8")) as unknown[]).slice(0, Number(args.conversations));
    input = join(dataDir, "subset.json");
    writeFileSync(input, JSON.stringify(subset));
  }
  try {
    const before = load();
    const started = performance.now();
    const run = spawnSync(
      process.execPath,
      [
        cli,
        "import",
        input,
        "--data-dir",
        join(dataDir, "engram"),
        "--json",
        ...(args["batch-size"] ? ["--batch-size", args["batch-size"]] : []),
      ],
      { encoding: "utf8", maxBuffer: 64 * 2 ** 20 },
    );
    const seconds = (performance.now() - started) / 1000;
    if (run.status !== 0) throw new Error(`engram import exited ${run.status}: ${run.stderr}`);
    const summary = JSON.parse(run.stdout) as { turns: number; imported: number; batches: number; seconds: number };
    const after = load();
    // The embedder alone, right after, on exactly the texts the import embedded, in calls of 50.
    const texts = writtenTexts(join(dataDir, "engram", "engram.db"));
    const embedder = localEmbedder();
    await embedder.embed(["warm up"]);
    const embedStarted = performance.now();
    for (let start = 0; start < texts.length; start += 50) await embedder.embed(texts.slice(start, start + 50));
    const embedSeconds = (performance.now() - embedStarted) / 1000;
    console.log(
      `import     ${summary.imported} of ${summary.turns} turns (${summary.batches} outbox entries, ${texts.length} texts written)` +
        ` in ${seconds.toFixed(1)} s wall = ${(summary.turns / seconds).toFixed(1)} turns/s, ${(texts.length / seconds).toFixed(1)} texts/s` +
        ` (${path.basename(cli)} of ${path.dirname(path.dirname(cli))}; load ${before} → ${after}; ${stamp()} UTC)`,
    );
    console.log(
      `  the embedder alone on those ${texts.length} texts: ${embedSeconds.toFixed(1)} s = ${(texts.length / embedSeconds).toFixed(1)} sentences/s` +
        ` (the import took ${(seconds / embedSeconds).toFixed(2)}× as long; load ${after} → ${load()})`,
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

console.log(`bench:ingest — ${file}`);
for (const part of parts) {
  if (part === "embedder") await embedderSpeed();
  else if (part === "write-behind") for (const size of writeBehindBatches) await writeBehindSpeed(size);
  else if (part === "import") await importSpeed();
  else throw new Error(`--part: unknown part ${part} (embedder, write-behind, import)`);
}
