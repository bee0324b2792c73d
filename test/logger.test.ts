import { Writable } from "node:stream";
import fc from "fast-check";
import { afterEach, describe, expect, test, vi } from "vitest";
import { resolveAdapterOptions } from "../integrations/shared/options.js";
import { TurnMemory } from "../integrations/shared/turn.js";
import type { Embedder } from "../src/embedders/embedder.js";
import { StoreError } from "../src/errors.js";
import { debugEnabled, getLogger } from "../src/logger.js";
import { Memory } from "../src/memory.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../src/testing/index.js";
import { reply, setup } from "./extraction/setup.js";

/** A stream that keeps what is written to it. */
function captured() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream, text: () => chunks.join("") };
}

/** Records what library code writes to the real stderr and to console, for the length of a test. */
function watchStderr() {
  const lines: string[] = [];
  const write = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  const consoleCalls = (["error", "warn", "log", "info", "debug"] as const).map((method) =>
    vi.spyOn(console, method).mockImplementation(() => {}),
  );
  return {
    text: () => lines.join(""),
    consoleUsed: () => consoleCalls.some((spy) => spy.mock.calls.length > 0),
    write,
  };
}

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

describe("debugEnabled reads DEBUG as the debug package does", () => {
  test.each([
    [undefined, false],
    ["", false],
    ["engram*", true],
    ["engram:*", true],
    ["*", true],
    ["engram:adapter", true],
    ["other, engram:adapter", true],
    ["other engram:adapter", true],
    ["engram:write-behind", false],
    ["engram", false],
    ["engram*,-engram:adapter", false],
    ["-engram:adapter,engram*", false],
    ["engram*,-engram:memory", true],
    ["engram.adapter", false],
    ["engram:adapte?", false],
  ])("DEBUG=%j for engram:adapter → %s", (setting, expected) => {
    expect(debugEnabled("engram:adapter", setting)).toBe(expected);
  });

  test("property: any namespace is enabled by itself and by *, disabled by nothing and by its own exclusion, and no pattern throws", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 30 }).filter((namespace) => !/[\s,*]/.test(namespace) && !namespace.startsWith("-")),
        (namespace) => {
          expect(debugEnabled(namespace, namespace)).toBe(true);
          expect(debugEnabled(namespace, "*")).toBe(true);
          expect(debugEnabled(namespace, undefined)).toBe(false);
          expect(debugEnabled(namespace, `*,-${namespace}`)).toBe(false);
          expect(debugEnabled(`${namespace}x`, namespace)).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("getLogger", () => {
  test("error lines are always written with the [engram] prefix, formatted as util.format", () => {
    const { stream, text } = captured();
    const logger = getLogger("engram:test", { stream: () => stream, env: () => undefined });
    logger.error("embed: %s failed", "the embedder");
    logger.error("hook threw:", new Error("broken"));
    expect(text()).toMatch(/^\[engram\] embed: the embedder failed\n\[engram\] hook threw: Error: broken\n {4}at /);
  });

  test("debug lines are silent by default and written, with the namespace, when DEBUG names it (read at each call)", () => {
    const { stream, text } = captured();
    let setting: string | undefined;
    const logger = getLogger("engram:test", { stream: () => stream, env: () => setting });
    logger.debug("hidden");
    setting = "engram:other";
    logger.debug("hidden too");
    setting = "engram*";
    logger.debug("shown %d", 1);
    setting = "engram*,-engram:test";
    logger.debug("hidden again");
    expect(text()).toBe("[engram:test] shown 1\n");
  });

  test("by default it writes to process.stderr and reads process.env.DEBUG, never console", () => {
    const stderr = watchStderr();
    const logger = getLogger("engram:test");
    vi.stubEnv("DEBUG", "");
    logger.debug("hidden");
    logger.error("visible");
    vi.stubEnv("DEBUG", "engram:test");
    logger.debug("now visible");
    expect(stderr.text()).toBe("[engram] visible\n[engram:test] now visible\n");
    expect(stderr.consoleUsed()).toBe(false);
  });

  test("a stderr whose writes fail (a closed pipe) neither throws into the caller nor leaves an unhandled 'error'", async () => {
    const failing = (sync: boolean) =>
      new Writable({
        write(_chunk, _encoding, done) {
          const error = Object.assign(new Error("write EPIPE"), { code: "EPIPE" });
          if (sync) done(error);
          else setImmediate(() => done(error));
        },
      });
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    try {
      for (const sync of [true, false]) {
        const stream = failing(sync);
        const logger = getLogger("engram:test", { stream: () => stream, env: () => "engram*" });
        logger.error("first");
        logger.error("second");
        logger.debug("third");
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(stream.destroyed).toBe(true);
        expect(stream.listenerCount("error")).toBeLessThanOrEqual(1);
      }
    } finally {
      process.off("uncaughtException", onUncaught);
    }
    expect(uncaught).toEqual([]);
  });
});

/** An embedder that fails its first call, then works. */
function failsOnce(): Embedder {
  const inner = deterministicEmbedder();
  let calls = 0;
  return {
    dimension: inner.dimension,
    modelId: inner.modelId,
    embed: (texts) => (calls++ === 0 ? Promise.reject(new Error("embedding service unavailable")) : inner.embed(texts)),
  };
}

describe("the default error hooks log through the logger: still visible on stderr, never through console", () => {
  test("Memory's default onError writes one [engram] line for a retried failure; DEBUG=engram* adds the error in full", async () => {
    const stderr = watchStderr();
    vi.stubEnv("DEBUG", "");
    const options = { vectorStore: inMemoryStore(), historyStore: inMemoryHistory(), writeBehind: { enabled: false } } as const;
    const retry = { retries: 1, minDelayMs: 1, maxDelayMs: 1 };
    const memory = new Memory({ ...options, embedder: failsOnce(), retry });
    await memory.add("I live in Lisbon", { userId: "alice" });
    await memory.close();
    expect(stderr.text()).toMatch(
      /^\[engram\] embed: EmbeddingError: The embedder failed: embedding service unavailable\. Will retry\.\n$/,
    );

    stderr.write.mockClear();
    const before = stderr.text().length;
    vi.stubEnv("DEBUG", "engram*");
    const verbose = new Memory({ ...options, vectorStore: inMemoryStore(), historyStore: inMemoryHistory(), embedder: failsOnce(), retry });
    await verbose.add("I live in Lisbon", { userId: "alice" });
    await verbose.close();
    const detail = stderr.text().slice(before);
    expect(detail).toMatch(/^\[engram\] embed: EmbeddingError: .* Will retry\.\n\[engram:memory\] EmbeddingError: The embedder failed/);
    expect(detail).toContain("[cause]: Error: embedding service unavailable");
    expect(stderr.consoleUsed()).toBe(false);
  });

  test("an onError or onUsage hook that throws is reported on stderr with its stack, never through console", async () => {
    const stderr = watchStderr();
    const { memory } = setup([reply(["new", "ADD", "Lives in Lisbon"])], {
      embedder: failsOnce(),
      retry: { retries: 1, minDelayMs: 1, maxDelayMs: 1 },
      onError: () => {
        throw new Error("a broken error hook");
      },
      onUsage: () => {
        throw new Error("a broken usage hook");
      },
    });
    await memory.add("I live in Lisbon", { userId: "alice" });
    await memory.close();
    expect(stderr.text()).toMatch(/\[engram\] onError threw: Error: a broken error hook\n {4}at /);
    expect(stderr.text()).toMatch(/\[engram\] onUsage threw: Error: a broken usage hook\n {4}at /);
    expect(stderr.consoleUsed()).toBe(false);
  });

  test("the adapters' default onError writes one [engram] line; a throwing adapter hook is reported the same way", () => {
    const stderr = watchStderr();
    vi.stubEnv("DEBUG", "");
    const memory = { search: async () => ({ results: [] }), enqueue: async () => ({ id: "x", queued: true }) } as never;
    resolveAdapterOptions({ memory }).onError(new StoreError({ message: "The store is down." }), { operation: "recall" });
    new TurnMemory(
      resolveAdapterOptions({
        memory,
        onError: () => {
          throw new Error("a broken adapter hook");
        },
      }),
    ).report(new StoreError({ message: "The store is down." }), "remember");
    expect(stderr.text()).toMatch(
      /^\[engram\] searching memories failed; the call went on without them: StoreError: The store is down\.\n\[engram\] onError threw: Error: a broken adapter hook\n {4}at /,
    );
    expect(stderr.consoleUsed()).toBe(false);
  });
});
