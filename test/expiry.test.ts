import type { LanguageModelV4CallOptions } from "@ai-sdk/provider";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { generateText } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import fc from "fast-check";
import { afterEach, describe, expect, test, vi } from "vitest";
import { withMemory } from "../integrations/ai-sdk/index.js";
import { createMcpServer } from "../integrations/mcp/index.js";
import { ConfigError, type EngramError, InvalidInputError, Memory, MemoryNotFoundError, type MemoryOptions } from "../src/index.js";
import { parseDuration } from "../src/lifecycle.js";
import type { VectorStore } from "../src/stores/vector-store.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore, scriptedLanguageModel } from "../src/testing/index.js";
import { reply } from "./extraction/setup.js";
import { reply as modelReply, systemTexts } from "./integrations/scripted-ai-sdk-model.js";

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

const open: Memory[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.allSettled(open.splice(0).map((memory) => memory.close()));
});

/** A Memory on in-memory stores whose clock the test moves (`clock.now`). */
function clocked(options: Partial<MemoryOptions> = {}) {
  const clock = { now: T0 };
  const store = inMemoryStore();
  const memory = new Memory({
    embedder: deterministicEmbedder({ dimension: 32 }),
    vectorStore: store,
    historyStore: inMemoryHistory(),
    writeBehind: { enabled: false },
    onError: () => {},
    _internal: { now: () => clock.now },
    ...options,
  });
  open.push(memory);
  return { memory, clock, store };
}

const storedCount = async (store: VectorStore, scope: Record<string, string>) =>
  (await store.list({ filter: { scope }, limit: 1000 })).records.length;

describe("expiry options", () => {
  test("bad ttl and expiresAt values are refused with a typed error naming the field, and nothing is stored", async () => {
    const { memory, store } = clocked();
    const cases: [Record<string, unknown>, string][] = [
      [{ ttl: "7 days" }, "ttl"],
      [{ ttl: "0d" }, "ttl"],
      [{ ttl: -5 }, "ttl"],
      [{ ttl: "1000000d" }, "ttl"],
      [{ expiresAt: "next tuesday" }, "expiresAt"],
      [{ expiresAt: iso(T0 - 1) }, "expiresAt"],
      [{ expiresAt: new Date(T0) }, "expiresAt"],
      [{ expiresAt: iso(T0 + DAY), ttl: "1d" }, "ttl"],
    ];
    for (const [options, field] of cases) {
      const attempt = memory.add("I like tea", { userId: "alice", ...options });
      await expect(attempt, JSON.stringify(options)).rejects.toSatisfy(
        (error: EngramError) => InvalidInputError.isInstance(error) && (error as InvalidInputError).field === field,
      );
      await expect(memory.enqueue("I like tea", { userId: "alice", ...options })).rejects.toSatisfy((error) =>
        InvalidInputError.isInstance(error),
      );
    }
    await expect(
      memory.addMany([
        { messages: "fine", userId: "alice" },
        { messages: "bad", userId: "alice", ttl: "soon" },
      ]),
    ).rejects.toSatisfy((error: EngramError) => InvalidInputError.isInstance(error) && (error as InvalidInputError).field === "items[1]");
    // The expiry and the review mark cannot be written, or filtered on, through the caller's metadata.
    const spoofed = { "engram.lifecycle": { expiresAt: iso(T0 + DAY), reviewedAt: iso(T0) } };
    await expect(memory.add("I like tea", { userId: "alice", metadata: spoofed })).rejects.toSatisfy(
      (error: EngramError) => InvalidInputError.isInstance(error) && /engram\.lifecycle/.test(error.message),
    );
    await expect(memory.getAll({ userId: "alice", filters: { "engram.lifecycle": "x" } })).rejects.toSatisfy((error) =>
      InvalidInputError.isInstance(error),
    );
    expect(await storedCount(store, { userId: "alice" })).toBe(0);
    expect(() => new Memory({ ttl: { run: "a week" } })).toThrow(/ttl\.run: a ttl is a duration like "30m"/);
    expect(() => new Memory({ ttl: { session: "1d" } as never })).toThrow(/Unknown option "session"/);
    expect(() => new Memory({ ttl: { run: "1d" } })).not.toThrow();
  });

  test("property: a duration is its number times its unit, in milliseconds; anything else is refused", () => {
    const units = { ms: 1, s: 1_000, m: 60_000, h: HOUR, d: DAY, w: 7 * DAY } as const;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5_000 }), fc.constantFrom(...(Object.keys(units) as (keyof typeof units)[])), (n, unit) => {
        expect(parseDuration(`${n}${unit}`)).toBe(n * units[unit]);
        expect(parseDuration(` ${n} ${unit} `)).toBe(n * units[unit]);
      }),
    );
    fc.assert(
      fc.property(fc.string(), (text) => {
        const parsed = parseDuration(text);
        if (parsed !== undefined) expect(/^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*$/.test(text)).toBe(true);
      }),
    );
    for (const bad of ["", "d", "1y", "-1d", "1e3ms", "Infinity", "1 d 2 h", Number.NaN, Number.POSITIVE_INFINITY, 0, -1, null, {}]) {
      expect(parseDuration(bad), String(bad)).toBeUndefined();
    }
  });

  test("per-scope-level defaults: the most specific id of the scope decides; an add's own ttl or expiresAt (null: never) wins", async () => {
    const { memory } = clocked({ ttl: { run: "7d", user: "365d" } });
    const expiryOf = async (text: string, options: Record<string, unknown>) => {
      const [result] = (await memory.add(text, options as { userId: string })).results;
      const scope = Object.fromEntries(Object.entries(options).filter(([key]) => key.endsWith("Id")));
      return (await memory.get(result?.id as string, scope))?.expiresAt;
    };
    expect(await expiryOf("run fact", { userId: "alice", runId: "r1" })).toBe(iso(T0 + 7 * DAY));
    expect(await expiryOf("user fact", { userId: "alice" })).toBe(iso(T0 + 365 * DAY));
    // The agent level has no default: agent-scoped memories never expire, even with a user id.
    expect(await expiryOf("agent fact", { userId: "alice", agentId: "coder" })).toBeUndefined();
    expect(await expiryOf("own ttl", { userId: "alice", runId: "r1", ttl: "12h" })).toBe(iso(T0 + 12 * HOUR));
    expect(await expiryOf("own date", { userId: "alice", expiresAt: new Date(T0 + DAY) })).toBe(iso(T0 + DAY));
    expect(await expiryOf("kept for good", { userId: "alice", runId: "r1", expiresAt: null })).toBeUndefined();
  });
});

