import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { Memory } from "../../src/memory.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";
import { faultSeed, recordFaults, repeats, scaled, scaledTimeout, seededChoices } from "./counts.js";

// Several processes on one data dir, writing, reading, updating, deleting, purging and queueing
// as fast as they can, some starting at the same instant (racing to create the file), others
// joining later: none fails, and each leaves exactly what it says it left.

const directory = mkdtempSync(join(tmpdir(), "engram-processes-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
const fixture = join(import.meta.dirname, "..", "fixtures", "concurrent-process.ts");

interface Outcome {
  name: string;
  count: number;
  code: number | null;
  output: string;
}

function start(dataDir: string, name: string, count: number, startAt: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--disable-warning=ExperimentalWarning", "--import", "tsx", fixture, dataDir, name, String(count), String(startAt)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    child.on("exit", (code) => resolve({ name, count, code, output }));
  });
}

test("processes on one data dir, started together and one after another, all finish without an error and leave what they wrote", {
  timeout: scaledTimeout(300_000),
}, async () => {
  const seed = faultSeed();
  const random = seededChoices(seed);
  // Two cores run at most a handful of processes at once: a longer run repeats the round instead.
  const processes = Math.min(scaled(5), 8);
  let operations = 0;
  for (let round = 0; round < repeats(); round++) {
    const dataDir = join(directory, `data-${round}`);
    // Late enough for every process to have loaded; a few start later, while the others write.
    const startAt = Date.now() + 3_000 + processes * 300;
    const outcomes = await Promise.all(
      Array.from({ length: processes }, (_, i) =>
        start(dataDir, `p${i}`, 10 + random.int(20), startAt + (random.chance(0.4) ? random.int(1_500) : 0)),
      ),
    );
    const memory = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
    try {
      for (const { name, count, code, output } of outcomes) {
        expect(code, `${name} (seed ${seed}): ${output}`).toBe(0);
        const line = output.split("\n").find((text) => text.startsWith(`${name} done `));
        expect(line, output).toBeDefined();
        const { operations: made, left } = JSON.parse((line as string).slice(`${name} done `.length)) as {
          operations: number;
          left: string[];
        };
        operations += made;
        const { results } = await memory.getAll({ userId: name, limit: 1000 });
        expect(results.map((item) => item.memory).sort(), name).toEqual([...left].sort());
        const { results: shared } = await memory.getAll({ userId: "shared", agentId: name, limit: 1000 });
        expect(shared, name).toHaveLength(count);
      }
      expect(await memory.pending({ allScopes: true })).toEqual([]);
      const scopes = await memory.scopes({ allScopes: true });
      recordFaults("processes on one data dir", {
        processes,
        operations,
        scopes: scopes.map(({ count: _count, ...scope }) => JSON.stringify(scope)),
      });
      operations = 0;
    } finally {
      await memory.close();
    }
  }
});
