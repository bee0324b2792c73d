import { randomBytes } from "node:crypto";
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import fc from "fast-check";
import { afterAll, beforeAll, expect, test } from "vitest";
import { CorruptionError } from "../src/errors.js";
import { Memory } from "../src/memory.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";

// Any pages of the file overwritten with random bytes: every call either works or fails with a
// CorruptionError (never another error, never a ConfigError), and once a call has failed so, every
// write is refused and nothing a refused write tried to write ever shows up.

const directory = mkdtempSync(join(tmpdir(), "engram-corruption-fuzz-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
const base = join(directory, "base", "engram.db");
let pageSize = 0;
let pageCount = 0;
const ids: string[] = [];

const newMemory = (dataDir: string) =>
  new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false }, onError: () => {} });

beforeAll(async () => {
  const memory = newMemory(join(directory, "base"));
  for (const userId of ["alice", "bob", "carol"]) {
    const { results } = await memory.add(
      Array.from({ length: 25 }, (_, i) => ({ role: "user" as const, content: `${userId} remembers thing ${i}` })),
      { userId, metadata: { n: 1 } },
    );
    ids.push(...results.map((item) => item.id));
  }
  await memory.close();
  const db = new DatabaseSync(base, { readOnly: true });
  ({ page_size: pageSize } = db.prepare("PRAGMA page_size").get() as { page_size: number });
  ({ page_count: pageCount } = db.prepare("PRAGMA page_count").get() as { page_count: number });
  db.close();
});

type Call = { kind: "read" | "write"; run: (memory: Memory) => Promise<unknown>; wrote?: string };

/** The calls of one step; texts written are unique to the run and step. */
const calls = (run: string): Call[] => {
  const alice = { userId: "alice" };
  const bob = { userId: "bob" };
  return [
    { kind: "read", run: (m) => m.getAll({ ...alice, limit: 1000 }) },
    { kind: "read", run: (m) => m.getAll({ ...bob, limit: 1000 }) },
    { kind: "read", run: (m) => m.search("remembers thing", alice) },
    { kind: "read", run: (m) => m.get(ids[3] as string, alice) },
    { kind: "read", run: (m) => m.history(ids[30] as string, bob) },
    { kind: "read", run: (m) => m.pending(alice) },
    { kind: "write", run: (m) => m.add(`zq${run}added`, bob), wrote: `zq${run}added` },
    { kind: "write", run: (m) => m.enqueue(`zq${run}queued`, alice), wrote: `zq${run}queued` },
    { kind: "write", run: (m) => m.update(ids[2] as string, `zq${run}updated`, alice), wrote: `zq${run}updated` },
    { kind: "write", run: (m) => m.delete(ids[40] as string, bob) },
  ];
};

let runs = 0;

test("any damaged pages: each call works or is a CorruptionError, and once one is seen every later write is refused and leaves no trace", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.nat(), { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat(9), { minLength: 4, maxLength: 14 }),
      async (pagePicks, order) => {
        const run = runs++;
        const dataDir = join(directory, `run-${run}`);
        mkdirSync(dataDir);
        const file = join(dataDir, "engram.db");
        copyFileSync(base, file);
        const fd = openSync(file, "r+");
        for (const pick of pagePicks) writeSync(fd, randomBytes(pageSize), 0, pageSize, (pick % pageCount) * pageSize);
        closeSync(fd);

        const memory = newMemory(dataDir);
        const refused: string[] = [];
        let seen = false;
        try {
          for (const [step, index] of order.entries()) {
            const call = calls(`${run}x${step}`)[index] as Call;
            let result: unknown;
            let failure: unknown;
            try {
              result = await call.run(memory);
            } catch (error) {
              failure = error;
            }
            if (failure !== undefined) {
              // MemoryNotFoundError is a fair answer when the row's page is the damaged one and reads as empty.
              const name = (failure as Error).name;
              expect(["CorruptionError", "MemoryNotFoundError"], String(failure)).toContain(name);
              // The call that first meets the damage may have written part of its change before
              // it (a memory whose history then cannot be written); a write after that writes nothing.
              if (seen && call.wrote) refused.push(call.wrote);
              if (CorruptionError.isInstance(failure)) {
                expect((failure as CorruptionError).path).toBe(file);
                seen = true;
              }
              continue;
            }
            if (seen) expect(call.kind, "a write succeeded after the damage was seen").toBe("read");
            const text = JSON.stringify(result);
            for (const word of refused) expect(text).not.toContain(word);
          }
        } finally {
          await memory.close();
        }
      },
    ),
    { numRuns: 30 },
  );
}, 60_000);