describe("expired memories are never returned", () => {
  test("regression: a text said again after its copy expired was NONE against the invisible copy; now it is stored anew", async () => {
    const { memory, clock } = clocked();
    const [first] = (await memory.add("The gate code is 4512", { userId: "alice", ttl: "1h" })).results;
    expect((await memory.add("The gate code is 4512", { userId: "alice" })).results[0]?.event).toBe("NONE");
    clock.now = T0 + HOUR;
    const [again] = (await memory.add("The gate code is 4512", { userId: "alice" })).results;
    expect(again?.event).toBe("ADD");
    expect(again?.id).not.toBe(first?.id);
    expect((await memory.getAll({ userId: "alice" })).results.map((item) => [item.id, item.expiresAt])).toEqual([[again?.id, undefined]]);
  });

  test("by-id calls treat an expired memory as missing (update, delete, markReviewed); a purge still erases it", async () => {
    const { memory, clock, store } = clocked();
    const [added] = (await memory.add("Temporary note", { userId: "alice", ttl: "30m" })).results;
    const id = added?.id as string;
    clock.now = T0 + 30 * 60_000;
    await expect(memory.update(id, "changed", { userId: "alice" })).rejects.toSatisfy((error) => MemoryNotFoundError.isInstance(error));
    await expect(memory.delete(id, { userId: "alice" })).rejects.toSatisfy((error) => MemoryNotFoundError.isInstance(error));
    await expect(memory.markReviewed(id, { userId: "alice" })).rejects.toSatisfy((error) => MemoryNotFoundError.isInstance(error));
    expect(await memory.delete(id, { userId: "alice", purge: true })).toMatchObject({ id, purged: true });
    expect(await storedCount(store, { userId: "alice" })).toBe(0);
  });

  test("the MCP tools (search, list, get) stop returning a memory the instant it expires", async () => {
    const { memory, clock } = clocked();
    const [added] = (await memory.add("My locker is number 42", { userId: "alice", ttl: "2h" })).results;
    const id = added?.id as string;
    const server = createMcpServer({ memory, scope: { userId: "alice" } });
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
    const client = new Client({ name: "test", version: "1.0.0" });
    await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
    try {
      const tool = async (name: string, args: Record<string, unknown>) =>
        ((await client.callTool({ name, arguments: args })) as CallToolResult).structuredContent as Record<string, unknown>;
      const ids = (result: Record<string, unknown>) => (result.results as { id: string }[]).map((item) => item.id);
      expect(ids(await tool("search_memories", { query: "locker number", threshold: 0 }))).toEqual([id]);
      clock.now = T0 + 2 * HOUR;
      expect(ids(await tool("search_memories", { query: "locker number", threshold: 0 }))).toEqual([]);
      expect(ids(await tool("list_memories", {}))).toEqual([]);
      const got = (await client.callTool({ name: "get_memory", arguments: { memoryId: id } })) as CallToolResult;
      expect(JSON.stringify(got)).not.toContain("locker");
    } finally {
      await client.close();
    }
  });
});

