import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { MemoryNotFoundError } from "../../src/errors.js";
import { Memory } from "../../src/memory.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";
import { faultSeed, recordFaults, scaled, scaledTimeout, seededChoices } from "./counts.js";

// A writer is killed with SIGKILL mid-way (often mid-call); then its WAL is damaged as a torn or
// bad write leaves it: cut at a random offset, or random bytes flipped. SQLite keeps the WAL's
// frames up to the first one that is cut or fails its checksum, and of those, up to the last
// commit. Computing that point from the damaged bytes (as SQLite's recovery does) tells which of
// the writer's calls are durable: each call that returned before it must be there, whole, and
// nothing of a call after it may appear. Only the call in progress at that point may be there or
// not.

const fixture = join(import.meta.dirname, "..", "fixtures", "wal-writer.ts");
const directory = mkdtempSync(join(tmpdir(), "engram-torn-wal-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
const seed = faultSeed();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ── the WAL format (https://www.sqlite.org/fileformat2.html#walformat) ─────────────────────────

function walChecksum(data: Buffer, [s1, s2]: [number, number], bigEndian: boolean): [number, number] {
  for (let i = 0; i < data.length; i += 8) {
    s1 = (s1 + (bigEndian ? data.readUInt32BE(i) : data.readUInt32LE(i)) + s2) >>> 0;
    s2 = (s2 + (bigEndian ? data.readUInt32BE(i + 4) : data.readUInt32LE(i + 4)) + s1) >>> 0;
  }
  return [s1, s2];
}

/** Where the last commit frame that SQLite's recovery keeps ends (0: the WAL is ignored). */
function durableEnd(wal: Buffer): number {
  if (wal.length < 32) return 0;
  const magic = wal.readUInt32BE(0);
  const pageSize = wal.readUInt32BE(8);
  if ((magic & 0xfffffffe) !== 0x377f0682 || pageSize & (pageSize - 1) || pageSize < 512 || pageSize > 65536) return 0;
  const bigEndian = (magic & 1) === 1;
  let sum = walChecksum(wal.subarray(0, 24), [0, 0], bigEndian);
  if (sum[0] !== wal.readUInt32BE(24) || sum[1] !== wal.readUInt32BE(28)) return 0;
  let end = 0;
  for (let offset = 32; offset + 24 + pageSize <= wal.length; offset += 24 + pageSize) {
    if (!wal.subarray(offset + 8, offset + 16).equals(wal.subarray(16, 24)) || wal.readUInt32BE(offset) === 0) break;
    sum = walChecksum(wal.subarray(offset, offset + 8), sum, bigEndian);
    sum = walChecksum(wal.subarray(offset + 24, offset + 24 + pageSize), sum, bigEndian);
    if (sum[0] !== wal.readUInt32BE(offset + 16) || sum[1] !== wal.readUInt32BE(offset + 20)) break;
    if (wal.readUInt32BE(offset + 4) !== 0) end = offset + 24 + pageSize;
  }
  return end;
}

// ── the writer's calls, and what they leave ────────────────────────────────────────────────────

interface Step {
  step: number;
  kind: "add" | "update" | "delete";
  id?: string;
  userId: string;
  text?: string;
  /** WAL size when the call returned; undefined for the call in progress at the kill. */
  wal?: number;
}

type Entry = { event: string; previousValue: string | null; newValue: string | null };
interface State {
  live: Map<string, { userId: string; text: string }>;
  history: Map<string, { userId: string; entries: Entry[] }>;
}

function replay(steps: readonly Step[]): State {
  const state: State = { live: new Map(), history: new Map() };
  for (const { kind, id, userId, text } of steps) {
    if (id === undefined) continue;
    const before = state.live.get(id);
    const entries = state.history.get(id)?.entries ?? [];
    state.history.set(id, { userId, entries });
    if (kind === "add") {
      state.live.set(id, { userId, text: text as string });
      entries.push({ event: "ADD", previousValue: null, newValue: text as string });
    } else if (kind === "update") {
      state.live.set(id, { userId, text: text as string });
      entries.push({ event: "UPDATE", previousValue: before?.text ?? null, newValue: text as string });
    } else {
      state.live.delete(id);
      entries.push({ event: "DELETE", previousValue: before?.text ?? null, newValue: null });
    }
  }
  return state;
}

interface Observed {
  trial: string;
  live: Map<string, { userId: string; text: string }>;
  history: Map<string, Entry[] | "not found">;
  /** The state before the call in progress at the damage point, and after it. */
  before: State;
  after: State;
}

const sameLive = (observed: Observed, state: State) =>
  observed.live.size === state.live.size &&
  [...state.live].every(([id, memory]) => observed.live.get(id)?.text === memory.text && observed.live.get(id)?.userId === memory.userId);
const sameHistory = (observed: Observed, state: State) =>
  [...observed.history].every(([id, entries]) => {
    const expected = state.history.get(id)?.entries;
    return expected === undefined ? entries === "not found" : JSON.stringify(entries) === JSON.stringify(expected);
  });

// ── running the writer, damaging its WAL, reading it back ──────────────────────────────────────

/** Runs the writer, kills it after a random number of calls, and returns the calls it made. */
async function writeAndKill(dataDir: string, random: ReturnType<typeof seededChoices>): Promise<Step[]> {
  // 14 calls stay below 1,000 WAL pages (the first call writes about 200 with the schema, each call
  // after it about 45: a memory row, its keyword, vector and time-order index entries, its history):
  // no checkpoint moves frames into the main file and restarts the WAL meanwhile, which would make
  // the WAL sizes the writer printed meaningless.
  const operations = 14;
  const killAfter = 4 + random.int(operations - 4);
  const child = spawn(
    process.execPath,
    ["--disable-warning=ExperimentalWarning", "--import", "tsx", fixture, dataDir, String(operations), String(random.int(1e9))],
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
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const deadline = Date.now() + 60_000;
  while ((output.match(/"done"/g) ?? []).length < killAfter && !output.includes("written")) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the writer stopped early: ${output}`);
    await sleep(2);
  }
  await sleep(random.int(30));
  child.kill("SIGKILL");
  await exited;
  const steps: Step[] = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    let parsed: { step: number; intent?: Omit<Step, "step">; done?: { id: string; wal: number } };
    try {
      parsed = JSON.parse(line);
    } catch {
      continue; // the last line, cut by the kill
    }
    if (parsed.intent) steps.push({ step: parsed.step, ...parsed.intent });
    else if (parsed.done) Object.assign(steps[parsed.step] as Step, parsed.done);
  }
  return steps;
}

/** Opens a damaged copy with Engram and reads everything back through it; every call must work. */
async function observe(trial: string, dataDir: string, steps: Step[], end: number): Promise<{ observed: Observed; calls: number }> {
  // The first call whose last commit is not durable: it may have landed in part; later ones not at all.
  const cut = steps.findIndex((step) => step.wal === undefined || step.wal > end);
  const inProgress = cut === -1 ? undefined : steps[cut];
  const durable = cut === -1 ? steps : steps.slice(0, cut);
  const memory = new Memory({ dataDir, embedder: deterministicEmbedder({ dimension: 64 }), writeBehind: { enabled: false } });
  let calls = 0;
  try {
    const users = [...new Set(steps.map((step) => step.userId))];
    const live = new Map<string, { userId: string; text: string }>();
    for (const userId of users) {
      calls++;
      for (const item of (await memory.getAll({ userId, limit: 1000 })).results) live.set(item.id, { userId, text: item.memory });
    }
    // An add in progress has no id yet: it is the memory holding its text, if any.
    const resolved =
      inProgress?.kind === "add" && inProgress.id === undefined ? [...live].find(([, m]) => m.text === inProgress.text)?.[0] : undefined;
    const inFlight = inProgress && { ...inProgress, id: inProgress.id ?? resolved };
    const ids = new Set([...steps.map((step) => step.id), resolved, ...live.keys()].filter((id): id is string => id !== undefined));
    const owner = new Map(steps.map((step) => [step.id, step.userId]));
    const history = new Map<string, Entry[] | "not found">();
    for (const id of ids) {
      const userId = owner.get(id) ?? live.get(id)?.userId ?? (inFlight?.userId as string);
      calls += 2;
      const item = await memory.get(id, { userId });
      expect(item?.memory, `${trial}: get(${id}) and getAll agree`).toBe(live.get(id)?.text);
      const entries = await memory.history(id, { userId }).then(
        (list) => list.map(({ event, previousValue, newValue }) => ({ event, previousValue, newValue })),
        (error: unknown) => {
          if (MemoryNotFoundError.isInstance(error)) return "not found" as const;
          throw error;
        },
      );
      history.set(id, entries);
    }
    // Search (vectors and the keyword index) finds what is stored, and only that.
    for (const [id, { userId, text }] of [...live].slice(0, 8)) {
      calls++;
      const word = /walrus\d+x/.exec(text)?.[0] as string;
      const { results } = await memory.search(word, { userId, limit: 100, threshold: 0 });
      expect(
        results.map((result) => result.id),
        `${trial}: search for ${word}`,
      ).toContain(id);
      for (const result of results) expect(live.get(result.id)?.text, `${trial}: search result ${result.id}`).toBe(result.memory);
    }
    // And the memory takes new writes.
    calls++;
    expect((await memory.add(`written after recovery in ${trial}`, { userId: "after" })).results[0]?.event).toBe("ADD");
    return {
      observed: {
        trial,
        live,
        history,
        before: replay(durable),
        after: replay(inFlight ? [...durable, inFlight] : durable),
      },
      calls,
    };
  } finally {
    await memory.close();
  }
}

function integrity(dataDir: string): string {
  const db = new DatabaseSync(join(dataDir, "engram.db"), { readOnly: true });
  try {
    return (db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[]).map((row) => row.integrity_check).join("; ");
  } finally {
    db.close();
  }
}

describe("a torn or damaged WAL after a SIGKILL mid-write", () => {
  const observations: Observed[] = [];

  beforeAll(async () => {
    const random = seededChoices(seed);
    const writers = scaled(2);
    const trials = scaled(8);
    let operations = 0;
    let corruptions = 0;
    for (let writer = 0; writer < writers; writer++) {
      const killed = join(directory, `killed-${writer}`);
      const steps = await writeAndKill(killed, random);
      operations += steps.length;
      const wal = readFileSync(join(killed, "engram.db-wal"));
      // The writer's own view agrees with the WAL: every call that returned ends on a commit kept as it is.
      const end = durableEnd(wal);
      for (const step of steps) if (step.wal !== undefined) expect(step.wal, `step ${step.step}`).toBeLessThanOrEqual(end);

      for (let trial = 0; trial <= trials; trial++) {
        const copy = join(directory, `copy-${writer}-${trial}`);
        cpSync(killed, copy, { recursive: true });
        const file = join(copy, "engram.db-wal");
        let damage = "none (SIGKILL only)";
        if (trial > 0) {
          const bytes = readFileSync(file);
          if (random.chance(0.5)) {
            const at = random.int(bytes.length + 1);
            truncateSync(file, at);
            damage = `cut at byte ${at} of ${bytes.length}`;
          } else {
            const flips = Array.from({ length: 1 + random.int(3) }, () => (random.chance(0.1) ? random.int(32) : random.int(bytes.length)));
            for (const at of flips) bytes[at] = (bytes[at] as number) ^ (1 + random.int(255));
            writeFileSync(file, bytes);
            damage = `bytes flipped at ${flips.join(", ")} of ${bytes.length}`;
          }
          corruptions++;
        }
        const name = `writer ${writer} (seed ${seed}), trial ${trial}: ${damage}`;
        const { observed, calls } = await observe(name, copy, steps, durableEnd(readFileSync(file)));
        operations += calls;
        expect(integrity(copy), name).toBe("ok");
        observations.push(observed);
        rmSync(copy, { recursive: true, force: true });
      }
    }
    recordFaults("torn and damaged WAL", {
      kills: writers,
      corruptions,
      operations,
      lost: observations.filter((o) => !sameLive(o, o.before) && !sameLive(o, o.after)).length,
    });
  }, scaledTimeout(600_000));

  test("Engram opens, every read works, each call that returned before the damage is kept, nothing after it appears", () => {
    expect(observations.length).toBeGreaterThan(0);
    for (const observed of observations) {
      // Memories: as before the call in progress at the damage point, or as after it.
      expect(sameLive(observed, observed.before) || sameLive(observed, observed.after), `${observed.trial}: stored memories`).toBe(true);
      // History: likewise, on its own.
      expect(sameHistory(observed, observed.before) || sameHistory(observed, observed.after), `${observed.trial}: history`).toBe(true);
    }
  });

  test("regression: no half-written call: the call in progress at the damage point is there whole, its memory and its history, or not at all", () => {
    expect(observations.length).toBeGreaterThan(0);
    for (const observed of observations) {
      const memories = sameLive(observed, observed.after) ? "after" : "before";
      const history = sameHistory(observed, observed.after) ? "after" : "before";
      const whole =
        (sameLive(observed, observed.before) && sameHistory(observed, observed.before)) || (memories === "after" && history === "after");
      expect(whole, `${observed.trial}: the memories are as ${memories} the call in progress, its history as ${history} it`).toBe(true);
    }
  });
});

describe("SIGKILL between a call's store write and its history entry", () => {
  const writer = join(import.meta.dirname, "..", "fixtures", "stalled-history-writer.ts");

  test.each(["add", "update", "delete"] as const)(
    "regression: a direct %s killed after its store write leaves the memory and its history in step",
    async (kind) => {
      const dataDir = join(directory, `stalled-${kind}`);
      const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--import", "tsx", writer, dataDir, kind], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (chunk) => {
        output += chunk;
      });
      child.stderr.on("data", (chunk) => {
        output += chunk;
      });
      const exited = new Promise((resolve) => child.on("exit", resolve));
      const deadline = Date.now() + 30_000;
      while (!output.includes("stalled")) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the writer did not reach its history append: ${output}`);
        await sleep(10);
      }
      child.kill("SIGKILL");
      await exited;
      const { id } = JSON.parse(output.split("\n")[0] as string) as { id: string };

      const memory = new Memory({ dataDir, embedder: deterministicEmbedder({ dimension: 64 }), writeBehind: { enabled: false } });
      try {
        const scope = { userId: "alice" };
        const events = async (memoryId: string) => (await memory.history(memoryId, scope)).map((entry) => entry.event);
        if (kind === "add") {
          const second = (await memory.getAll(scope)).results.find((item) => item.memory === "a second memory");
          // Either the add did not happen, or it happened whole: its history says how the memory came to be.
          if (second) expect(await events(second.id).catch(String), "the second memory's history").toEqual(["ADD"]);
        } else if (kind === "update") {
          const text = (await memory.get(id, scope))?.memory;
          expect(await events(id), `history of a memory whose text is now ${JSON.stringify(text)}`).toEqual(
            text === "the changed text" ? ["ADD", "UPDATE"] : ["ADD"],
          );
        } else {
          const present = (await memory.get(id, scope)) !== null;
          expect(await events(id), `history of a memory that is ${present ? "still there" : "deleted"}`).toEqual(
            present ? ["ADD"] : ["ADD", "DELETE"],
          );
        }
      } finally {
        await memory.close();
      }
    },
  );
});
