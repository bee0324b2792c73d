import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { Memory } from "../src/memory.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";

// Several Memory instances and processes on one data dir never fail with SQLITE_BUSY (or anything
// else): WAL, a busy timeout, and immediate transactions serialise their writes.

const directory = mkdtempSync(join(tmpdir(), "engram-concurrency-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const fixture = join(import.meta.dirname, "fixtures", "concurrent-process.ts");
const COUNT = 25;

/** What one writer leaves behind: every fact but the deleted ones, a seventh of them; every third updated. */
function expectedFacts(name: string): string[] {
  const facts: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    if (i % 7 === 0) continue;
    facts.push(i % 3 === 0 ? `${name} fact ${i} (updated)` : `${name} fact ${i}`);
  }
  for (let i = 0; i < COUNT; i += 5) facts.push(`${name} queued ${i}`);
  return facts.sort();
}

async function check(dataDir: string, names: string[]): Promise<void> {
  const memory = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
  for (const name of names) {
    const { results } = await memory.getAll({ userId: name, limit: 1000 });
    expect(results.map((item) => item.memory).sort(), name).toEqual(expectedFacts(name));
    const { results: shared } = await memory.getAll({ userId: "shared", agentId: name, limit: 1000 });
    expect(shared).toHaveLength(COUNT);
  }
  expect(await memory.pending({ allScopes: true })).toEqual([]);
  await memory.close();
}

test('processes that create one new data dir at the same instant and write to it at once never fail (regression: "database is locked" when opening)', {
  timeout: 60_000,
}, async () => {
  const dataDir = join(directory, "processes");
  const names = ["p1", "p2", "p3", "p4"];
  // Late enough for every process to have loaded and be waiting.
  const startAt = Date.now() + 3_000;
  const runs = names.map(
    (name) =>
      new Promise<{ code: number | null; output: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          ["--disable-warning=ExperimentalWarning", "--import", "tsx", fixture, dataDir, name, String(COUNT), String(startAt)],
          {
            stdio: ["ignore", "pipe", "pipe"],
          },
        );
        let output = "";
        child.stdout.on("data", (chunk) => {
          output += chunk;
        });
        child.stderr.on("data", (chunk) => {
          output += chunk;
        });
        child.on("exit", (code) => resolve({ code, output }));
      }),
  );
  for (const [i, run] of (await Promise.all(runs)).entries()) {
    expect(run.output, names[i]).toContain(`${names[i]} done`);
    expect(run.code, run.output).toBe(0);
  }
  await check(dataDir, names);
});

test("two Memory instances in one process write to one data dir at once, without an error", { timeout: 60_000 }, async () => {
  const dataDir = join(directory, "instances");
  const errors: string[] = [];
  const instances = ["i1", "i2"].map(
    (name) =>
      [
        name,
        new Memory({
          dataDir,
          embedder: deterministicEmbedder(),
          writeBehind: { pollIntervalMs: 20 },
          onError: (error) => errors.push(error.message),
        }),
      ] as const,
  );
  await Promise.all(
    instances.map(async ([name, memory]) => {
      const own = { userId: name };
      for (let i = 0; i < COUNT; i++) {
        const [{ results }] = await Promise.all([
          memory.add(`${name} fact ${i}`, own),
          memory.add(`${name} shared fact ${i}`, { userId: "shared", agentId: name }),
          memory.search(`fact ${i}`, { userId: "shared" }),
          i % 5 === 0 ? memory.enqueue(`${name} queued ${i}`, own) : Promise.resolve(),
        ]);
        const id = results[0]?.id as string;
        if (i % 3 === 0) await memory.update(id, `${name} fact ${i} (updated)`, own);
        if (i % 7 === 0) await memory.delete(id, { ...own, purge: i % 2 === 0 });
      }
      await memory.flush();
    }),
  );
  await Promise.all(instances.map(([, memory]) => memory.close()));
  expect(errors).toEqual([]);
  await check(dataDir, ["i1", "i2"]);
});
