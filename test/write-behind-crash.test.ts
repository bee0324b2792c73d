import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, expect, test } from "vitest";
import { Memory } from "../src/memory.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";

const directory = mkdtempSync(join(tmpdir(), "engram-crash-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const fixture = join(import.meta.dirname, "fixtures", "write-behind-process.ts");

function start(mode: string, dataDir: string, turns = 0): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    ["--disable-warning=ExperimentalWarning", "--import", "tsx", fixture, mode, dataDir, String(turns)],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function outboxCounts(file: string): Record<string, number> {
  const db = new DatabaseSync(file);
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    const rows = db.prepare("SELECT status, count(*) AS n FROM memory_outbox GROUP BY status").all() as { status: string; n: number }[];
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
  } finally {
    db.close();
  }
}

test("a worker killed mid-way leaves no turn lost or stored twice: the next process finishes the queue", { timeout: 60_000 }, async () => {
  const dataDir = join(directory, "data");
  const file = join(dataDir, "engram.db");
  const turns = 60;

  const first = start("enqueue-and-work", dataDir, turns);
  await until(() => first.output().includes("enqueued"), "the turns to be enqueued");
  let counts: Record<string, number> = {};
  await until(() => {
    counts = outboxCounts(file);
    return (counts.done ?? 0) >= 12;
  }, "some turns to be processed");
  first.child.kill("SIGKILL");
  expect(await first.exited).toBeNull();
  counts = outboxCounts(file);
  // Killed mid-way: some turns done, the others waiting or claimed by the dead worker.
  expect(counts.done ?? 0).toBeGreaterThanOrEqual(12);
  expect(counts.done ?? 0).toBeLessThan(turns);
  expect((counts.pending ?? 0) + (counts.processing ?? 0) + (counts.done ?? 0)).toBe(turns);

  const second = start("drain", dataDir);
  expect(await second.exited, second.output()).toBe(0);
  expect(second.output()).toContain("drained");
  expect(outboxCounts(file)).toEqual({ done: turns });

  const memory = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
  const stored: string[] = [];
  for (let user = 0; user < 4; user++) {
    const { results } = await memory.getAll({ userId: `user-${user}`, limit: 1000 });
    for (const item of results) {
      expect(Number(/^turn (\d+):/.exec(item.memory)?.[1]) % 4, item.memory).toBe(user);
      stored.push(item.memory);
    }
  }
  const expected = Array.from({ length: turns }, (_, i) => [`turn ${i}: user message`, `turn ${i}: assistant reply`]).flat();
  expect(stored.length).toBe(expected.length);
  expect(stored.sort()).toEqual(expected.sort());
  await memory.close();

  // One ADD per memory in the history: re-applied plans did not log twice.
  const db = new DatabaseSync(file, { readOnly: true });
  const history = db.prepare("SELECT event, count(*) AS n FROM memory_history GROUP BY event").all();
  db.close();
  expect(history.map((row) => ({ ...row }))).toEqual([{ event: "ADD", n: 2 * turns }]);
});
