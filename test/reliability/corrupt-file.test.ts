import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Memory } from "../../src/memory.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";
import { faultSeed, recordFaults, scaled, scaledTimeout, seededChoices } from "./counts.js";

// A damaged main database file (engram.db, after a clean close folded the WAL into it): whatever
// the damage, no call crashes the process, and every call that fails, fails with a typed
// EngramError. The calls run in a child process (test/fixtures/corrupt-reader.ts) so that a crash
// shows as its exit, not as the test runner dying.

const fixture = join(import.meta.dirname, "..", "fixtures", "corrupt-reader.ts");
const directory = mkdtempSync(join(tmpdir(), "engram-corrupt-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
const pristine = join(directory, "pristine");
let memoryId: string;

beforeAll(async () => {
  const memory = new Memory({ dataDir: pristine, embedder: deterministicEmbedder({ dimension: 64 }), writeBehind: { enabled: false } });
  for (let i = 0; i < 120; i++) {
    const { results } = await memory.add(`user-${i % 3} fact ${i}: the walrus${i}x code is ${i * 37}`, { userId: `user-${i % 3}` });
    if (i === 0) memoryId = results[0]?.id as string;
    if (i % 5 === 0)
      await memory.update(results[0]?.id as string, `user-${i % 3} fact ${i}: changed walrus${i}x`, { userId: `user-${i % 3}` });
  }
  await memory.enqueue("a queued turn", { userId: "user-0" });
  await memory.close();
});

type Outcome = { call: string; ok?: true; error?: { name?: string; code?: string; message?: string; engram?: boolean } };

/** How long the reader may take for all its calls: a call still running then is a hang (and the reader is killed). */
const defaultHangMs = 60_000;

function read(
  dataDir: string,
  { only, hangMs = defaultHangMs }: { only?: string[]; hangMs?: number } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; hung: boolean; outcomes: Outcome[]; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--disable-warning=ExperimentalWarning", "--import", "tsx", fixture, dataDir, memoryId, ...(only ? [only.join(",")] : [])],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill("SIGKILL");
    }, hangMs);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        hung,
        outcomes: stdout
          .split("\n")
          .filter((line) => line.startsWith("{"))
          .map((line) => JSON.parse(line) as Outcome),
        output: stdout + stderr,
      });
    });
  });
}

const calls = [
  "new Memory",
  "getAll",
  "search",
  "get",
  "history",
  "add",
  "update",
  "enqueue",
  "pending",
  "delete",
  "deleteAll",
  "deleteAll purge",
  "close",
];

test("a damaged database file: no call crashes the process, and each call that fails does so with a typed EngramError", {
  timeout: scaledTimeout(300_000),
}, async () => {
  const seed = faultSeed();
  const random = seededChoices(seed);
  const size = readFileSync(join(pristine, "engram.db")).length;
  const pageSize = 8192;
  const damages: [string, (bytes: Buffer, file: string) => void][] = [
    ["the header overwritten", (bytes) => bytes.fill(random.int(256), 0, 100)],
    [
      "random pages overwritten with random bytes",
      (bytes) => {
        for (let n = 1 + random.int(4); n > 0; n--) {
          const page = 1 + random.int(Math.floor(size / pageSize) - 1);
          for (let i = page * pageSize; i < (page + 1) * pageSize; i++) bytes[i] = random.int(256);
        }
      },
    ],
    [
      "a random page zeroed",
      (bytes) => {
        const page = 1 + random.int(Math.floor(size / pageSize) - 1);
        bytes.fill(0, page * pageSize, (page + 1) * pageSize);
      },
    ],
    [
      "random bytes flipped",
      (bytes) => {
        for (let n = 1 + random.int(64); n > 0; n--) {
          const at = random.int(size);
          bytes[at] = (bytes[at] as number) ^ (1 + random.int(255));
        }
      },
    ],
    ["cut short", (_bytes, file) => truncateSync(file, random.int(size))],
    ["not a database at all", (bytes) => bytes.fill("this is not a database ")],
  ];
  const runs = Math.max(damages.length, scaled(8));
  let operations = 0;
  const seen: string[] = [];
  for (let run = 0; run < runs; run++) {
    const [what, damage] = run < damages.length ? (damages[run] as (typeof damages)[number]) : random.pick(damages);
    const copy = join(directory, `copy-${run}`);
    cpSync(pristine, copy, { recursive: true });
    const file = join(copy, "engram.db");
    const bytes = readFileSync(file);
    damage(bytes, file);
    if (what !== "cut short") writeFileSync(file, bytes);
    const { code, signal, hung, outcomes, output } = await read(copy);
    const where = `${what} (seed ${seed})`;
    expect(hung, `${where}: ${calls[outcomes.length]} did not return within ${defaultHangMs / 1000} s`).toBe(false);
    expect({ code, signal }, `${where}: the process ended by itself\n${output}`).toEqual({ code: 0, signal: null });
    expect(outcomes.map((outcome) => outcome.call)).toEqual(calls);
    for (const outcome of outcomes) {
      if (outcome.ok) continue;
      expect(outcome.error?.engram, `${where}: ${outcome.call} failed with ${outcome.error?.name}: ${outcome.error?.message}`).toBe(true);
      seen.push(`${outcome.error?.name} (${outcome.error?.code})`);
    }
    operations += outcomes.length;
    rmSync(copy, { recursive: true, force: true });
  }
  recordFaults("corrupt database file", { corruptions: runs, operations });
  // The damage was seen: calls failed, with typed errors.
  expect(seen.length).toBeGreaterThan(0);
});

/** Points the memories' id index at an empty one: every memory is then missing from it, as a damaged index page leaves some. */
function emptyIdIndex(file: string): void {
  const db = new DatabaseSync(file);
  try {
    db.exec("CREATE TABLE decoy (id TEXT PRIMARY KEY)");
    const { rootpage } = db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'sqlite_autoindex_decoy_1'").get() as {
      rootpage: number;
    };
    db.exec("PRAGMA writable_schema = ON");
    db.prepare("UPDATE sqlite_schema SET rootpage = ? WHERE name = 'sqlite_autoindex_memories_1'").run(rootpage);
    db.exec("PRAGMA writable_schema = OFF");
  } finally {
    db.close();
  }
}

test.each(["deleteAll", "deleteAll purge"])(
  "regression: %s on a file whose id index lost rows returns, instead of looping forever and blocking the process",
  {
    timeout: 60_000,
  },
  async (call) => {
    const dataDir = join(directory, `index-${call.replace(" ", "-")}`);
    cpSync(pristine, dataDir, { recursive: true });
    emptyIdIndex(join(dataDir, "engram.db"));
    const { hung, outcomes, output } = await read(dataDir, { only: [call], hangMs: 15_000 });
    expect(
      hung,
      `${call} did not return within 15 s; the database file is now ${statSync(join(dataDir, "engram.db")).size} bytes\n${output}`,
    ).toBe(false);
    const outcome = outcomes.find((candidate) => candidate.call === call);
    expect(outcome?.ok || outcome?.error?.engram, JSON.stringify(outcome)).toBe(true);
  },
);