describe("adapters", () => {
  test("the AI SDK adapter stops recalling a memory into the prompt the instant it expires", async () => {
    const { memory, clock } = clocked({ writeBehind: { enabled: true, pollIntervalMs: 10 } });
    await memory.add("My flight leaves from gate B7", { userId: "alice", ttl: "3h" });
    const model = new MockLanguageModelV4({ doGenerate: modelReply("Gate B7.") });
    const ask = async () => {
      await generateText({
        model: withMemory(model, { memory, threshold: 0 }),
        prompt: "Which gate does my flight leave from?",
        providerOptions: { memory: { userId: "alice" } },
      });
      await memory.flush({ timeoutMs: 20_000 });
      return systemTexts(model.doGenerateCalls.at(-1) as LanguageModelV4CallOptions).join("\n");
    };
    expect(await ask()).toContain("My flight leaves from gate B7");
    clock.now = T0 + 3 * HOUR;
    expect(await ask()).not.toContain("My flight leaves from gate B7");
  });
});

describe("update and expiry", () => {
  test("update keeps the expiry; expiresAt or ttl in the change replaces it, null removes it", async () => {
    const { memory, clock } = clocked();
    const [added] = (await memory.add("Meeting room B", { userId: "alice", ttl: "1d" })).results;
    const id = added?.id as string;
    clock.now = T0 + HOUR;
    expect((await memory.update(id, "Meeting room C", { userId: "alice" })).expiresAt).toBe(iso(T0 + DAY));
    expect((await memory.update(id, { metadata: { floor: 2 } }, { userId: "alice" })).expiresAt).toBe(iso(T0 + DAY));
    expect((await memory.update(id, { ttl: "2d" }, { userId: "alice" })).expiresAt).toBe(iso(T0 + HOUR + 2 * DAY));
    const forever = await memory.update(id, { expiresAt: null }, { userId: "alice" });
    expect([forever.expiresAt, forever.memory, forever.metadata]).toEqual([undefined, "Meeting room C", { floor: 2 }]);
    await expect(memory.update(id, { ttl: "1d", expiresAt: null }, { userId: "alice" })).rejects.toSatisfy((error) =>
      InvalidInputError.isInstance(error),
    );
  });

  test("regression: an expiry set by update within the millisecond of the last write kept the memory in search's index after it expired", async () => {
    const { memory, clock } = clocked();
    const [added] = (await memory.add("Desk 14 is mine today", { userId: "alice" })).results;
    const id = added?.id as string;
    expect((await memory.search("desk", { userId: "alice", threshold: 0 })).results.map((item) => item.id)).toEqual([id]);
    // The clock has not moved since the add: the update must still be a new version.
    const updated = await memory.update(id, { ttl: "1m" }, { userId: "alice" });
    expect(updated.updatedAt > iso(T0)).toBe(true);
    clock.now = T0 + 60_000;
    expect((await memory.search("desk", { userId: "alice", threshold: 0 })).results).toEqual([]);
  });

  test("an add that rewrites a memory (extraction UPDATE) gives it the add's expiry, and records the model and the turn it came from", async () => {
    const llm = scriptedLanguageModel([reply(["new", "ADD", "Works at Acme"]), reply(["0", "UPDATE", "Works at Globex"])]);
    const { memory, clock } = clocked({ llm });
    const [added] = (await memory.add("I work at Acme", { userId: "alice", ttl: "1h" })).results;
    const id = added?.id as string;
    expect((await memory.get(id, { userId: "alice" }))?.expiresAt).toBe(iso(T0 + HOUR));
    clock.now = T0 + 30 * 60_000;
    const [updated] = (await memory.add("I moved to Globex", { userId: "alice" })).results;
    expect(updated).toMatchObject({ id, event: "UPDATE" });
    // Said again without a ttl: it no longer expires.
    clock.now = T0 + 2 * HOUR;
    const item = await memory.get(id, { userId: "alice" });
    expect([item?.memory, item?.expiresAt]).toEqual(["Works at Globex", undefined]);
    const [reviewed] = (await memory.review({ userId: "alice" })).results;
    expect(reviewed?.source).toEqual({ kind: "extracted", model: "engram-test/scripted", turn: "user: I moved to Globex" });
  });
});

