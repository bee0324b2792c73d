import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MockLanguageModelV4 } from "ai/test";
import { afterAll, describe, expect, test } from "vitest";
import { type EngramError, ExtractionError, TimeoutError } from "../../src/errors.js";
import { Memory, type MemoryOptions } from "../../src/memory.js";
import { inMemoryStore } from "../../src/stores/in-memory-store.js";
import type { VectorStore } from "../../src/stores/vector-store.js";
import { inMemoryHistory } from "../../src/testing/index.js";
import { scriptedLanguageModel } from "../../src/testing/scripted-language-model.js";
import type { ErrorContext } from "../../src/types.js";
import { controllableEmbedder } from "../support/faults.js";
import { recordFaults } from "./counts.js";

// Every call out of Engram has a deadline: a hung embedder, store or model fails the call with a
// TimeoutError instead of freezing the user's memory, the write-behind or shutdown.

const directory = mkdtempSync(join(tmpdir(), "engram-deadlines-"));
let runs = 0;
// What the tests saw: calls that failed at their deadline, directly or in the write-behind.
const seen = { timeouts: 0 };
afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
  recordFaults("hung embedders, stores and models", seen);
});

const quick = { retry: { retries: 0, minDelayMs: 1, maxDelayMs: 1 } } satisfies Partial<MemoryOptions>;

function setup(options: Partial<MemoryOptions> = {}) {
  const control = controllableEmbedder();
  const errors: { error: EngramError; context: ErrorContext }[] = [];
  const memory = new Memory({
    embedder: control.embedder,
    vectorStore: inMemoryStore(),
    historyStore: inMemoryHistory(),
    writeBehind: { enabled: false },
    timeouts: { embedMs: 100 },
    onError: (error, context) => {
      if (TimeoutError.isInstance(error)) seen.timeouts++;
      errors.push({ error, context });
    },
    ...quick,
    ...options,
  });
  return { memory, control, errors };
}

/** The call's rejection, and how long it took to come. */
async function timed(call: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const start = performance.now();
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (TimeoutError.isInstance(error) || TimeoutError.isInstance((error as Error | undefined)?.cause)) seen.timeouts++;
  return { error, ms: performance.now() - start };
}

