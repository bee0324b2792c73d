import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, expect, test } from "vitest";
import { ConfigError, InvalidInputError, MissingScopeError } from "../src/errors.js";
import { inMemoryHistory } from "../src/history/in-memory-history.js";
import type { Message } from "../src/history/outbox.js";
import { type AddManyItem, Memory } from "../src/memory.js";
import { inMemoryStore } from "../src/stores/in-memory-store.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";

const directory = mkdtempSync(join(tmpdir(), "engram-add-many-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** A Memory whose ids and clock are counters: two of them given the same calls make the same records. */
function countedMemory(options: { dataDir?: string } = {}) {
  let ids = 0;
  let clock = Date.UTC(2025, 0, 1);
  const embedder = deterministicEmbedder({ dimension: 16 });
  const memory = new Memory({
    embedder,
    ...(options.dataDir ? { dataDir: options.dataDir } : { vectorStore: inMemoryStore(), historyStore: inMemoryHistory() }),
    writeBehind: { enabled: false },
    onError: () => {},
    _internal: { id: () => `id-${String(ids++).padStart(5, "0")}`, now: () => clock++ },
  });
  return { memory, embedder };
}

const scopes = [{ userId: "u1" }, { userId: "u2" }, { userId: "u1", agentId: "a" }];

async function everything(memory: Memory) {
  const state = [];
  for (const scope of scopes) {
    const { results } = await memory.getAll({ ...scope, limit: 1000 });
    state.push(results);
    for (const item of results) state.push(await memory.history(item.id, scope));
  }
  return state;
}

test("property: addMany stores, answers and records exactly what the same adds one after another do (bursts, filler, repeats, sessions)", async () => {
  const message = fc.record({
    role: fc.constantFrom("user", "assistant") as fc.Arbitrary<"user" | "assistant">,
    content: fc.constantFrom(
      "ok",
      "haha",
      "I moved to Porto.",
      "My dog is called Rex.",
      "We met at the lake.",
      "Sure, noted.",
      "The lake was cold.",
    ),
    name: fc.option(fc.constantFrom("Ann", "Bo"), { nil: undefined }),
  });
  const item = fc.record({
    scope: fc.constantFrom(...scopes),
    messages: fc.array(message, { minLength: 1, maxLength: 3 }),
    minutes: fc.integer({ min: 0, max: 45 }),
    tagged: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(item, { minLength: 1, maxLength: 12 }), async (drawn) => {
      let minute = 0;
      const items: AddManyItem[] = drawn.map(({ scope, messages, minutes, tagged }) => {
        minute += minutes;
        return {
          ...scope,
          messages: messages.map(({ name, ...rest }) => ({ ...rest, ...(name === undefined ? {} : { name }) })) as Message[],
          timestamp: new Date(Date.UTC(2025, 0, 1, 0, minute)).toISOString(),
          ...(tagged ? { metadata: { source: "import" } } : {}),
        };
      });
      const one = countedMemory();
      const sequential = [];
      for (const { messages, ...options } of items) sequential.push(await one.memory.add(messages, options));
      const many = countedMemory();
      const { results } = await many.memory.addMany(items);
      expect(results.map((result) => result.results)).toEqual(sequential.map((result) => result.results));
      expect(await everything(many.memory)).toEqual(await everything(one.memory));
      await Promise.all([one.memory.close(), many.memory.close()]);
    }),
    { numRuns: 60 },
  );
});

test("addMany embeds each batch of 100 adds in one call and writes it in one transaction", async () => {
  const { memory, embedder } = countedMemory({ dataDir: join(directory, "batches") });
  // An hour apart: no add continues the one before it (a burst ends after 30 minutes).
  const items = Array.from({ length: 250 }, (_, i) => ({
    userId: `user-${i % 7}`,
    messages: `Fact number ${i} about walruses.`,
    timestamp: new Date(Date.UTC(2025, 0, 1, i)).toISOString(),
  }));
  const { results } = await memory.addMany(items);
  expect(results).toHaveLength(250);
  expect(results.every((result) => result.results[0]?.event === "ADD")).toBe(true);
  expect(embedder.calls.map((texts) => texts.length)).toEqual([100, 100, 50]);
  // The embedding call is counted once per batch, on its first add.
  expect(results.reduce((sum, result) => sum + result.usage.embeddingCalls, 0)).toBe(3);
  expect((await memory.getAll({ userId: "user-3", limit: 100 })).results.map((item) => item.memory)).toEqual(
    items.filter((_, i) => i % 7 === 3).map((item) => item.messages),
  );
  // Again: every text is stored already.
  const again = await memory.addMany(items);
  expect(again.results.every((result) => result.results[0]?.event === "NONE")).toBe(true);
  await memory.close();

  // Through a store that counts its writes: one per batch.
  const store = inMemoryStore();
  let writes = 0;
  const write = store.write.bind(store);
  store.write = (batch) => {
    writes++;
    return write(batch);
  };
  const counted = new Memory({ embedder: deterministicEmbedder({ dimension: 16 }), vectorStore: store, writeBehind: { enabled: false } });
  await counted.addMany(items);
  expect(writes).toBe(3);
  await counted.close();
});

test("addMany with a bad item refuses the whole call, naming the item's index, and stores nothing", async () => {
  const { memory } = countedMemory();
  const good = { userId: "alice", messages: "I like tea." };
  const noScope = await memory.addMany([good, { messages: "no scope here" } as AddManyItem]).catch((error: unknown) => error);
  expect(InvalidInputError.isInstance(noScope)).toBe(true);
  expect((noScope as InvalidInputError).field).toBe("items[1]");
  expect(MissingScopeError.isInstance((noScope as Error).cause)).toBe(true);
  expect((noScope as Error).message).toMatch(/^addMany\(\): items\[1\]: .+ Nothing was stored\.$/);

  const empty = await memory.addMany([good, good, { userId: "bob", messages: [] }]).catch((error: unknown) => error);
  expect((empty as InvalidInputError).field).toBe("items[2]");
  const infer = await memory.addMany([{ ...good, infer: true }]).catch((error: unknown) => error);
  expect((infer as InvalidInputError).field).toBe("items[0]");
  expect(ConfigError.isInstance((infer as Error).cause)).toBe(true);
  const inherited = Object.create({ messages: "from the prototype" }) as AddManyItem;
  Object.assign(inherited, { userId: "alice" });
  expect(((await memory.addMany([inherited]).catch((error: unknown) => error)) as InvalidInputError).field).toBe("items[0]");
  await expect(memory.addMany("not an array" as unknown as AddManyItem[])).rejects.toThrow(/items must be an array/);

  expect((await memory.getAll({ userId: "alice" })).results).toEqual([]);
  expect((await memory.getAll({ userId: "bob" })).results).toEqual([]);
  await memory.close();
});

test("a named speaker's burst grown over many adds of one addMany is embedded once, with its final text (it was re-embedded at every add)", async () => {
  const store = inMemoryStore();
  const embedder = deterministicEmbedder({ dimension: 16 });
  const memory = new Memory({ embedder, vectorStore: store, historyStore: inMemoryHistory(), writeBehind: { enabled: false } });
  const said = ["I moved to Porto.", "The flat is small.", "But it has a view.", "Of the river.", "We love it."];
  // Another speaker's turn, then Ann's five turns a minute apart: one memory for Ann, one for Bo.
  const items: AddManyItem[] = [
    { userId: "u1", messages: [{ role: "user", name: "Bo", content: "Where do you live now?" }], timestamp: "2025-01-01T10:00:00.000Z" },
    ...said.map((content, i) => ({
      userId: "u1",
      messages: [{ role: "user" as const, name: "Ann", content }],
      timestamp: new Date(Date.UTC(2025, 0, 1, 10, i + 1)).toISOString(),
    })),
  ];
  const { results } = await memory.addMany(items);
  expect(results.map((result) => result.results[0]?.event)).toEqual(["ADD", "ADD", "UPDATE", "UPDATE", "UPDATE", "UPDATE"]);
  const final = `Ann: ${said.join(" ")}`;
  expect(embedder.calls).toEqual([["Bo: Where do you live now?", final]]);
  const listed = await store.list({ filter: { scope: { userId: "u1" } }, limit: 10 });
  const records = await store.get(
    listed.records.map((record) => record.id),
    { scope: { userId: "u1" } },
  );
  expect(records).toHaveLength(2);
  const ann = records.find((record) => record.text === final);
  const [expected] = await embedder.embed([final]);
  expect(ann?.vector).toEqual(expected);
  expect(records.every((record) => record.vector?.some((value) => value !== 0))).toBe(true);
  await memory.close();
});

/** A scope's memories and their histories, without ids or the clock's times (outbox entries use both). */
async function contents(memory: Memory, scope: { userId: string }) {
  const { results } = await memory.getAll({ ...scope, limit: 1000 });
  const state = [];
  for (const { memory: text, metadata, sources, createdAt, updatedAt, id } of results) {
    const history = (await memory.history(id, scope)).map(({ event, previousValue, newValue }) => ({ event, previousValue, newValue }));
    state.push({ text, metadata, sources, createdAt, updatedAt, history });
  }
  // Adds with one timestamp make memories of one createdAt, listed in id order: sorted by text instead.
  return state.sort((a, b) => (a.createdAt === b.createdAt ? (a.text < b.text ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1));
}

test("property: enqueueMany writes, through the durable outbox, exactly what addMany writes", async () => {
  const message = fc.record({
    content: fc.constantFrom("ok", "I moved to Porto.", "My dog is called Rex.", "We met at the lake.", "The lake was cold."),
    name: fc.option(fc.constantFrom("Ann", "Bo"), { nil: undefined }),
  });
  const item = fc.record({
    messages: fc.array(message, { minLength: 1, maxLength: 3 }),
    minutes: fc.integer({ min: 0, max: 45 }),
    tagged: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(item, { minLength: 1, maxLength: 12 }), async (drawn) => {
      let minute = 0;
      const items = drawn.map(({ messages, minutes, tagged }) => {
        minute += minutes;
        return {
          messages: messages.map(({ name, content }) => ({ role: "user" as const, content, ...(name === undefined ? {} : { name }) })),
          timestamp: new Date(Date.UTC(2025, 0, 1, 0, minute)).toISOString(),
          ...(tagged ? { metadata: { source: "import" } } : {}),
        };
      });
      const direct = countedMemory();
      await direct.memory.addMany(items.map((one) => ({ ...one, userId: "u1" })));
      const queued = new Memory({
        embedder: deterministicEmbedder({ dimension: 16 }),
        vectorStore: inMemoryStore(),
        historyStore: inMemoryHistory(),
        onError: () => {},
      });
      expect((await queued.enqueueMany(items, { userId: "u1", idempotencyKey: "k" })).queued).toBe(true);
      expect(await queued.flush({ timeoutMs: 10_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
      expect(await contents(queued, { userId: "u1" })).toEqual(await contents(direct.memory, { userId: "u1" }));
      // The same key again is the same entry: nothing is written twice.
      expect((await queued.enqueueMany(items, { userId: "u1", idempotencyKey: "k" })).queued).toBe(false);
      await Promise.all([direct.memory.close(), queued.close()]);
    }),
    { numRuns: 25 },
  );
});

test("enqueueMany refuses a bad item by its index and queues nothing; more than 100 items are refused", async () => {
  const memory = new Memory({
    embedder: deterministicEmbedder({ dimension: 16 }),
    vectorStore: inMemoryStore(),
    historyStore: inMemoryHistory(),
  });
  const good = { messages: "I moved to Porto." };
  await expect(memory.enqueueMany([good, { messages: [] }], { userId: "u1" })).rejects.toThrow(/items\[1\].*Nothing was queued/);
  await expect(memory.enqueueMany([good, { messages: "x", timestamp: "not a date" }], { userId: "u1" })).rejects.toThrow(InvalidInputError);
  await expect(memory.enqueueMany([{ ...good, infer: true } as never], { userId: "u1" })).rejects.toThrow(/items\[0\].*infer/);
  await expect(
    memory.enqueueMany(
      Array.from({ length: 101 }, () => good),
      { userId: "u1" },
    ),
  ).rejects.toThrow(/1 to 100/);
  await expect(memory.enqueueMany([good], {} as never)).rejects.toThrow(MissingScopeError);
  expect(await memory.pending({ userId: "u1" })).toEqual([]);
  await memory.close();
});
