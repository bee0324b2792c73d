import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { InvalidInputError } from "../../src/errors.js";
import type { HistoryLog } from "../../src/history/history-log.js";
import { inMemoryHistory } from "../../src/history/in-memory-history.js";
import { Memory } from "../../src/memory.js";
import { inMemoryStore } from "../../src/stores/in-memory-store.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";
import { spy } from "../support/spies.js";

// The change log and the outbox are two contracts: `outbox` puts the queue of turns somewhere
// else than `historyStore`, which then only needs to be a HistoryLog.

const directory = mkdtempSync(join(tmpdir(), "engram-outbox-option-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** Only the HistoryLog half of an in-memory history: any outbox call on it would fail. */
function logOnly(): HistoryLog {
  const { init, append, list, purge, reset, close } = inMemoryHistory();
  return { init, append, list, purge, reset, close };
}

const alice = { userId: "alice" };

describe("Memory({ outbox })", () => {
  test("queues turns in the outbox and writes the change log to historyStore, which may be a HistoryLog only", async () => {
    const calls: string[] = [];
    const log = spy(logOnly(), "log", calls);
    // Read directly by the test; Memory sees the spied one.
    const queue = inMemoryHistory();
    const outbox = spy(queue, "outbox", calls);
    const memory = new Memory({
      embedder: deterministicEmbedder(),
      vectorStore: inMemoryStore(),
      historyStore: log,
      outbox,
      writeBehind: { pollIntervalMs: 20 },
      onError: () => {},
    });
    const { id, queued } = await memory.enqueue("I drink my coffee black", alice);
    expect(queued).toBe(true);
    expect((await queue.pending(alice)).map((entry) => entry.id)).toEqual([id]);
    expect(await memory.flush({ timeoutMs: 10_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
    const [item] = (await memory.getAll(alice)).results;
    expect(item?.memory).toBe("I drink my coffee black");
    // The change log is the log's, not the outbox's own one.
    expect((await memory.history(item?.id as string, alice)).map((entry) => entry.event)).toEqual(["ADD"]);
    expect(await queue.list(item?.id as string, alice)).toEqual([]);
    expect(await queue.statuses([id])).toEqual(new Map([[id, "done"]]));

    // A purge erases the text from both: the log's entries and the outbox's queued turns.
    await memory.enqueue("I drink my coffee black, again", { ...alice, idempotencyKey: "again" });
    await memory.delete(item?.id as string, { ...alice, purge: true });
    expect((await memory.history(item?.id as string, alice)).every((entry) => entry.newValue === null)).toBe(true);
    expect(await queue.pending(alice)).toEqual([]);

    await memory.reset();
    await memory.close();
    const logCalls = calls.filter((call) => call.startsWith("log."));
    const outboxCalls = calls.filter((call) => call.startsWith("outbox."));
    for (const call of ["log.init", "log.append", "log.list", "log.purge", "log.reset", "log.close"]) expect(logCalls).toContain(call);
    for (const call of ["outbox.init", "outbox.enqueue", "outbox.claim", "outbox.savePlan", "outbox.complete", "outbox.purgePending"]) {
      expect(outboxCalls).toContain(call);
    }
    for (const call of ["outbox.reset", "outbox.close"]) expect(outboxCalls).toContain(call);
    // The outbox is used for the queue only.
    expect(outboxCalls.filter((call) => ["outbox.append", "outbox.list", "outbox.purge"].includes(call))).toEqual([]);
  });

  test("an outbox next to the default SQLite history gets the turns; the file keeps the change log", async () => {
    const outbox = inMemoryHistory();
    const memory = new Memory({
      dataDir: join(directory, "data"),
      embedder: deterministicEmbedder(),
      outbox,
      writeBehind: { enabled: false },
    });
    const { id } = await memory.enqueue("a turn for the outbox", alice);
    expect((await outbox.pending(alice)).map((entry) => entry.id)).toEqual([id]);
    expect((await memory.pending(alice)).map((turn) => turn.id)).toEqual([id]);
    const {
      results: [added],
    } = await memory.add("a memory of the file", alice);
    expect(await outbox.list(added?.id as string, alice)).toEqual([]);
    expect((await memory.history(added?.id as string, alice)).map((entry) => entry.event)).toEqual(["ADD"]);
    await memory.close();
  });

  test("without an outbox, a historyStore that is only a HistoryLog is refused before anything runs, saying what to pass", () => {
    const error = (() => {
      try {
        new Memory({ embedder: deterministicEmbedder(), vectorStore: inMemoryStore(), historyStore: logOnly() });
      } catch (caught) {
        return caught;
      }
    })();
    expect(InvalidInputError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/historyStore is only a HistoryLog: pass an outbox too/);
    expect(() => new Memory({ outbox: logOnly() as never, writeBehind: { enabled: false } })).toThrow(
      /outbox must implement the Outbox contract/,
    );
  });
});