describe("a hung embedder", () => {
  test("regression: add, search and update fail with a TimeoutError at the deadline instead of hanging", async () => {
    const { memory, control } = setup();
    const [added] = (await memory.add("I like tea", { userId: "alice" })).results;
    control.hang(/./);
    for (const call of [
      () => memory.add("I like coffee", { userId: "alice" }),
      () => memory.search("drinks", { userId: "alice" }),
      () => memory.update(added?.id as string, "I like mate", { userId: "alice" }),
    ]) {
      const { error, ms } = await timed(call());
      expect(TimeoutError.isInstance(error), String(error)).toBe(true);
      expect((error as TimeoutError).operation).toBe("The embedder");
      expect((error as TimeoutError).timeoutMs).toBe(100);
      expect(ms).toBeLessThan(2_000);
    }
    // Nothing was half-written, and the user's memory works again once the embedder answers.
    control.heal();
    expect((await memory.getAll({ userId: "alice" })).results.map((item) => item.memory)).toEqual(["I like tea"]);
    expect((await memory.add("I like coffee", { userId: "alice" })).results[0]?.event).toBe("ADD");
    await memory.close();
  });

  test("regression: a poison turn fails, releases the user's lock and is retried with backoff while the user's other turns and adds proceed", async () => {
    const { memory, control, errors } = setup({
      writeBehind: { pollIntervalMs: 20, minDelayMs: 200, maxDelayMs: 200, maxAttempts: 100 },
    });
    control.hang("poison");
    await memory.enqueue("this turn is poison", { userId: "alice" });
    await memory.enqueue("I live in Lisbon", { userId: "alice" });
    // The direct add waits for the user's lock at most until the poison turn's deadline.
    expect((await timed(memory.add("I speak Portuguese", { userId: "alice" }))).error).toBeUndefined();
    // The poison turn keeps failing and waiting its backoff; the turn behind it is written meanwhile.
    expect(await memory.flush({ timeoutMs: 1_500 })).toEqual({ processed: 1, failed: 0, waiting: 1 });
    const [poison] = await memory.pending({ userId: "alice" });
    expect(poison?.messages[0]?.content).toBe("this turn is poison");
    expect(poison?.attempts).toBeGreaterThanOrEqual(1);
    expect(poison?.lastError).toMatch(/TimeoutError/);
    expect(errors.some(({ error, context }) => TimeoutError.isInstance(error) && context.willRetry === true)).toBe(true);
    expect((await memory.getAll({ userId: "alice" })).results.map((item) => item.memory).sort()).toEqual([
      "I live in Lisbon",
      "I speak Portuguese",
    ]);
    // Once the embedder answers again, the retried turn is written: nothing was lost.
    control.heal();
    expect(await memory.flush({ timeoutMs: 5_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
    expect((await memory.getAll({ userId: "alice" })).results).toHaveLength(3);
    await memory.close();
  });

  test("regression: close() ends within timeouts.closeMs while a turn hangs, and the turn is taken over by the next process", async () => {
    const dataDir = join(directory, `data-${runs++}`);
    const control = controllableEmbedder();
    const options: Partial<MemoryOptions> = {
      dataDir,
      embedder: control.embedder,
      onError: () => {},
      writeBehind: { pollIntervalMs: 20, leaseMs: 200 },
      ...quick,
    };
    const first = new Memory({ ...options, timeouts: { embedMs: Number.POSITIVE_INFINITY, closeMs: 200 } });
    await first.add("warm up", { userId: "alice" });
    control.hang("hangs forever");
    await first.enqueue("this turn hangs forever", { userId: "alice" });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(control.hungCalls()).toBe(1);
    const { ms } = await timed(first.close());
    expect(ms).toBeLessThan(1_500);
    // The turn stayed in the outbox: the next process takes it over when its lease ends.
    control.heal();
    const second = new Memory(options);
    for (let i = 0; i < 100 && (await second.pending({ userId: "alice" })).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await second.getAll({ userId: "alice" })).results.map((item) => item.memory).sort()).toEqual([
      "this turn hangs forever",
      "warm up",
    ]);
    await second.close();
  });
});

describe("a hung store", () => {
  test("regression: every store call has a deadline (timeouts.storeMs): search, get and add fail with a TimeoutError", async () => {
    const store = inMemoryStore();
    let hang = false;
    const hung = <T>(fn: () => Promise<T>) => (hang ? new Promise<T>(() => {}) : fn());
    const slow: VectorStore = {
      ...store,
      init: (options) => store.init(options),
      write: (batch) => hung(() => store.write(batch)),
      search: (request) => hung(() => store.search(request)),
      get: (ids, filter) => hung(() => store.get(ids, filter)),
      list: (request) => hung(() => store.list(request)),
    };
    const { memory } = setup({ vectorStore: slow, timeouts: { storeMs: 100 } });
    const [added] = (await memory.add("I like tea", { userId: "alice" })).results;
    hang = true;
    for (const call of [
      () => memory.search("tea", { userId: "alice" }),
      () => memory.get(added?.id as string, { userId: "alice" }),
      () => memory.add("I like coffee", { userId: "alice" }),
    ]) {
      const { error, ms } = await timed(call());
      expect(TimeoutError.isInstance(error), String(error)).toBe(true);
      expect(ms).toBeLessThan(2_000);
    }
    await memory.close();
  });
});

describe("an outbox that cannot be reached", () => {
  test("regression: a worker whose claims fail polls less and less often instead of reporting every poll", async () => {
    const history = inMemoryHistory();
    let claims = 0;
    const broken = {
      ...history,
      claim: async () => {
        claims++;
        throw new Error("database disk image is malformed");
      },
    };
    const { memory, errors } = setup({ historyStore: broken, writeBehind: { pollIntervalMs: 20, minDelayMs: 100, maxDelayMs: 400 } });
    await memory.start();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // Every 20 ms for a second would be about 50 claims; backing off 100, 200, 400, 400 … ms it is a handful.
    expect(claims).toBeGreaterThanOrEqual(3);
    expect(claims).toBeLessThanOrEqual(10);
    expect(errors.length).toBe(claims);
    await memory.close();
  });

  test("regression: a worker whose claim hangs gives up at timeouts.storeMs and keeps working", async () => {
    const history = inMemoryHistory();
    let hang = true;
    const flaky = {
      ...history,
      claim: (request: Parameters<typeof history.claim>[0]) => (hang ? new Promise<never>(() => {}) : history.claim(request)),
    };
    const { memory, errors } = setup({
      historyStore: flaky,
      timeouts: { storeMs: 100 },
      writeBehind: { pollIntervalMs: 20, minDelayMs: 20, maxDelayMs: 50 },
    });
    await memory.enqueue("I live in Lisbon", { userId: "alice" });
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(errors.some(({ error }) => TimeoutError.isInstance(error))).toBe(true);
    hang = false;
    expect(await memory.flush({ timeoutMs: 3_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
    await memory.close();
  });
});

describe("a hung extraction model", () => {
  test("regression: a model that ignores its abort signal still fails at llmRetry.timeoutMs; nothing is stored", async () => {
    const llm = new MockLanguageModelV4({ doGenerate: () => new Promise(() => {}) });
    const { memory } = setup({ llm, llmRetry: { retries: 1, timeoutMs: 100, minDelayMs: 1, maxDelayMs: 1 } });
    const { error, ms } = await timed(memory.add("I moved to Oslo", { userId: "alice" }));
    expect(ExtractionError.isInstance(error), String(error)).toBe(true);
    expect(TimeoutError.isInstance((error as Error).cause)).toBe(true);
    expect(ms).toBeLessThan(2_000);
    expect((await memory.getAll({ userId: "alice" })).results).toEqual([]);
    await memory.close();
  });
});

describe("facts per model reply", () => {
  const flood = (count: number) => ({
    json: { memory: Array.from({ length: count }, (_, i) => ({ id: "new", event: "ADD", text: `fact number ${i}` })) },
  });

  test("regression: a reply with 10,000 ADDs applies only the first maxFactsPerAdd (default 50), with a warning", async () => {
    const { memory, errors } = setup({ llm: scriptedLanguageModel(() => flood(10_000)), timeouts: { embedMs: 5_000 } });
    const result = await memory.add("tell me everything", { userId: "alice" });
    expect(result.results).toHaveLength(50);
    expect(result.results.at(-1)?.memory).toBe("fact number 49");
    expect(result.warnings?.some((warning) => warning.includes("10000 decisions"))).toBe(true);
    expect(errors.some(({ error }) => error.message.includes("maxFactsPerAdd"))).toBe(true);
    expect((await memory.getAll({ userId: "alice", limit: 1000 })).results).toHaveLength(50);
    await memory.close();
  });

  test("maxFactsPerAdd is configurable", async () => {
    const { memory } = setup({ llm: scriptedLanguageModel(() => flood(5)), maxFactsPerAdd: 3 });
    expect((await memory.add("a few facts", { userId: "alice" })).results.map((item) => item.memory)).toEqual([
      "fact number 0",
      "fact number 1",
      "fact number 2",
    ]);
    await memory.close();
  });
});
