import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { QUEUED_AHEAD } from "../../src/cli/import-runner.js";
import { Memory } from "../../src/index.js";
import { assertBuilt, type CliProcess, cliJson, runCli, startCli } from "./run-cli.js";

const root = mkdtempSync(join(tmpdir(), "engram-import-resume-"));
beforeAll(assertBuilt);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const total = 200;
const batchSize = 10;
const texts = Array.from({ length: total }, (_, i) => `Note ${i}: the meeting about topic ${i * 7} moved to room ${i % 13}`);
const source = join(root, "turns.jsonl");
writeFileSync(source, `${texts.map((content) => JSON.stringify({ role: "user", content, userId: "alice" })).join("\n")}\n`);

/** Memories stored so far, read through the public API from this process (no model needed). */
async function countMemories(dataDir: string): Promise<number> {
  if (!existsSync(join(dataDir, "engram.db"))) return 0;
  const memory = new Memory({ dataDir, writeBehind: { enabled: false } });
  try {
    return (await memory.scopes({ allScopes: true })).reduce((sum, scope) => sum + scope.count, 0);
  } finally {
    await memory.close();
  }
}

async function whenSomeImported(dataDir: string, run: CliProcess): Promise<void> {
  const deadline = Date.now() + 90_000;
  while ((await countMemories(dataDir)) < batchSize) {
    if (run.child.exitCode !== null) throw new Error(`the import ended before it could be stopped: ${run.stderr()}`);
    if (Date.now() > deadline) throw new Error("the import stored nothing in 90 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every memory of alice, through engram export: the exact texts, each once. */
async function storedTexts(dataDir: string): Promise<string[]> {
  const { stdout } = await runCli(["export", "--user", "alice", "--data-dir", dataDir]);
  return stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line).memory as string);
}

const importArgs = (dataDir: string) => ["import", source, "--batch-size", String(batchSize), "--data-dir", dataDir, "--json"];

test("an import stopped with SIGINT finishes the batches it queued, exits 130, and a re-run imports the rest without storing a turn twice", {
  timeout: 240_000,
}, async () => {
  const dataDir = join(root, "interrupted");
  const run = startCli(importArgs(dataDir));
  await whenSomeImported(dataDir, run);
  run.child.kill("SIGINT");
  const stopped = await run.done;
  expect(stopped.code, stopped.stderr).toBe(130);
  expect(stopped.stderr).toMatch(/import interrupted: run the same command again to resume/);
  const first = JSON.parse(stopped.stdout);
  const before = await countMemories(dataDir);
  expect(first).toMatchObject({ turns: total, interrupted: true, imported: before, resumed: 0, failed: 0 });
  expect(before).toBeGreaterThanOrEqual(batchSize);
  expect(before).toBeLessThan(total);
  expect(before % batchSize).toBe(0);

  const second = await cliJson(importArgs(dataDir).slice(0, -1));
  // Keys are deterministic: what the first run stored is recognised and skipped, not sent again.
  expect(second).toMatchObject({ turns: total, interrupted: false, resumed: before, imported: total - before, failed: 0 });
  const stored = await storedTexts(dataDir);
  expect(stored).toHaveLength(total);
  expect(new Set(stored)).toEqual(new Set(texts));
  expect(await cliJson(["pending", "--all-scopes", "--data-dir", dataDir])).toEqual({ pending: [] });

  const third = await cliJson(importArgs(dataDir).slice(0, -1));
  expect(third).toMatchObject({ resumed: total, imported: 0 });
});

test("an import killed with SIGKILL mid-batch resumes on re-run: every batch applied exactly once", { timeout: 240_000 }, async () => {
  const dataDir = join(root, "killed");
  const run = startCli(importArgs(dataDir));
  await whenSomeImported(dataDir, run);
  run.child.kill("SIGKILL");
  const killed = await run.done;
  expect(killed.signal).toBe("SIGKILL");
  const before = await countMemories(dataDir);
  expect(before).toBeLessThan(total);
  // A batch is one transaction: it is all in, or not at all.
  expect(before % batchSize).toBe(0);

  const second = await cliJson<{ resumed: number; imported: number }>(importArgs(dataDir).slice(0, -1));
  // The batches queued at the kill (at most QUEUED_AHEAD ahead of the worker) are finished, not queued again.
  expect(second.resumed).toBeGreaterThanOrEqual(before);
  expect(second.resumed).toBeLessThanOrEqual(before + QUEUED_AHEAD * batchSize);
  expect(second.resumed + second.imported).toBe(total);
  const stored = await storedTexts(dataDir);
  expect(stored).toHaveLength(total);
  expect(new Set(stored)).toEqual(new Set(texts));
  expect(await cliJson(["pending", "--all-scopes", "--data-dir", dataDir])).toEqual({ pending: [] });
});