describe("queued turns", () => {
  test("enqueue fixes the expiry when the turn is queued, not when a worker processes it", async () => {
    const { memory, clock } = clocked({ ttl: { user: "1h" }, writeBehind: { pollIntervalMs: 10 } });
    await memory.enqueue("Parked on level 2", { userId: "alice" });
    clock.now = T0 + 10 * 60_000;
    await memory.flush({ timeoutMs: 20_000 });
    expect((await memory.getAll({ userId: "alice" })).results.map((item) => item.expiresAt)).toEqual([iso(T0 + HOUR)]);
  });
});

describe("sweep", () => {
  test("deletes only expired memories, keeping their history; purge erases the text there too; every scope is swept once", async () => {
    const { memory, clock, store } = clocked();
    const [a] = (await memory.add("alice's short note", { userId: "alice", ttl: "1h" })).results;
    const [b] = (await memory.add("alice's run note", { userId: "alice", runId: "r1", ttl: "1h" })).results;
    await memory.add("alice's lasting note", { userId: "alice" });
    const [c] = (await memory.add("bob's short note", { userId: "bob", ttl: "1h" })).results;
    await memory.add("bob's later note", { userId: "bob", ttl: "3h" });
    expect(await memory.sweep({ userId: "alice" })).toEqual({ deleted: 0, purged: false });
    clock.now = T0 + HOUR;
    expect(await memory.sweep({ userId: "alice" }, { purge: true })).toEqual({ deleted: 2, purged: true });
    const purged = await memory.history(a?.id as string, { userId: "alice" });
    expect(purged.every((entry) => entry.previousValue === null && entry.newValue === null)).toBe(true);
    expect(await memory.sweep({ allScopes: true })).toEqual({ deleted: 1, purged: false });
    expect((await memory.history(c?.id as string, { userId: "bob" })).map((entry) => entry.event)).toEqual(["ADD", "DELETE"]);
    expect(await storedCount(store, { userId: "alice" })).toBe(1);
    expect(await storedCount(store, { userId: "bob" })).toBe(1);
    expect(b?.event).toBe("ADD");
    await expect(memory.sweep({} as never)).rejects.toSatisfy((error: EngramError) => error.code === "MISSING_SCOPE");
    await expect(memory.sweep({ userId: "alice" }, { purge: "yes" } as never)).rejects.toSatisfy((error) =>
      InvalidInputError.isInstance(error),
    );
  });

  test("a background sweep runs every intervalMs once ttl is set, and close() stops its timer", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { memory, clock, store } = clocked({ ttl: { run: "1h" }, sweep: { intervalMs: 1_000 } });
    await memory.add("run note", { userId: "alice", runId: "r1" });
    await memory.add("user note", { userId: "alice" });
    expect(vi.getTimerCount()).toBe(1);
    clock.now = T0 + HOUR;
    vi.advanceTimersByTime(1_000);
    for (let i = 0; i < 200 && (await storedCount(store, { userId: "alice" })) !== 1; i++)
      await new Promise((resolve) => setImmediate(resolve));
    expect(await storedCount(store, { userId: "alice" })).toBe(1);
    await memory.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  test("the background sweep is off without ttl; over a store that cannot list its scopes it stops after reporting once", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { memory: quiet } = clocked();
    await quiet.add("note", { userId: "alice" });
    expect(vi.getTimerCount()).toBe(0);
    const errors: EngramError[] = [];
    const plain = inMemoryStore() as VectorStore & { scopes?: unknown };
    const unlisted = new Proxy(plain, { get: (target, key) => (key === "scopes" ? undefined : Reflect.get(target, key)) });
    const { memory } = clocked({ vectorStore: unlisted, sweep: { enabled: true, intervalMs: 50 }, onError: (error) => errors.push(error) });
    await memory.add("note", { userId: "alice" });
    vi.advanceTimersByTime(50);
    for (let i = 0; i < 200 && errors.length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(errors.map((error) => ConfigError.isInstance(error))).toEqual([true]);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("property", () => {
  test("property: at every instant, every read returns exactly the memories whose expiry is still ahead (adds, ttl, updates and clock moves in any order)", async () => {
    const step = fc.oneof(
      fc.record({
        kind: fc.constant("add" as const),
        fact: fc.integer({ min: 0, max: 30 }),
        scope: fc.constantFrom({ userId: "u1" }, { userId: "u1", runId: "r1" }, { userId: "u2" }),
        ttlMinutes: fc.option(fc.integer({ min: 1, max: 120 }), { nil: undefined }),
      }),
      fc.record({ kind: fc.constant("tick" as const), minutes: fc.integer({ min: 1, max: 90 }) }),
      fc.record({
        kind: fc.constant("retime" as const),
        pick: fc.nat(),
        ttlMinutes: fc.option(fc.integer({ min: 1, max: 120 }), { nil: null }),
      }),
      fc.record({ kind: fc.constant("sweep" as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 14 }), async (steps) => {
        const { memory, clock } = clocked({ ttl: { run: "45m" } });
        try {
          // What the model of the memory says: id → [text, scope, expiry or undefined].
          const known = new Map<string, { scope: { userId: string; runId?: string }; expiry: number | undefined }>();
          const check = async () => {
            const alive = new Set(
              [...known].filter(([, entry]) => entry.expiry === undefined || entry.expiry > clock.now).map(([id]) => id),
            );
            for (const userId of ["u1", "u2"]) {
              const listed = (await memory.getAll({ userId, limit: 1000 })).results.map((item) => item.id);
              expect(new Set(listed)).toEqual(new Set([...alive].filter((id) => known.get(id)?.scope.userId === userId)));
              const found = (await memory.search("fact number", { userId, threshold: 0, limit: 100 })).results;
              for (const item of found) expect(alive.has(item.id)).toBe(true);
            }
            for (const [id, entry] of known) expect((await memory.get(id, entry.scope)) !== null).toBe(alive.has(id));
          };
          for (const action of steps) {
            if (action.kind === "add") {
              const options = { ...action.scope, ...(action.ttlMinutes === undefined ? {} : { ttl: `${action.ttlMinutes}m` }) };
              for (const result of (await memory.add(`fact number ${action.fact}`, options)).results) {
                if (result.event !== "ADD") continue;
                const minutes = action.ttlMinutes ?? (action.scope.runId ? 45 : undefined);
                known.set(result.id, { scope: action.scope, expiry: minutes === undefined ? undefined : clock.now + minutes * 60_000 });
              }
            } else if (action.kind === "tick") {
              clock.now += action.minutes * 60_000;
            } else if (action.kind === "retime") {
              const alive = [...known].filter(([, entry]) => entry.expiry === undefined || entry.expiry > clock.now);
              const [id, entry] = alive[action.pick % Math.max(1, alive.length)] ?? [];
              if (!id || !entry) continue;
              await memory.update(id, action.ttlMinutes === null ? { expiresAt: null } : { ttl: `${action.ttlMinutes}m` }, entry.scope);
              entry.expiry = action.ttlMinutes === null ? undefined : clock.now + action.ttlMinutes * 60_000;
            } else {
              await memory.sweep({ allScopes: true });
              for (const [id, entry] of known) if (entry.expiry !== undefined && entry.expiry <= clock.now) known.delete(id);
            }
            await check();
          }
        } finally {
          await memory.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});
