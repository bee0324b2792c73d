import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { MockLanguageModelV4 } from "ai/test";
import { afterAll, describe, expect, test } from "vitest";
import { withMemory } from "../integrations/ai-sdk/index.js";
import { ConfigError, type EngramError, InvalidInputError } from "../src/errors.js";
import { Memory } from "../src/memory.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";
import { spy } from "./support/spies.js";

// Every case of the "Bad input" rules: a typed error whose message says what to do, and nothing
// stored anywhere (rows counted in the SQLite file itself).

const directory = mkdtempSync(join(tmpdir(), "engram-bad-input-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const alice = { userId: "alice" };
const tooLong = "x".repeat(32_001);

let deep: unknown = "bottom";
for (let i = 0; i < 5_000; i++) deep = { a: deep };
const cyclic: Record<string, unknown> = { note: "x" };
cyclic.self = cyclic;
const revoked = () => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy as never;
};
const throwing = (base: Record<string, unknown>, key: string) =>
  Object.defineProperty({ ...base }, key, {
    enumerable: true,
    get() {
      throw new Error("getter failed");
    },
  });

type Case = [name: string, call: (memory: Memory, id: string) => Promise<unknown>, message: RegExp, type?: typeof InvalidInputError];

const writes: Case[] = [
  ["add: empty text", (m) => m.add("", alice), /add\(\): messages is empty\. Pass some text/],
  ["add: whitespace-only text", (m) => m.add(" \n\t ", alice), /is empty\. Pass some text/],
  ["add: empty message array", (m) => m.add([], alice), /empty array\. Pass at least one message/],
  ["add: empty message content", (m) => m.add([{ role: "user", content: "" }], alice), /messages\[0\]\.content is empty/],
  [
    "add: one blank message among good ones",
    (m) =>
      m.add(
        [
          { role: "user", content: "fine" },
          { role: "assistant", content: "  " },
        ],
        alice,
      ),
    /messages\[1\]\.content is empty/,
  ],
  ["add: number content", (m) => m.add([{ role: "user", content: 42 as never }], alice), /content must be a string/],
  [
    "add: multi-part content",
    (m) => m.add([{ role: "user", content: [{ type: "text", text: "hi" }] as never }], alice),
    /join the text parts/,
  ],
  ["add: missing content", (m) => m.add([{ role: "user" } as never], alice), /content must be a string/],
  ["add: unknown role", (m) => m.add([{ role: "tool", content: "x" } as never], alice), /role must be "user", "assistant" or "system"/],
  ["add: missing role", (m) => m.add([{ content: "x" } as never], alice), /role must be "user", "assistant" or "system"/],
  ["add: null message", (m) => m.add([null as never], alice), /must be an object \{ role, content \}/],
  ["add: string in a message array", (m) => m.add(["x" as never], alice), /must be an object \{ role, content \}/],
  ["add: number instead of messages", (m) => m.add(42 as never, alice), /string or an array of \{ role, content \}/],
  ["add: null instead of messages", (m) => m.add(null as never, alice), /string or an array of \{ role, content \}/],
  [
    "add: text over 32,000 characters",
    (m) => m.add(tooLong, alice),
    /32001 characters long; the maximum is 32000\. Split it, or raise maxMessageLength/,
  ],
  [
    "add: one message over the maximum among good ones",
    (m) =>
      m.add(
        [
          { role: "user", content: "fine" },
          { role: "user", content: tooLong },
        ],
        alice,
      ),
    /messages\[1\]\.content is 32001 characters long/,
  ],
  [
    "add: unknown option",
    (m) => m.add("x", { ...alice, tags: ["a"] } as never),
    /Unknown option "tags" in add\(\)\. Known options: metadata, infer, timestamp/,
  ],
  ["add: misspelled option", (m) => m.add("x", { ...alice, meta_data: {} } as never), /Unknown option "meta_data"/],
  ["add: metadata not an object", (m) => m.add("x", { ...alice, metadata: "note" as never }), /metadata must be an object of JSON values/],
  [
    'add: metadata with a function (regression: the message was only "Invalid input")',
    (m) => m.add("x", { ...alice, metadata: { fn: () => 1 } as never }),
    /metadata values must be JSON/,
  ],
  ["add: metadata over 16 KB", (m) => m.add("x", { ...alice, metadata: { big: "x".repeat(17_000) } }), /larger than 16 KB/],
  ["add: infer not a boolean", (m) => m.add("x", { ...alice, infer: "yes" as never }), /infer/],
  ["add: bad timestamp", (m) => m.add("x", { ...alice, timestamp: "yesterday" }), /timestamp must be an ISO 8601 date/],
  [
    "add: infer without a model",
    (m) => m.add("x", { ...alice, infer: true }),
    /needs an extraction model: new Memory\(\{ llm \}\)/,
    ConfigError as never,
  ],
  ["enqueue: empty text", (m) => m.enqueue("", alice), /enqueue\(\): messages is empty/],
  ["enqueue: empty message array", (m) => m.enqueue([], alice), /empty array/],
  ["enqueue: number content", (m) => m.enqueue([{ role: "user", content: 1 as never }], alice), /content must be a string/],
  ["enqueue: text over the maximum", (m) => m.enqueue(tooLong, alice), /the maximum is 32000/],
  ["enqueue: unknown option", (m) => m.enqueue("x", { ...alice, priority: 1 } as never), /Unknown option "priority" in enqueue\(\)/],
  ["enqueue: metadata over 16 KB", (m) => m.enqueue("x", { ...alice, metadata: { big: "x".repeat(17_000) } }), /16 KB/],
  [
    "enqueue: empty idempotency key",
    (m) => m.enqueue("x", { ...alice, idempotencyKey: "" }),
    /idempotencyKey must be a non-empty string of at most 256/,
  ],
  ["enqueue: oversized idempotency key", (m) => m.enqueue("x", { ...alice, idempotencyKey: "k".repeat(257) }), /idempotencyKey/],
  ["enqueue: bad timestamp", (m) => m.enqueue("x", { ...alice, timestamp: "soon" }), /ISO 8601/],
  [
    "add: text with U+0000 (regression: SQLite stored it and read it back cut short)",
    (m) => m.add("PIN\u00001234", alice),
    /add\(\): messages contains a NUL character \(U\+0000\), which cannot be stored: remove it/,
  ],
  [
    "enqueue: text with U+0000 (regression: accepted, then failed every attempt on PostgreSQL)",
    (m) => m.enqueue([{ role: "user", content: "a\u0000b" }], alice),
    /messages\[0\]\.content contains a NUL character/,
  ],
  [
    "add: text with a lone surrogate (regression: stored as U+FFFD, hashed before the change)",
    (m) => m.add("half an emoji \ud83d", alice),
    /messages contains a lone UTF-16 surrogate/,
  ],
  ["enqueue: text with a lone low surrogate", (m) => m.enqueue("\ude00 tail", alice), /lone UTF-16 surrogate/],
  ["add: metadata value with U+0000", (m) => m.add("x", { ...alice, metadata: { note: "a\u0000" } }), /metadata\.note contains a NUL/],
  ["add: metadata key with U+0000", (m) => m.add("x", { ...alice, metadata: { "k\u0000": 1 } }), /metadata has a key "k\\u0000" that/],
  ["enqueue: idempotency key with U+0000", (m) => m.enqueue("x", { ...alice, idempotencyKey: "k\u0000" }), /idempotencyKey contains a NUL/],
  [
    "add: metadata nested 5,000 deep (regression: RangeError)",
    (m) => m.add("x", { ...alice, metadata: { deep } as never }),
    /metadata\.deep(\.a)+ is nested more than 16 levels deep\. Flatten it/,
  ],
  [
    "enqueue: metadata nested 5,000 deep in arrays",
    (m) => m.enqueue("x", { ...alice, metadata: { list: JSON.parse(`${"[".repeat(5_000)}${"]".repeat(5_000)}`) } }),
    /metadata\.list(\[0\])+ is nested more than 16 levels deep/,
  ],
  [
    "add: cyclic metadata (regression: TypeError)",
    (m) => m.add("x", { ...alice, metadata: cyclic as never }),
    /metadata\.self refers back to an object that contains it \(a cycle\)/,
  ],
  [
    "add: metadata with a getter that throws (regression: the getter's error leaked)",
    (m) => m.add("x", { ...alice, metadata: throwing({ ok: 1 }, "bad") as never }),
    /add\(\): metadata\.bad could not be read: reading it threw Error: getter failed\. Pass plain data/,
  ],
  [
    "add: options with a getter that throws",
    (m) => m.add("x", throwing(alice, "metadata") as never),
    /add\(\): metadata could not be read/,
  ],
  ["add: scope with a getter that throws", (m) => m.add("x", throwing({}, "userId") as never), /add\(\): userId could not be read/],
  [
    "add: metadata of 20,000 values",
    (m) => m.add("x", { ...alice, metadata: { list: new Array(20_000).fill(0) } }),
    /metadata holds more than 10000 values/,
  ],
  [
    'add: metadata with a "__proto__" key (regression: dropped silently)',
    (m) => m.add("x", { ...alice, metadata: JSON.parse('{"kept":1,"__proto__":{"userId":"bob"}}') }),
    /metadata\.__proto__: metadata cannot have the key "__proto__"/,
  ],
  [
    'add: nested metadata with a "__proto__" key',
    (m) => m.add("x", { ...alice, metadata: { inner: JSON.parse('{"__proto__":1}') } }),
    /metadata values must be JSON/,
  ],
  [
    "add: metadata whose prototype carries data",
    (m) => m.add("x", { ...alice, metadata: Object.create({ owner: "bob" }) }),
    /metadata must be an object of JSON values/,
  ],
  [
    "add: message array with a hole (regression: TypeError)",
    // biome-ignore lint/suspicious/noSparseArray: the hole is the case.
    (m) => m.add([, { role: "user", content: "x" }] as never, alice),
    /messages\[0\] must be an object \{ role, content \}/,
  ],
  [
    "add: message whose content getter throws",
    (m) => m.add([throwing({ role: "user" }, "content")] as never, alice),
    /messages\[0\]\.content could not be read/,
  ],
  [
    "add: message with a BigInt role (regression: TypeError from printing it)",
    (m) => m.add([{ role: 1n, content: "x" }] as never, alice),
    /role must be "user", "assistant" or "system", got a value of type bigint/,
  ],
  ["add: options a revoked proxy", (m) => m.add("x", revoked()), /add\(\): options could not be read: reading it threw TypeError/],
  ["add: messages a revoked proxy", (m) => m.add(revoked(), alice), /add\(\): messages could not be read/],
  [
    "add: message content a revoked proxy",
    (m) => m.add([{ role: "user", content: revoked() }], alice),
    /messages\[0\]\.content could not be read/,
  ],
  [
    "enqueue: metadata a revoked proxy",
    (m) => m.enqueue("x", { ...alice, metadata: revoked() }),
    /enqueue\(\): metadata could not be read/,
  ],
  ["search: filters a revoked proxy", (m) => m.search("x", { ...alice, filters: revoked() }), /search\(\): filters could not be read/],
  [
    "add: message with inherited content",
    (m) => m.add([Object.assign(Object.create({ content: "x" }), { role: "user" })] as never, alice),
    /messages\[0\]\.content must be a string/,
  ],
];

const reads: Case[] = [
  ["search: empty query", (m) => m.search("", alice), /search\(\): query is empty\. Pass some text/],
  ["search: whitespace query", (m) => m.search("   ", alice), /query is empty/],
  ["search: number query", (m) => m.search(42 as never, alice), /query must be a string/],
  ["search: query over the maximum", (m) => m.search(tooLong, alice), /the maximum is 32000/],
  ["search: limit 0", (m) => m.search("x", { ...alice, limit: 0 }), /limit must be between 1 and 100/],
  ["search: limit 101", (m) => m.search("x", { ...alice, limit: 101 }), /limit must be between 1 and 100/],
  ["search: negative limit", (m) => m.search("x", { ...alice, limit: -5 }), /limit must be between 1 and 100/],
  ["search: fractional limit", (m) => m.search("x", { ...alice, limit: 2.5 }), /limit must be a whole number/],
  ["search: string limit", (m) => m.search("x", { ...alice, limit: "10" as never }), /limit/],
  ["search: NaN limit", (m) => m.search("x", { ...alice, limit: Number.NaN }), /limit/],
  ["search: threshold below 0", (m) => m.search("x", { ...alice, threshold: -0.1 }), /threshold must be between 0 and 1/],
  ["search: threshold above 1", (m) => m.search("x", { ...alice, threshold: 1.1 }), /threshold must be between 0 and 1/],
  ["search: string threshold", (m) => m.search("x", { ...alice, threshold: "0.5" as never }), /threshold/],
  ["search: NaN threshold", (m) => m.search("x", { ...alice, threshold: Number.NaN }), /threshold/],
  [
    "search: unknown option",
    (m) => m.search("x", { ...alice, topK: 5 } as never),
    /Unknown option "topK" in search\(\)\. Known options: limit, threshold, maxTokens, explain, filters/,
  ],
  [
    'search: bad filter key (regression: the message was zod\'s "Invalid key in record")',
    (m) => m.search("x", { ...alice, filters: { "bad key!": 1 } }),
    /filter keys are metadata keys/,
  ],
  [
    "search: object filter value",
    (m) => m.search("x", { ...alice, filters: { a: { b: 1 } } as never }),
    /compared by equality: use a string, number, boolean or null/,
  ],
  ["search: array filter value", (m) => m.search("x", { ...alice, filters: { a: [1] } as never }), /compared by equality/],
  ["getAll: limit 0", (m) => m.getAll({ ...alice, limit: 0 }), /limit must be between 1 and 1000/],
  ["getAll: limit over 1000", (m) => m.getAll({ ...alice, limit: 1001 }), /limit must be between 1 and 1000/],
  ["getAll: unknown option", (m) => m.getAll({ ...alice, offset: 10 } as never), /Unknown option "offset" in getAll\(\)/],
  ["get: empty id", (m) => m.get("", alice), /memoryId must be a non-empty string id, as returned by add\(\) or search\(\)/],
  ["get: number id", (m) => m.get(42 as never, alice), /memoryId must be a non-empty string id/],
  ["history: empty id", (m) => m.history(" ", alice), /memoryId must be a non-empty string id/],
  ["pending: allScopes false", (m) => m.pending({ allScopes: false } as never), /pass a scope, or exactly \{ allScopes: true \}/],
  ["pending: allScopes with a scope", (m) => m.pending({ allScopes: true, userId: "alice" } as never), /exactly \{ allScopes: true \}/],
  ["search: query with U+0000", (m) => m.search("a\u0000", alice), /search\(\): query contains a NUL character/],
  ["search: query with a lone surrogate", (m) => m.search("\ud800", alice), /query contains a lone UTF-16 surrogate/],
  ["search: filter value with U+0000", (m) => m.search("x", { ...alice, filters: { a: "\u0000" } }), /filters\.a contains a NUL/],
  ["getAll: filter key with a lone surrogate", (m) => m.getAll({ ...alice, filters: { "\udc00": 1 } }), /filters has a key/],
  [
    'getAll: filter with a "__proto__" key (regression: dropped, every memory returned)',
    (m) => m.getAll({ ...alice, filters: JSON.parse('{"__proto__":"x"}') }),
    /filters\.__proto__: "__proto__" cannot be a filter key/,
  ],
  ["search: filters from a class instance", (m) => m.search("x", { ...alice, filters: new Map() as never }), /filters must be an object/],
  ["get: scope a revoked proxy", (m) => m.get("id", revoked()), /get\(\): scope could not be read/],
  ["pending: scope a revoked proxy", (m) => m.pending(revoked()), /pending\(\): scope could not be read/],
  ["get: id with U+0000", (m) => m.get("id\u0000", alice), /memoryId must be a non-empty string id/],
  [
    "flush: timeoutMs NaN (regression: never resolved)",
    (m) => m.flush({ timeoutMs: Number.NaN }),
    /flush\(\): timeoutMs: timeoutMs must be a number of milliseconds ≥ 0, or Infinity/,
  ],
  ["flush: negative timeoutMs", (m) => m.flush({ timeoutMs: -1 }), /timeoutMs must be a number of milliseconds/],
  ["flush: timeoutMs as a string", (m) => m.flush({ timeoutMs: "5000" as never }), /timeoutMs must be a number of milliseconds/],
  ["flush: -Infinity", (m) => m.flush({ timeoutMs: Number.NEGATIVE_INFINITY }), /timeoutMs must be a number of milliseconds/],
  ["flush: unknown option", (m) => m.flush({ timeout: 5 } as never), /Unknown option "timeout" in flush\(\)\. Known options: timeoutMs/],
  ["flush: null", (m) => m.flush(null as never), /flush\(\) takes an options object/],
];

const changes: Case[] = [
  ["update: empty text", (m, id) => m.update(id, "", alice), /update\(\): text is empty\. Pass some text/],
  ["update: whitespace text", (m, id) => m.update(id, " \t", alice), /text is empty/],
  ["update: number text", (m, id) => m.update(id, 42 as never, alice), /text must be a string/],
  ["update: text over the maximum", (m, id) => m.update(id, tooLong, alice), /the maximum is 32000/],
  ["update: text with U+0000", (m, id) => m.update(id, "new\u0000text", alice), /update\(\): text contains a NUL character/],
  ["update: text with a lone surrogate", (m, id) => m.update(id, "new \udbff", alice), /text contains a lone UTF-16 surrogate/],
  ["delete: id with a lone surrogate", (m) => m.delete("\ud800", alice), /memoryId must be a non-empty string id/],
  ["update: empty id", (m) => m.update("", "new", alice), /memoryId must be a non-empty string id/],
  ["update: oversized id", (m) => m.update("i".repeat(257), "new", alice), /memoryId must be a non-empty string id/],
  ["delete: empty id", (m) => m.delete("", alice), /memoryId must be a non-empty string id/],
  ["delete: purge not a boolean", (m, id) => m.delete(id, { ...alice, purge: "yes" as never }), /purge/],
  [
    "delete: unknown option",
    (m, id) => m.delete(id, { ...alice, force: true } as never),
    /Unknown option "force" in delete\(\)\. Known options: purge/,
  ],
  ["deleteAll: purge not a boolean", (m) => m.deleteAll({ ...alice, purge: 1 as never }), /purge/],
  ["deleteAll: unknown option", (m) => m.deleteAll({ ...alice, confirm: true } as never), /Unknown option "confirm" in deleteAll\(\)/],
];

function rows(file: string): Record<string, number> {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const count = (table: string) => Number((db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
    return {
      memories: count("memories"),
      memories_fts: count("memories_fts"),
      memory_history: count("memory_history"),
      memory_outbox: count("memory_outbox"),
    };
  } finally {
    db.close();
  }
}

async function expectRefused([name, call, message, type = InvalidInputError]: Case, memory: Memory, id: string): Promise<void> {
  const error = await call(memory, id).then(
    () => {
      throw new Error(`${name}: the call was accepted`);
    },
    (e: unknown) => e as EngramError,
  );
  expect(type.isInstance(error), `${name}: ${String(error)}`).toBe(true);
  expect(error.message, name).toMatch(message);
}

describe("bad input: a typed error that says what to do, and nothing stored", () => {
  test("flush accepts 0, a number of milliseconds, Infinity and no options", async () => {
    const memory = new Memory({ dataDir: join(directory, "flush"), embedder: deterministicEmbedder() });
    const none = { processed: 0, failed: 0, waiting: 0 };
    for (const options of [undefined, {}, { timeoutMs: 0 }, { timeoutMs: 25.5 }, { timeoutMs: Number.POSITIVE_INFINITY }]) {
      expect(await memory.flush(options)).toEqual(none);
    }
    await memory.close();
  });

  test("new memories and queued turns: every case refused, the database stays empty, the embedder is never called", async () => {
    const dataDir = join(directory, "writes");
    const calls: string[] = [];
    const memory = new Memory({ dataDir, embedder: spy(deterministicEmbedder(), "embedder", calls) });
    for (const refused of [...writes, ...reads]) await expectRefused(refused, memory, "some-id");
    await memory.flush();
    expect(calls.filter((call) => call === "embedder.embed")).toEqual([]);
    expect((await memory.getAll(alice)).results).toEqual([]);
    expect(await memory.pending({ allScopes: true })).toEqual([]);
    await memory.close();
    expect(rows(join(dataDir, "engram.db"))).toEqual({ memories: 0, memories_fts: 0, memory_history: 0, memory_outbox: 0 });
  });

  test("changes to an existing memory: every case refused, the memory and its history untouched", async () => {
    const dataDir = join(directory, "changes");
    const memory = new Memory({ dataDir, embedder: deterministicEmbedder() });
    const {
      results: [added],
    } = await memory.add("the original text", alice);
    const id = added?.id as string;
    const before = await memory.get(id, alice);
    for (const refused of changes) await expectRefused(refused, memory, id);
    expect(await memory.get(id, alice)).toEqual(before);
    expect((await memory.history(id, alice)).map((h) => h.event)).toEqual(["ADD"]);
    await memory.close();
    expect(rows(join(dataDir, "engram.db"))).toEqual({ memories: 1, memories_fts: 1, memory_history: 1, memory_outbox: 0 });
  });

  test("the maximum text length is configurable, and exactly the maximum is accepted", async () => {
    const memory = new Memory({ dataDir: join(directory, "length"), embedder: deterministicEmbedder(), maxMessageLength: 10 });
    await expectRefused(["add: 11 characters", (m) => m.add("x".repeat(11), alice), /the maximum is 10/], memory, "");
    expect((await memory.add("x".repeat(10), alice)).results[0]?.event).toBe("ADD");
    const defaults = new Memory({ dataDir: join(directory, "length-default"), embedder: deterministicEmbedder() });
    expect((await defaults.add("y".repeat(32_000), alice)).results[0]?.event).toBe("ADD");
    await Promise.all([memory.close(), defaults.close()]);
  });

  test("bad Memory options are refused when constructing, naming the option", () => {
    for (const [options, message] of [
      [{ datadir: "./x" }, /Unknown option "datadir" in new Memory\(\)/],
      [{ dataDir: "" }, /dataDir must be a non-empty path/],
      [{ embedder: { vectors: [] } }, /embedder must be an Embedder/],
      [{ vectorStore: {} }, /vectorStore must implement the VectorStore contract/],
      [{ maxMessageLength: 0 }, /maxMessageLength/],
      [{ keywordWeight: 2 }, /keywordWeight/],
      [{ writeBehind: { leaseMs: 1 } }, /leaseMs/],
      [{ onError: "log" }, /onError must be a function/],
      [{ customInstructions: "remember \u0000 everything" }, /customInstructions contains a NUL character/],
      [{ customInstructions: "\ud800" }, /customInstructions contains a lone UTF-16 surrogate/],
      [{ retry: cyclic }, /retry\.self refers back to an object that contains it/],
      [throwing({}, "dataDir"), /new Memory\(\): dataDir could not be read/],
    ] as const) {
      let error: unknown;
      try {
        new Memory(options as never);
      } catch (e) {
        error = e;
      }
      expect(InvalidInputError.isInstance(error), String(message)).toBe(true);
      expect((error as Error).message).toMatch(message);
    }
  });

  test("adapter options: a label with U+0000 or a lone surrogate is refused when wrapping, as a ConfigError", async () => {
    const memory = new Memory({ dataDir: join(directory, "adapter"), embedder: deterministicEmbedder() });
    for (const [label, message] of [
      ["Memories\u0000", /label contains a NUL character/],
      ["Memories \ud83d", /label contains a lone UTF-16 surrogate/],
    ] as const) {
      expect(() => withMemory(new MockLanguageModelV4(), { memory, label })).toThrow(ConfigError);
      expect(() => withMemory(new MockLanguageModelV4(), { memory, label })).toThrow(message);
    }
    await memory.close();
  });
});
