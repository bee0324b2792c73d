import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import type { Embedder } from "../src/embedders/embedder.js";
import { EmbeddingError, type EngramError } from "../src/errors.js";
import { outboxEntryId } from "../src/history/outbox-entry-id.js";
import { sqliteHistory } from "../src/history/sqlite-history.js";
import { Memory } from "../src/memory.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";
import { scriptedLanguageModel } from "../src/testing/index.js";
import type { ErrorContext } from "../src/types.js";

const directory = mkdtempSync(join(tmpdir(), "engram-write-behind-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let runs = 0;
const newDataDir = () => join(directory, `data-${runs++}`);

/** The deterministic embedder behind a switch: `failing` makes every call throw, `gate` holds calls until opened. */
function controllableEmbedder() {
  const inner = deterministicEmbedder();
  let open: () => void = () => {};
  const state = {
    failing: false,
    gate: Promise.resolve() as Promise<void>,
    calls: [] as number[],
    hold() {
      state.gate = new Promise<void>((resolve) => {
        open = resolve;
      });
    },
    release: () => open(),
  };
  const embedder: Embedder = {
    dimension: inner.dimension,
    modelId: inner.modelId,
    async embed(texts) {
      state.calls.push(Date.now());
      await state.gate;
      if (state.failing) throw new Error("embedding service unavailable");
      return inner.embed(texts);
    },
  };
  return { embedder, state };
}

const fast = { minDelayMs: 20, maxDelayMs: 200, pollIntervalMs: 50, leaseMs: 2_000 };

describe("write-behind outbox", () => {
  test("enqueue returns at once, before the embedder is done; flush() waits until the turn is stored", async () => {
    const { embedder, state } = controllableEmbedder();
    state.hold();
    const memory = new Memory({ dataDir: newDataDir(), embedder, writeBehind: fast });
    const { id, queued } = await memory.enqueue(
      [
        { role: "user", content: "I moved to Lisbon" },
        { role: "assistant", content: "Noted, Lisbon it is." },
      ],
      { userId: "alice" },
    );
    expect(queued).toBe(true);
    expect((await memory.getAll({ userId: "alice" })).results).toEqual([]);
    expect((await memory.pending({ userId: "alice" })).map((turn) => turn.id)).toEqual([id]);
    expect(await memory.flush({ timeoutMs: 100 })).toEqual({ processed: 0, failed: 0, waiting: 1 });
    state.release();
    expect(await memory.flush()).toEqual({ processed: 1, failed: 0, waiting: 0 });
    expect((await memory.getAll({ userId: "alice" })).results.map((item) => item.memory).sort()).toEqual([
      "I moved to Lisbon",
      "Noted, Lisbon it is.",
    ]);
    expect(await memory.pending({ userId: "alice" })).toEqual([]);
    await memory.close();
  });

  test('close() lets a turn being processed finish and store it, and refuses calls meanwhile (regression: the turn failed with "This Memory is closed" and was retried on the next start)', async () => {
    const { embedder, state } = controllableEmbedder();
    state.hold();
    const dataDir = newDataDir();
    const reports: string[] = [];
    const memory = new Memory({ dataDir, embedder, writeBehind: fast, onError: (error) => reports.push(error.message) });
    await memory.enqueue("I moved to Lisbon", { userId: "alice" });
    while (state.calls.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const closing = memory.close();
    await expect(memory.search("Lisbon", { userId: "alice" })).rejects.toThrow(/This Memory is closed/);
    await expect(memory.getAll({ userId: "alice" })).rejects.toThrow(/This Memory is closed/);
    state.release();
    await closing;
    expect(reports).toEqual([]);
    const reopened = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
    expect((await reopened.getAll({ userId: "alice" })).results.map((item) => item.memory)).toEqual(["I moved to Lisbon"]);
    expect(await reopened.pending({ userId: "alice" })).toEqual([]);
    await reopened.close();
  });

  test("an idempotency key makes a repeated enqueue a no-op", async () => {
    const memory = new Memory({ dataDir: newDataDir(), embedder: deterministicEmbedder(), writeBehind: fast });
    const id = outboxEntryId({ userId: "alice" }, "turn-1");
    expect(await memory.enqueue("only once", { userId: "alice", idempotencyKey: "turn-1" })).toEqual({ id, queued: true });
    expect(await memory.enqueue("only once", { userId: "alice", idempotencyKey: "turn-1" })).toEqual({ id, queued: false });
    await memory.flush();
    expect(await memory.enqueue("only once", { userId: "alice", idempotencyKey: "turn-1" })).toEqual({ id, queued: false });
    await memory.flush();
    expect((await memory.getAll({ userId: "alice" })).results.map((item) => item.memory)).toEqual(["only once"]);
    await memory.close();
  });

  test("flush() waits for a turn whose enqueue() has not resolved yet (regression: a flush right after a reply missed the turn just queued)", async () => {
    const memory = new Memory({ dataDir: newDataDir(), embedder: deterministicEmbedder(), writeBehind: fast });
    await memory.getAll({ userId: "alice" });
    // Not awaited, as an adapter queues a turn and hands the reply on at once.
    const queued = memory.enqueue(
      [
        { role: "user", content: "I moved to Lisbon" },
        { role: "assistant", content: "Noted, Lisbon it is." },
      ],
      { userId: "alice" },
    );
    expect(await memory.flush({ timeoutMs: 5000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
    expect((await memory.getAll({ userId: "alice" })).results.map((item) => item.memory).sort()).toEqual([
      "I moved to Lisbon",
      "Noted, Lisbon it is.",
    ]);
    expect((await queued).queued).toBe(true);
    await memory.close();
  });

  test("a turn that keeps failing is retried with backoff, reported to onError, ends failed and visible, and retryFailed re-queues it (regression: flush() did not wait for requeued turns)", async () => {
    const { embedder, state } = controllableEmbedder();
    state.failing = true;
    const reports: [EngramError, ErrorContext][] = [];
    const dataDir = newDataDir();
    // The retry times the worker sets, next to the clock at the moment it set them.
    const retries: number[] = [];
    const history = sqliteHistory({ path: join(dataDir, "engram.db") });
    const recording = new Proxy(history, {
      get(target, property) {
        if (property === "fail") {
          return (id: string, workerId: string, failure: { error: string; retryAt?: Date }) => {
            if (failure.retryAt) retries.push(failure.retryAt.getTime() - Date.now());
            return target.fail(id, workerId, failure);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const memory = new Memory({
      dataDir,
      embedder,
      historyStore: recording,
      retry: { retries: 0 },
      writeBehind: { ...fast, maxAttempts: 3 },
      onError: (error, context) => reports.push([error, context]),
    });
    const { id } = await memory.enqueue("a turn worth keeping", { userId: "alice", agentId: "coder" });
    expect(await memory.flush({ timeoutMs: 10_000 })).toEqual({ processed: 0, failed: 1, waiting: 0 });

    // Three attempts; the first two failures set retry times a growing delay ahead (20 ms, then 40 ms, ±25 %).
    expect(state.calls).toHaveLength(3);
    expect(retries).toHaveLength(2);
    const [first, second] = retries as [number, number];
    expect(first).toBeGreaterThanOrEqual(14);
    expect(first).toBeLessThanOrEqual(25);
    expect(second).toBeGreaterThanOrEqual(29);
    expect(second).toBeLessThanOrEqual(50);

    const turnReports = reports.filter(([, context]) => context.operation === "write-behind");
    expect(turnReports.map(([, context]) => [context.entryId, context.attempt, context.willRetry])).toEqual([
      [id, 0, true],
      [id, 1, true],
      [id, 2, false],
    ]);
    expect(turnReports.every(([error]) => EmbeddingError.isInstance(error))).toBe(true);
    expect(turnReports[0]?.[0].message).toMatch(/embedding service unavailable/);

    const [failed] = await memory.pending({ userId: "alice" });
    expect(failed).toMatchObject({ id, status: "failed", attempts: 3, userId: "alice", agentId: "coder" });
    expect(failed?.messages).toEqual([{ role: "user", content: "a turn worth keeping" }]);
    expect(failed?.lastError).toMatch(/EmbeddingError: .*embedding service unavailable/);
    expect(await memory.pending({ allScopes: true })).toHaveLength(1);
    expect((await memory.getAll({ userId: "alice" })).results).toEqual([]);

    // Failed turns stay failed until asked: nothing retries them in the background, while the
    // worker goes on with other turns (a turn of another user, written, is the proof it ran).
    state.failing = false;
    await memory.enqueue("another user's turn", { userId: "bob" });
    expect(await memory.flush({ timeoutMs: 10_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
    expect(state.calls).toHaveLength(4);
    expect((await memory.pending({ userId: "alice" }))[0]?.status).toBe("failed");

    expect(await memory.retryFailed({ userId: "bob" })).toEqual({ requeued: 0 });
    expect(await memory.retryFailed({ userId: "alice" })).toEqual({ requeued: 1 });
    expect(await memory.flush({ timeoutMs: 10_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
    expect((await memory.getAll({ userId: "alice" })).results.map((item) => item.memory)).toEqual(["a turn worth keeping"]);
    expect(await memory.pending({ allScopes: true })).toEqual([]);
    await memory.close();
  });

  test("a transient failure is retried and the turn stored once", async () => {
    const { embedder, state } = controllableEmbedder();
    state.failing = true;
    const reports: ErrorContext[] = [];
    const memory = new Memory({
      dataDir: newDataDir(),
      embedder,
      retry: { retries: 0 },
      writeBehind: { ...fast, maxAttempts: 5 },
      onError: (_error, context) => reports.push(context),
    });
    await memory.enqueue("flaky", { userId: "alice" });
    while (state.calls.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    state.failing = false;
    expect(await memory.flush({ timeoutMs: 10_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
    expect((await memory.getAll({ userId: "alice" })).results.map((item) => item.memory)).toEqual(["flaky"]);
    expect(reports.filter((context) => context.operation === "write-behind").every((context) => context.willRetry)).toBe(true);
    await memory.close();
  });

  test("purging a scope removes its queued turns, waiting and failed, and no other scope's", async () => {
    const { embedder, state } = controllableEmbedder();
    state.failing = true;
    const memory = new Memory({
      dataDir: newDataDir(),
      embedder,
      retry: { retries: 0 },
      writeBehind: { ...fast, maxAttempts: 1 },
      onError: () => {},
    });
    await memory.enqueue("this one fails", { userId: "alice", runId: "r1" });
    await memory.flush();
    const worker = new Memory({ dataDir: join(directory, `data-${runs - 1}`), embedder, writeBehind: { enabled: false } });
    await worker.enqueue("this one waits", { userId: "alice", agentId: "coder" });
    await worker.enqueue("bob's turn waits", { userId: "bob" });
    expect((await memory.pending({ userId: "alice" })).map((turn) => turn.status).sort()).toEqual(["failed", "pending"]);
    expect(await memory.deleteAll({ userId: "alice", purge: true })).toEqual({ deleted: 0 });
    expect(await memory.pending({ userId: "alice" })).toEqual([]);
    expect((await memory.pending({ allScopes: true })).map((turn) => turn.messages[0]?.content)).toEqual(["bob's turn waits"]);
    await Promise.all([memory.close(), worker.close()]);
  });

  test("turns left in the outbox by a stopped process are processed when the next one starts", async () => {
    const dataDir = newDataDir();
    const producer = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
    // An hour apart: each turn is a memory of its own (not a run of one speaker's messages).
    for (let i = 0; i < 5; i++)
      await producer.enqueue(`left behind ${i}`, { userId: `u${i % 2}`, timestamp: new Date(Date.UTC(2026, 0, 1, i)) });
    await producer.close();
    const consumer = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: fast });
    const deadline = Date.now() + 10_000;
    while ((await consumer.pending({ allScopes: true })).length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await consumer.pending({ allScopes: true })).toEqual([]);
    const stored = [...(await consumer.getAll({ userId: "u0" })).results, ...(await consumer.getAll({ userId: "u1" })).results];
    expect(stored.map((item) => item.memory).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `left behind ${i}`));
    await consumer.close();
  });

  test("an onError hook that throws does not stop the worker", async () => {
    const { embedder, state } = controllableEmbedder();
    state.failing = true;
    const memory = new Memory({
      dataDir: newDataDir(),
      embedder,
      retry: { retries: 0 },
      writeBehind: { ...fast, maxAttempts: 2 },
      onError: () => {
        throw new Error("a broken hook");
      },
    });
    const originalConsoleError = console.error;
    console.error = () => {};
    try {
      await memory.enqueue("x", { userId: "alice" });
      expect(await memory.flush({ timeoutMs: 10_000 })).toEqual({ processed: 0, failed: 1, waiting: 0 });
      state.failing = false;
      await memory.enqueue("y", { userId: "alice" });
      expect(await memory.flush({ timeoutMs: 10_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
    } finally {
      console.error = originalConsoleError;
    }
    await memory.close();
  });
});

describe("write-behind batches: waiting turns of one user taken together", () => {
  // One scope, a minute apart: Ann's second turn continues her first (one memory, updated), Bob's
  // "ok" is filler, his repeated text is NONE.
  const lines: [string, string][] = [
    ["Ann", "I moved to Lisbon last spring"],
    ["Ann", "the flat is near the river"],
    ["Bob", "ok"],
    ["Bob", "I work at a bakery in Porto"],
    ["Cid", "my dog is called Rex and he hates the rain"],
    ["Bob", "I work at a bakery in Porto"],
    ["Ann", "we should all go hiking in Sintra in May"],
  ];

  async function queueAndWork(batchSize: number, embedder: Embedder, onError?: (error: EngramError, context: ErrorContext) => void) {
    const dataDir = newDataDir();
    const producer = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
    const ids: string[] = [];
    for (const [i, [name, content]] of lines.entries()) {
      const { id } = await producer.enqueue([{ role: "user", name, content }], {
        userId: "house",
        timestamp: new Date(Date.UTC(2026, 0, 1, 12, i)),
      });
      ids.push(id);
    }
    await producer.close();
    // Every turn is waiting before the worker starts: it finds them all at once.
    const worker = new Memory({
      dataDir,
      embedder,
      writeBehind: { ...fast, batchSize, maxAttempts: 1 },
      ...(onError ? { onError } : {}),
    });
    await worker.start();
    await expect
      .poll(async () => (await worker.pending({ userId: "house" })).filter((turn) => turn.status !== "failed").length, { timeout: 10_000 })
      .toBe(0);
    const memories = (await worker.getAll({ userId: "house" })).results;
    const histories = await Promise.all(
      memories.map(async (memory) => (await worker.history(memory.id, { userId: "house" })).map((entry) => [entry.event, entry.newValue])),
    );
    const stored = memories
      .map((memory, i) => ({ text: memory.memory, createdAt: memory.createdAt, updatedAt: memory.updatedAt, history: histories[i] }))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    const pending = await worker.pending({ userId: "house" });
    await worker.close();
    return { stored, ids, pending };
  }

  test("they are planned with one embedding call and stored exactly as turn by turn, with the same history", async () => {
    const alone = deterministicEmbedder();
    const together = deterministicEmbedder();
    const one = await queueAndWork(1, alone);
    const batched = await queueAndWork(16, together);
    expect(batched.stored).toEqual(one.stored);
    expect(batched.stored.map((memory) => memory.text)).toEqual([
      "Ann: I moved to Lisbon last spring the flat is near the river",
      "Bob: I work at a bakery in Porto",
      "Cid: my dog is called Rex and he hates the rain",
      "Ann: we should all go hiking in Sintra in May",
    ]);
    expect(batched.stored[0]?.history?.map(([event]) => event)).toEqual(["ADD", "UPDATE"]);
    expect(batched.pending).toEqual([]);
    // Turn by turn: one call per turn that stores something; together: one call.
    expect(alone.calls.length).toBeGreaterThanOrEqual(4);
    expect(together.calls).toHaveLength(1);
  });

  test("a turn that fails in a batch fails alone: its neighbours are stored, it is reported and kept in the outbox", async () => {
    const inner = deterministicEmbedder();
    const embedder: Embedder = {
      dimension: inner.dimension,
      async embed(texts) {
        if (texts.some((text) => text.includes("Rex"))) throw new Error("the embedding service refused a text");
        return inner.embed(texts);
      },
    };
    const reports: { message: string; entryId?: string | undefined }[] = [];
    const { stored, ids, pending } = await queueAndWork(16, embedder, (error, context) => {
      // Retries of the embedding call itself are reported too ("embed"): the turns' own failures here.
      if (context.operation === "write-behind") reports.push({ message: error.message, entryId: context.entryId });
    });
    expect(stored.map((memory) => memory.text)).toEqual([
      "Ann: I moved to Lisbon last spring the flat is near the river",
      "Bob: I work at a bakery in Porto",
      "Ann: we should all go hiking in Sintra in May",
    ]);
    expect(pending.map((turn) => [turn.id, turn.status, turn.messages[0]?.content])).toEqual([
      [ids[4], "failed", "my dog is called Rex and he hates the rain"],
    ]);
    expect(reports.map((report) => report.entryId)).toEqual([ids[4]]);
    expect(reports[0]?.message).toMatch(/refused a text/);
  });
});

describe("write-behind across differently configured processes", () => {
  // Regression: `infer` was resolved by whichever worker ran a turn, so a turn queued by a Memory
  // with an llm could be stored verbatim by a Memory without one sharing the outbox.
  test("a turn queued for extraction is never stored verbatim by a worker without an llm", async () => {
    const dataDir = newDataDir();
    const llm = scriptedLanguageModel(() => ({ json: { memory: [{ id: "new", event: "ADD", text: "Lives in Lisbon" }] } }));
    const producer = new Memory({ dataDir, embedder: deterministicEmbedder(), llm, writeBehind: { enabled: false } });
    const { id } = await producer.enqueue("I moved to Lisbon last week", { userId: "alice" });

    const errors: string[] = [];
    const plain = new Memory({
      dataDir,
      embedder: deterministicEmbedder(),
      writeBehind: { ...fast, maxAttempts: 1 },
      onError: (error) => errors.push(error.message),
    });
    await plain.retryFailed({ userId: "alice" });
    await expect.poll(async () => (await plain.pending({ userId: "alice" }))[0]?.status, { timeout: 5_000 }).toBe("failed");
    expect(errors.join("\n")).toMatch(/queued for extraction, but this Memory has no llm/);
    expect((await plain.getAll({ userId: "alice" })).results).toEqual([]);
    await plain.close();

    const worker = new Memory({ dataDir, embedder: deterministicEmbedder(), llm, writeBehind: fast });
    expect((await worker.retryFailed({ userId: "alice" })).requeued).toBe(1);
    await expect
      .poll(async () => (await worker.getAll({ userId: "alice" })).results.map((m) => m.memory), { timeout: 5_000 })
      .toEqual(["Lives in Lisbon"]);
    expect(await worker.pending({ userId: "alice" })).toEqual([]);
    expect(id).toBeTruthy();
    await Promise.all([worker.close(), producer.close()]);
  });
});

describe("write-behind retention", () => {
  test("a worker prunes the traces of done turns older than keepDoneMs, and keeps the rest", async () => {
    const dataDir = newDataDir();
    const first = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: fast });
    const { id } = await first.enqueue("I like jazz", { userId: "alice" });
    await first.flush();
    const { history } = await import("../src/history/sqlite-history.js").then(({ sqliteHistory }) => ({
      history: sqliteHistory({ path: join(dataDir, "engram.db") }),
    }));
    expect(await history.statuses([id])).toEqual(new Map([[id, "done"]]));
    await first.close();

    // A week's window keeps it: a worker prunes before it claims, so once a later turn is written,
    // the prune has run.
    const keeping = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: fast });
    await keeping.enqueue("a later turn", { userId: "bob" });
    expect((await keeping.flush()).processed).toBe(1);
    expect(await history.statuses([id])).toEqual(new Map([[id, "done"]]));
    await keeping.close();

    const pruning = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { ...fast, keepDoneMs: 0 } });
    await pruning.start();
    await expect.poll(() => history.statuses([id]), { timeout: 5_000 }).toEqual(new Map());
    expect((await pruning.getAll({ userId: "alice" })).results.map((m) => m.memory)).toEqual(["I like jazz"]);
    await Promise.all([pruning.close(), history.close()]);
  });
});
