import { afterEach, describe, expect, test, vi } from "vitest";
import { type EngramError, type ErrorContext, type HistoryStore, Memory, type VectorStore } from "../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../src/testing/index.js";

// A saved plan re-applied after a worker stopped (or failed) at each point of processing a turn:
// the turn's memories and their history must each be written exactly once, with the plan's ids.

const scope = { userId: "alice" };
const turn = [
  { role: "user" as const, content: "I keep bees on the roof" },
  { role: "assistant" as const, content: "Bees on a roof need shade and water." },
];
const idempotencyKey = "turn-1";
const leaseMs = 60_000;

type Point = "after the plan is saved" | "after the store write" | "after the history is written" | "at complete";

/**
 * Where each point is met: the outbox call it happens in, and whether that call went through
 * (true: the crash follows it; false: the call is the one that never completes).
 */
const points: Record<Point, { method: keyof HistoryStore; landed: boolean }> = {
  "after the plan is saved": { method: "savePlan", landed: true },
  "after the store write": { method: "append", landed: false },
  "after the history is written": { method: "append", landed: true },
  "at complete": { method: "complete", landed: false },
};

/**
 * The history store of a worker that meets `fault.point` once: `stop` is a process that dies there
 * (the call never returns, and it makes no further call, so its lease runs out); `fail` is a call
 * that throws there, once. `plans` collects the plans saved through it.
 */
function faultyHistory(inner: HistoryStore, fault?: { point: Point; mode: "stop" | "fail" }) {
  const { method, landed } = fault ? points[fault.point] : { method: undefined, landed: false };
  let met = false;
  let dead = false;
  let reached!: () => void;
  const crashed = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const plans: string[] = [];
  const history = new Proxy(inner, {
    get(target, key) {
      const value = Reflect.get(target, key) as unknown;
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        if (dead) return new Promise(() => {});
        if (key === "savePlan") plans.push(args[2] as string);
        if (key !== method || met) return value.apply(target, args);
        met = true;
        if (landed) await value.apply(target, args);
        reached();
        if (fault?.mode === "fail") throw new Error(`the outbox failed ${fault.point}`);
        dead = true;
        return new Promise(() => {});
      };
    },
  });
  return { history, crashed, plans };
}

/** The store as another process sees it: closing one Memory must not close it for the others. */
const shared = (store: VectorStore): VectorStore =>
  new Proxy(store, { get: (target, key) => (key === "close" ? async () => {} : Reflect.get(target, key)) });

const opened: Memory[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(opened.splice(0).map((memory) => memory.close()));
});

function open(store: VectorStore, history: HistoryStore, errors: [EngramError, ErrorContext][] = []) {
  const memory = new Memory({
    embedder: deterministicEmbedder(),
    vectorStore: shared(store),
    historyStore: history,
    // A failed history write fails the attempt at once (the write is undone), instead of being retried in place.
    retry: { retries: 0 },
    writeBehind: { leaseMs, minDelayMs: 1, maxDelayMs: 1, pollIntervalMs: 10_000 },
    timeouts: { closeMs: 50 },
    onError: (error, context) => errors.push([error, context]),
  });
  opened.push(memory);
  return memory;
}

/** What the store and history hold for the turn. */
async function state(store: VectorStore, history: HistoryStore) {
  const { records } = await store.list({ filter: { scope }, limit: 100 });
  const entries = await Promise.all(records.map((record) => history.list(record.id, scope)));
  return {
    memories: records.map((record) => [record.id, record.text]).sort(),
    history: entries.flat().map((entry) => [entry.id, entry.memoryId, entry.event]),
  };
}

/** The ids a saved plan wrote: its memories with their texts, and its history entries. */
function planned(plan: string) {
  const parsed = JSON.parse(plan) as {
    upsert: { id: string; text: string }[];
    history: { id: string; memoryId: string; event: string }[];
  };
  return {
    memories: parsed.upsert.map((record) => [record.id, record.text]).sort(),
    history: parsed.history.map((entry) => [entry.id, entry.memoryId, entry.event]),
  };
}

async function expectWrittenOnce(store: VectorStore, inner: HistoryStore, plan: string) {
  const expected = planned(plan);
  expect(expected.memories.map(([, text]) => text).sort()).toEqual(turn.map((message) => message.content).sort());
  const stored = await state(store, inner);
  expect(stored.memories).toEqual(expected.memories);
  expect(stored.history.sort()).toEqual(expected.history.sort());
  expect(await inner.pending()).toEqual([]);
}

describe("a saved plan is re-applied after a worker stops, and the turn is written exactly once", () => {
  for (const point of Object.keys(points) as Point[]) {
    test(`a worker that dies ${point}: the next process takes the turn over once the lease ends`, async () => {
      // Only the clock the leases are measured by is moved, and it keeps running: flush deadlines still pass.
      vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true, now: new Date("2025-03-01T12:00:00.000Z") });
      const store = inMemoryStore();
      const inner = inMemoryHistory();
      const first = faultyHistory(inner, { point, mode: "stop" });
      const dying = open(store, first.history);
      await dying.enqueue(turn, { ...scope, idempotencyKey });
      await first.crashed;

      const [plan] = first.plans;
      expect(plan, "the plan was saved before the crash").toBeDefined();
      const expected = planned(plan as string);
      const atCrash = await state(store, inner);
      const stored = point === "after the plan is saved" ? [] : expected.memories;
      const logged = point === "after the history is written" || point === "at complete" ? expected.history : [];
      expect(atCrash.memories).toEqual(stored);
      expect(atCrash.history.sort()).toEqual(logged.sort());
      expect((await inner.pending()).map((entry) => entry.status)).toEqual(["processing"]);
      await dying.close();

      // The lease of the dead worker runs out; another process starts and takes the turn over.
      vi.setSystemTime(Date.now() + leaseMs + 1);
      const again = faultyHistory(inner);
      const next = open(store, again.history);
      // The same turn queued again (its idempotency key) is not queued twice: this waits for it.
      expect(await next.enqueue(turn, { ...scope, idempotencyKey })).toMatchObject({ queued: false });
      expect(await next.flush({ timeoutMs: 5_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
      expect(again.plans).toEqual([]);

      await expectWrittenOnce(store, inner, plan as string);
    });

    // Regression at "after the history is written": a history write that landed but was seen to
    // fail had the store write undone, and the retry took the turn for done: its memories were lost.
    test(`an outbox call that fails ${point}: the retry re-applies the saved plan`, async () => {
      const store = inMemoryStore();
      const inner = inMemoryHistory();
      const faulty = faultyHistory(inner, { point, mode: "fail" });
      const errors: [EngramError, ErrorContext][] = [];
      const memory = open(store, faulty.history, errors);
      await memory.enqueue(turn, { ...scope, idempotencyKey });
      expect(await memory.flush({ timeoutMs: 5_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });

      // One plan, decided once and re-applied: a second decision would have saved another.
      expect(faulty.plans).toHaveLength(1);
      expect(errors.filter(([, context]) => context.operation === "write-behind").map(([error]) => error.message)).toEqual([
        expect.stringContaining(`the outbox failed ${point}`),
      ]);
      await expectWrittenOnce(store, inner, faulty.plans[0] as string);
    });
  }
});
