import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, expect, test } from "vitest";
import { chunkTurns, type ImportTurn } from "../../src/cli/import-file.js";
import { runImport } from "../../src/cli/import-runner.js";
import { Memory } from "../../src/memory.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";

const directory = mkdtempSync(join(tmpdir(), "engram-import-progress-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** A terminal stand-in: cli-progress draws only on a TTY. Collects what is drawn, escape codes removed. */
function terminal() {
  let drawn = "";
  const stream = Object.assign(
    new Writable({
      write(chunk, _encoding, callback) {
        drawn += String(chunk);
        callback();
      },
    }),
    { isTTY: true, columns: 160, cursorTo: () => true, moveCursor: () => true, clearLine: () => true, clearScreenDown: () => true },
  );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape codes
  return { stream, text: () => drawn.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, "") };
}

test("the import progress bar shows turns done, turns per second and the time left", async () => {
  const dataDir = join(directory, "data");
  // Each embedding call takes 40 ms: the bar, drawn 10 times a second, shows frames before the end.
  const inner = deterministicEmbedder();
  const embedder = {
    dimension: inner.dimension,
    embed: async (texts: string[]) => {
      await new Promise((resolve) => setTimeout(resolve, 40));
      return inner.embed(texts);
    },
  };
  const memory = new Memory({ dataDir, embedder, writeBehind: { pollIntervalMs: 20 } });
  // 3 users × 4 batches of 5 turns, an hour apart (each a memory of its own).
  const turns: ImportTurn[] = Array.from({ length: 60 }, (_, i) => ({
    scope: { userId: `user-${i % 3}` },
    message: { role: "user", content: `note ${i}: the meeting about topic ${i * 7} moved to room ${i % 13}` },
    timestamp: new Date(Date.UTC(2026, 0, 1, i)).toISOString(),
    source: `turns.jsonl:${i + 1}`,
  }));
  // A clock that moves 1 s each time it is read: rate and ETA are known figures.
  let clock = 0;
  const now = () => {
    clock += 1000;
    return clock;
  };
  const screen = terminal();
  try {
    const summary = await runImport(memory, chunkTurns(turns, 5), {
      batchSize: 5,
      showProgress: true,
      signal: new AbortController().signal,
      stream: screen.stream,
      now,
    });
    expect(summary).toMatchObject({ turns: 60, imported: 60, resumed: 0, failed: 0, interrupted: false });
  } finally {
    await memory.close();
  }
  const frames = screen.text();
  // The last frame: every turn, a rate in turns per second, nothing left.
  expect(frames).toMatch(/importing .* 100% \| 60\/60 turns \| \d+(\.\d)? turns\/s \| ETA 0\.0 s/);
  // Before the end, a frame with turns left and a time left for them.
  const partial = [...frames.matchAll(/\| (\d+)\/60 turns \| (\d+(?:\.\d)?) turns\/s \| ETA (\d+(?:\.\d)?) s/g)].filter(
    (match) => Number(match[1]) < 60,
  );
  expect(partial.length).toBeGreaterThan(0);
  for (const [, done, rate, left] of partial) {
    expect(Number(rate)).toBeGreaterThan(0);
    expect(Number(left)).toBeCloseTo((60 - Number(done)) / Number(rate), 0);
  }
});
