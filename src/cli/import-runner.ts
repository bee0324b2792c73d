import cliProgress from "cli-progress";
import { InvalidInputError } from "../errors.js";
import type { Memory } from "../memory.js";
import { lockKeyOf, type Scope } from "../scope.js";
import { batchChunks, type ImportBatch, type ImportChunk } from "./import-file.js";
import { formatDuration } from "./output.js";

export interface ImportSummary {
  /** Messages in the file (system messages excluded). */
  turns: number;
  /** Adds they were grouped into (consecutive messages of one scope, timestamp and metadata). */
  chunks: number;
  /** Outbox entries the adds were written in (each one embedding call and one transaction). */
  batches: number;
  /** Turns written to memory by this run. */
  imported: number;
  /** Turns an earlier run had already imported (or queued): skipped, never stored twice. */
  resumed: number;
  /** Turns whose write failed every attempt; they stay in the outbox (see `engram pending`). */
  failed: number;
  /** True when the run was stopped (SIGINT / SIGTERM) before the end. */
  interrupted: boolean;
  seconds: number;
}

export interface ImportProgress {
  /** Writes a log line without breaking the progress bar. */
  log(line: string): void;
  stop(): void;
}

/**
 * Writes chunks through the durable outbox, a batch at a time: `enqueue` (one chunk) or
 * `enqueueMany` (consecutive chunks of one scope) with the batch's deterministic key (a key seen
 * before is not queued again), then `flush` until the worker of this process has written it. A
 * batch is applied all-or-nothing and exactly once, so the run can be stopped at any point, even
 * killed, and run again with the same `batchSize` to finish.
 */
