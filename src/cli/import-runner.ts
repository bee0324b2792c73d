import cliProgress from "cli-progress";
import { InvalidInputError } from "../errors.js";
import type { Memory } from "../memory.js";
import type { ImportChunk } from "./import-file.js";
import { formatDuration } from "./output.js";

export interface ImportSummary {
  /** Messages in the file (system messages excluded). */
  turns: number;
  /** Outbox entries they were grouped into. */
  chunks: number;
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
 * Writes chunks through the durable outbox, one at a time: `enqueue` with the chunk's
 * deterministic key (a key seen before is not queued again), then `flush` until the worker of
 * this process has written it. A chunk is applied all-or-nothing and exactly once, so the run can
 * be stopped at any point, even killed, and run again to finish.
 */
export async function runImport(
  memory: Memory,
  chunks: ImportChunk[],
  {
    infer = false,
    showProgress,
    signal,
    onProgress,
  }: { infer?: boolean; showProgress: boolean; signal: AbortSignal; onProgress?: (progress: ImportProgress) => void },
): Promise<ImportSummary> {
  const turns = chunks.reduce((sum, chunk) => sum + chunk.messages.length, 0);
  const started = performance.now();
  const summary: ImportSummary = { turns, chunks: chunks.length, imported: 0, resumed: 0, failed: 0, interrupted: false, seconds: 0 };

  let bars: cliProgress.MultiBar | undefined;
  let bar: cliProgress.SingleBar | undefined;
  if (showProgress) {
    bars = new cliProgress.MultiBar(
      {
        stream: process.stderr,
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
    const seconds = firstWriteAt === undefined ? 0 : (performance.now() - firstWriteAt) / 1000;
    const rate = seconds > 0.5 ? summary.imported / seconds : undefined;
    bar?.update(done, {
      rate: rate === undefined ? "--" : rate.toFixed(rate < 10 ? 1 : 0),
      remaining: rate ? formatDuration((turns - done) / rate) : "--",
    });
  };

  try {
    for (const chunk of chunks) {
      if (signal.aborted) {
        summary.interrupted = true;
        break;
      }
      // Expired while the import ran: it would never be returned.
      if (chunk.expiresAt !== undefined && Date.parse(chunk.expiresAt) <= Date.now()) continue;
      let queued: boolean;
      try {
        ({ queued } = await memory.enqueue(chunk.messages, {
          ...chunk.scope,
          idempotencyKey: chunk.key,
          infer,
          ...(chunk.timestamp !== undefined && { timestamp: chunk.timestamp }),
          ...(chunk.metadata !== undefined && { metadata: chunk.metadata }),
          ...(chunk.expiresAt !== undefined && { expiresAt: chunk.expiresAt }),
        }));
      } catch (error) {
        // Input the file check could not see (e.g. a text over the length limit): name where it is.
        if (!InvalidInputError.isInstance(error)) throw error;
        const where = chunk.sources[0] === chunk.sources[1] ? chunk.sources[0] : `${chunk.sources[0]} to ${chunk.sources[1]}`;
        throw new InvalidInputError({ message: `${where}: ${error.message}`, field: (error as InvalidInputError).field, cause: error });
      }
      if (queued) firstWriteAt ??= performance.now();
      const { processed, failed } = await memory.flush();
      const size = chunk.messages.length;
      if (failed > 0) summary.failed += size;
      else if (processed > 0 && queued) summary.imported += size;
      else summary.resumed += size;
      update();
    }
  } finally {
    bars?.stop();
    summary.seconds = (performance.now() - started) / 1000;
  }
  return summary;
}
