import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuilt, cliJson, runCli, startCli } from "../cli/run-cli.js";
import { faultSeed, recordFaults, scaled, scaledTimeout, seededChoices } from "./counts.js";

// SIGKILL at random points, again and again, then a run to the end: every turn is stored exactly
// once. Kills land while turns are embedded, written, or recorded as done, in the write-behind
// worker and in `engram import` of JSONL and LoCoMo-schema files.

const directory = mkdtempSync(join(tmpdir(), "engram-kills-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
const seed = faultSeed();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads the data dir's SQLite file directly (another process may be writing it); nothing while its tables are not made yet. */
function query<T>(file: string, sql: string): T[] {
  if (!existsSync(file)) return [];
  const db = new DatabaseSync(file);
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    return db.prepare(sql).all() as T[];
  } catch (error) {
    if (/no such table/.test(String(error))) return [];
    throw error;
  } finally {
    db.close();
  }
}
const count = (file: string, sql: string) => Number(query<{ n: number }>(file, sql)[0]?.n ?? 0);

async function until(condition: () => boolean, what: string, child: ChildProcess, output: () => string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${output()}`);
    await sleep(20);
  }
  return true;
}

/** Texts expected once each vs texts stored: how many are missing, how many stored more than once. */
function lostAndDuplicated(expected: string[], stored: string[]): { lost: string[]; duplicated: string[] } {
  const seen = new Map<string, number>();
  for (const text of stored) seen.set(text, (seen.get(text) ?? 0) + 1);
  return {
    lost: expected.filter((text) => !seen.has(text)),
    duplicated: [...seen].filter(([, n]) => n > 1).map(([text]) => text),
  };
}

/** History of the data dir: one ADD per memory, nothing logged twice by a re-applied plan. */
function historyAdds(file: string): { memories: number; adds: number; twice: number } {
  return {
    memories: count(file, "SELECT count(*) AS n FROM memories"),
    adds: count(file, "SELECT count(*) AS n FROM memory_history WHERE event = 'ADD'"),
    twice: count(
      file,
      "SELECT count(*) AS n FROM (SELECT memory_id FROM memory_history WHERE event = 'ADD' GROUP BY memory_id HAVING count(*) > 1)",
    ),
  };
}

describe("SIGKILL during write-behind", () => {
  const fixture = join(import.meta.dirname, "..", "fixtures", "write-behind-process.ts");

  function start(mode: string, dataDir: string, turns = 0) {
    const child = spawn(
      process.execPath,
      ["--disable-warning=ExperimentalWarning", "--import", "tsx", fixture, mode, dataDir, String(turns)],
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
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    return { child, output: () => output, exited };
  }

  test("workers killed again and again at random points: no turn lost or stored twice once the queue is drained", {
    timeout: scaledTimeout(300_000),
  }, async () => {
    const random = seededChoices(seed);
    const dataDir = join(directory, "write-behind");
    const file = join(dataDir, "engram.db");
    const turns = 80;
    const rounds = scaled(5);
    const done = () => count(file, "SELECT count(*) AS n FROM memory_outbox WHERE status = 'done'");
    let kills = 0;
    let batchedRounds = 0;

    for (let round = 0; round < rounds && done() < turns; round++) {
      const worker = start(round === 0 ? "enqueue-and-work" : "work", dataDir, turns);
      const ready = round === 0 ? "enqueued" : "working";
      await until(() => worker.output().includes(ready), `the worker to start (${ready})`, worker.child, worker.output);
      // Kill after a few more turns are done, then a little later still: mid-embedding, mid-write or
      // just after a plan was saved.
      const target = Math.min(turns - 1, done() + 1 + random.int(8));
      const reached = await until(() => done() >= target, `${target} turns done`, worker.child, worker.output);
      await sleep(random.int(60));
      if (reached && worker.child.exitCode === null) {
        worker.child.kill("SIGKILL");
        kills++;
      }
      await worker.exited;
      if (worker.output().includes("texts of several turns at once")) batchedRounds++;
    }

    const drain = start("drain", dataDir);
    expect(await drain.exited, drain.output()).toBe(0);
    expect(
      query<Record<string, unknown>>(file, "SELECT status, count(*) AS n FROM memory_outbox GROUP BY status").map((row) => ({ ...row })),
    ).toEqual([{ status: "done", n: turns }]);

    const stored = query<{ text: string; user_id: string }>(file, "SELECT text, user_id FROM memories").map(
      (row) => `${row.user_id} ${row.text}`,
    );
    const expected = Array.from({ length: turns }, (_, i) =>
      [`turn ${i}: user message`, `turn ${i}: assistant reply`].map((text) => `user-${i % 4} ${text}`),
    ).flat();
    const { lost, duplicated } = lostAndDuplicated(expected, stored);
    recordFaults("SIGKILL during write-behind", { kills, turns, lost: lost.length, duplicated: duplicated.length, processes: kills + 2 });
    expect(kills).toBeGreaterThanOrEqual(Math.min(rounds, 2));
    // The worker takes waiting turns of one user together: kills landed in processes writing batches.
    expect(batchedRounds).toBeGreaterThanOrEqual(1);
    expect(lost).toEqual([]);
    expect(duplicated).toEqual([]);
    expect(stored).toHaveLength(expected.length);
    expect(historyAdds(file)).toEqual({ memories: expected.length, adds: expected.length, twice: 0 });
  });
});

describe("SIGKILL during engram import", () => {
  beforeAll(assertBuilt);

  /**
   * Imports `source` into `dataDir`, killing the import at random points `rounds` times, then runs
   * it to the end. Each kill costs the next run the lease of the batch in flight (5 s in the CLI).
   */
  async function killAndResume(
    source: string,
    dataDir: string,
    args: string[],
    total: number,
    rounds: number,
    random: ReturnType<typeof seededChoices>,
  ) {
    const file = join(dataDir, "engram.db");
    const stored = () => count(file, "SELECT count(*) AS n FROM memories");
    const command = ["import", source, ...args, "--data-dir", dataDir, "--json"];
    let kills = 0;
    for (let round = 0; round < rounds && stored() < total; round++) {
      const run = startCli(command);
      const target = Math.min(total - 1, stored() + 1 + random.int(Math.max(1, Math.floor(total / rounds))));
      const reached = await until(
        () => stored() >= target,
        `${target} memories`,
        run.child,
        () => run.stderr(),
      );
      await sleep(random.int(40));
      if (reached && run.child.exitCode === null) {
        run.child.kill("SIGKILL");
        kills++;
      }
      const result = await run.done;
      if (result.signal !== "SIGKILL") expect(result.code, result.stderr).toBe(0);
    }
    const last = await cliJson<{ turns: number; imported: number; resumed: number; failed: number }>(command.slice(0, -1));
    expect(last.turns).toBe(total);
    expect(last.failed).toBe(0);
    expect(last.imported + last.resumed).toBe(total);
    expect(await cliJson(["pending", "--all-scopes", "--data-dir", dataDir])).toEqual({ pending: [] });
    return kills;
  }

  /** Every memory of the data dir as `userId text`, through engram export. */
  async function exported(dataDir: string): Promise<{ key: string; line: Record<string, unknown> }[]> {
    const { code, stdout, stderr } = await runCli(["export", "--all-scopes", "--data-dir", dataDir]);
    expect(code, stderr).toBe(0);
    return stdout
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((text) => {
        const line = JSON.parse(text) as Record<string, unknown>;
        return { key: `${line.userId} ${line.memory}`, line };
      });
  }

  test("a JSONL import killed again and again at random points: every line stored exactly once", {
    timeout: scaledTimeout(300_000),
  }, async () => {
    const random = seededChoices(seed + 1);
    const dataDir = join(directory, "import-jsonl");
    const total = 240;
    // Runs of one user's turns become one batch (one outbox entry); users alternate in runs of 1 to 12.
    const lines: { role: string; content: string; userId: string }[] = [];
    while (lines.length < total) {
      const userId = `reader-${random.int(5)}`;
      for (let n = 1 + random.int(12); n > 0 && lines.length < total; n--) {
        lines.push({
          role: "user",
          content: `Line ${lines.length}: ${userId} moved the meeting on topic ${random.int(1000)} to room ${random.int(50)}`,
          userId,
        });
      }
    }
    const source = join(directory, "turns.jsonl");
    writeFileSync(source, `${lines.map((line) => JSON.stringify(line)).join("\n")}\n`);
    const batchSize = String(4 + random.int(8));

    const kills = await killAndResume(source, dataDir, ["--batch-size", batchSize], total, scaled(3), random);
    const stored = await exported(dataDir);
    const { lost, duplicated } = lostAndDuplicated(
      lines.map((line) => `${line.userId} ${line.content}`),
      stored.map((entry) => entry.key),
    );
    recordFaults("SIGKILL during import (JSONL)", {
      kills,
      turns: total,
      lost: lost.length,
      duplicated: duplicated.length,
      processes: kills + 1,
    });
    expect(kills).toBeGreaterThanOrEqual(1);
    expect(lost).toEqual([]);
    expect(duplicated).toEqual([]);
    expect(stored).toHaveLength(total);
    expect(historyAdds(join(dataDir, "engram.db"))).toEqual({ memories: total, adds: total, twice: 0 });
  });

  test("a LoCoMo-schema import killed again and again at random points: every turn stored exactly once, dated by its session", {
    timeout: scaledTimeout(300_000),
  }, async () => {
    const random = seededChoices(seed + 2);
    const dataDir = join(directory, "import-locomo");
    const speakers = ["Caroline", "Melanie"];
    const samples = ["conv-a", "conv-b"].map((sampleId, s) => {
      const conversation: Record<string, unknown> = { speaker_a: speakers[0], speaker_b: speakers[1] };
      for (let session = 1; session <= 4; session++) {
        conversation[`session_${session}_date_time`] =
          `${1 + random.int(12)}:${String(random.int(60)).padStart(2, "0")} pm on ${session + 3} May, 2023`;
        conversation[`session_${session}`] = Array.from({ length: 12 + random.int(10) }, (_, turn) => ({
          speaker: speakers[turn % 2],
          dia_id: `D${session}:${turn + 1}`,
          text: `in ${sampleId} session ${session} turn ${turn} I talked about hobby number ${random.int(1000)} and place ${s}-${random.int(100)}`,
        }));
      }
      return { sample_id: sampleId, conversation };
    });
    const source = join(directory, "locomo.json");
    writeFileSync(source, JSON.stringify(samples));
    const expected = samples.flatMap(({ sample_id, conversation }) =>
      Object.entries(conversation)
        .filter(([key]) => /^session_\d+$/.test(key))
        .flatMap(([key, turns]) =>
          (turns as { speaker: string; text: string }[]).map((turn) => ({
            key: `${sample_id} ${turn.speaker}: ${turn.text}`,
            session: Number(key.slice("session_".length)),
          })),
        ),
    );

    const kills = await killAndResume(source, dataDir, ["--batch-size", "5"], expected.length, scaled(1), random);
    const stored = await exported(dataDir);
    const { lost, duplicated } = lostAndDuplicated(
      expected.map((entry) => entry.key),
      stored.map((entry) => entry.key),
    );
    recordFaults("SIGKILL during import (LoCoMo)", {
      kills,
      turns: expected.length,
      lost: lost.length,
      duplicated: duplicated.length,
      processes: kills + 1,
    });
    expect(kills).toBeGreaterThanOrEqual(1);
    expect(lost).toEqual([]);
    expect(duplicated).toEqual([]);
    // Each turn kept its session: as metadata, and as the date it was said.
    const sessionOf = new Map(expected.map((entry) => [entry.key, entry.session]));
    for (const { key, line } of stored) {
      expect(line.metadata, key).toEqual({ session: sessionOf.get(key) });
      expect(String(line.createdAt), key).toMatch(new RegExp(`^2023-05-0${(sessionOf.get(key) as number) + 3}T`));
    }
    expect(historyAdds(join(dataDir, "engram.db"))).toEqual({ memories: expected.length, adds: expected.length, twice: 0 });
  });
});