export async function runImport(
  memory: Memory,
  chunks: ImportChunk[],
  {
    infer = false,
    batchSize = 50,
    showProgress,
    signal,
    onProgress,
    stream = process.stderr,
    now = () => performance.now(),
  }: {
    infer?: boolean;
    batchSize?: number;
    showProgress: boolean;
    signal: AbortSignal;
    onProgress?: (progress: ImportProgress) => void;
    /** Where the progress bar is drawn. @default process.stderr */
    stream?: NodeJS.WritableStream;
    /** Milliseconds, for the rate, the ETA and `seconds`. @default performance.now */
    now?: () => number;
  },
): Promise<ImportSummary> {
  const turns = chunks.reduce((sum, chunk) => sum + chunk.messages.length, 0);
  const started = now();
  const batches = batchChunks(chunks, batchSize, { infer });
  const summary: ImportSummary = {
    turns,
    chunks: chunks.length,
    batches: batches.length,
    imported: 0,
    resumed: 0,
    failed: 0,
    interrupted: false,
    seconds: 0,
  };

  let bars: cliProgress.MultiBar | undefined;
  let bar: cliProgress.SingleBar | undefined;
  if (showProgress) {
    bars = new cliProgress.MultiBar(
      {
        stream,
        format: "importing {bar} {percentage}% | {value}/{total} turns | {rate} turns/s | ETA {remaining}",
        hideCursor: true,
        clearOnComplete: false,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    bar = bars.create(turns, 0, { rate: "--", remaining: "--" });
    const multi = bars;
    onProgress?.({ log: (line) => multi.log(`${line}\n`), stop: () => multi.stop() });
  }

  // Rate and ETA count this run's writes only: turns skipped as already imported take no time.
  let firstWriteAt: number | undefined;
  const update = () => {
    const done = summary.imported + summary.resumed + summary.failed;
    const seconds = firstWriteAt === undefined ? 0 : (now() - firstWriteAt) / 1000;
    const rate = seconds > 0.5 ? summary.imported / seconds : undefined;
    bar?.update(done, {
      rate: rate === undefined ? "--" : rate.toFixed(rate < 10 ? 1 : 0),
      remaining: rate ? formatDuration((turns - done) / rate) : "--",
    });
  };

  // Batches are queued a few ahead of the worker, taking the scopes in turns: the worker writes
  // two scopes at once (never two batches of one), so the embedding model always has texts waiting
  // while the batch before is planned and written.
  const outstanding: { batch: ImportBatch; id: string; queued: boolean }[] = [];
  const settle = async () => {
    await memory.flush({ timeoutMs: POLL_MS });
    const notDone = new Map<string, string>();
    const scopes = new Map(outstanding.map(({ batch }) => [lockKeyOf(batch.scope), lockScopeOf(batch.scope)]));
    for (const scope of scopes.values()) for (const turn of await memory.pending(scope)) notDone.set(turn.id, turn.status);
    for (let i = 0; i < outstanding.length; ) {
      const { batch, id, queued } = outstanding[i] as (typeof outstanding)[number];
      const status = notDone.get(id);
      if (status === "pending" || status === "processing") {
        i++;
        continue;
      }
      outstanding.splice(i, 1);
      if (status === "failed") summary.failed += batch.size;
      else if (queued) summary.imported += batch.size;
      else summary.resumed += batch.size;
      update();
    }
  };

  try {
    for (const batch of inTurns(batches)) {
      if (signal.aborted) {
        summary.interrupted = true;
        break;
      }
      // Expired while the import ran: it would never be returned (a chunk with an expiry is a batch of its own).
      const { expiresAt } = batch.chunks[0] as ImportChunk;
      if (expiresAt !== undefined && Date.parse(expiresAt) <= Date.now()) continue;
      let entry: { id: string; queued: boolean };
      try {
        entry = await enqueueBatch(memory, batch, infer);
      } catch (error) {
        // Input the file check could not see (e.g. a text over the length limit): name where it is.
        if (!InvalidInputError.isInstance(error)) throw error;
        const { field } = error as InvalidInputError;
        const item = /^items\[(\d+)\]$/.exec(field ?? "");
        const chunk = batch.chunks[item ? Number(item[1]) : 0] as ImportChunk;
        const where = chunk.sources[0] === chunk.sources[1] ? chunk.sources[0] : `${chunk.sources[0]} to ${chunk.sources[1]}`;
        throw new InvalidInputError({ message: `${where}: ${error.message}`, field, cause: error });
      }
      if (entry.queued) firstWriteAt ??= now();
      outstanding.push({ batch, ...entry });
      while (outstanding.length >= QUEUED_AHEAD) await settle();
    }
    // Stopped or not, the batches queued are written before the run ends.
    while (outstanding.length > 0) await settle();
  } finally {
    bars?.stop();
    summary.seconds = (now() - started) / 1000;
  }
  return summary;
}

/** The scope whose pending turns include every turn of `scope`'s lock key. */
const lockScopeOf = ({ userId, agentId, runId }: Scope): Scope =>
  userId !== undefined ? { userId } : agentId !== undefined ? { agentId } : { runId };

/** Batches queued and not written yet, at most. */
export const QUEUED_AHEAD = 6;
/** How often the runner looks for batches written meanwhile. */
const POLL_MS = 100;

/**
 * The batches with the users (else agents, else runs) taking turns, each one's batches in file
 * order: the outbox writes one batch of each at a time.
 */
function* inTurns(batches: readonly ImportBatch[]): Generator<ImportBatch> {
  const byScope = new Map<string, ImportBatch[]>();
  for (const batch of batches) {
    const key = lockKeyOf(batch.scope);
    const list = byScope.get(key);
    if (list) list.push(batch);
    else byScope.set(key, [batch]);
  }
  const queues = [...byScope.values()];
  for (let round = 0; queues.some((queue) => round < queue.length); round++) {
    for (const queue of queues) {
      const batch = queue[round];
      if (batch) yield batch;
    }
  }
}

function enqueueBatch(memory: Memory, batch: ImportBatch, infer: boolean): Promise<{ id: string; queued: boolean }> {
  const [chunk] = batch.chunks as [ImportChunk];
  if (batch.chunks.length === 1) {
    return memory.enqueue(chunk.messages, {
      ...chunk.scope,
      idempotencyKey: batch.key,
      infer,
      ...(chunk.timestamp !== undefined && { timestamp: chunk.timestamp }),
      ...(chunk.metadata !== undefined && { metadata: chunk.metadata }),
      ...(chunk.expiresAt !== undefined && { expiresAt: chunk.expiresAt }),
    });
  }
  return memory.enqueueMany(
    batch.chunks.map(({ messages, timestamp, metadata }) => ({
      messages,
      ...(timestamp !== undefined && { timestamp }),
      ...(metadata !== undefined && { metadata }),
    })),
    { ...batch.scope, idempotencyKey: batch.key },
  );
}
