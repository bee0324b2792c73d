import { describe, expect, test } from "vitest";
import { InvalidInputError, InvalidScopeError, MemoryNotFoundError } from "../src/index.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";
import { spiedMemory } from "./support/spies.js";

describe("Memory.add without an extraction model", () => {
  test("stores each non-system message verbatim (ADD); a text already stored in exactly this scope is NONE", async () => {
    const { memory } = spiedMemory();
    const first = await memory.add(
      [
        { role: "system", content: "never stored" },
        { role: "user", content: "I like  tea" },
        { role: "assistant", content: "Tea is a fine choice in the morning." },
      ],
      { userId: "alice" },
    );
    expect(first.results.map((r) => [r.event, r.memory])).toEqual([
      ["ADD", "I like tea"],
      ["ADD", "Tea is a fine choice in the morning."],
    ]);
    const again = await memory.add("I like tea", { userId: "alice" });
    expect(again.results).toEqual([{ id: first.results[0]?.id, memory: "I like tea", event: "NONE" }]);
    // Another scope, even a narrower one, is another memory.
    expect((await memory.add("I like tea", { userId: "alice", agentId: "coder" })).results[0]?.event).toBe("ADD");
    expect((await memory.add("I like tea", { userId: "bob" })).results[0]?.event).toBe("ADD");
  });

  test("regression: a text repeated within one add gave two NONE results when stored already, one ADD when new", async () => {
    const { memory } = spiedMemory();
    const repeated = [
      { role: "user" as const, content: "the same words" },
      { role: "assistant" as const, content: "the same words" },
    ];
    const added = await memory.add(repeated, { userId: "alice" });
    expect(added.results.map((r) => r.event)).toEqual(["ADD"]);
    const again = await memory.add(repeated, { userId: "alice" });
    expect(again.results).toEqual([{ id: added.results[0]?.id, memory: "the same words", event: "NONE" }]);
    expect((await memory.getAll({ userId: "alice" })).results).toHaveLength(1);
  });
});

describe("Memory.update: text, metadata or both", () => {
  test("update could not change metadata: { metadata } replaces it without re-embedding, the text and its history stay", async () => {
    const { memory, calls } = spiedMemory();
    const [added] = (await memory.add("I like tea", { userId: "alice", metadata: { topic: "drinks", stale: true } })).results;
    const id = added?.id as string;
    calls.length = 0;
    const updated = await memory.update(id, { metadata: { topic: "food" } }, { userId: "alice" });
    expect(updated.memory).toBe("I like tea");
    expect(updated.metadata).toEqual({ topic: "food" });
    expect(calls.filter((call) => call.startsWith("embedder."))).toEqual([]);
    expect((await memory.getAll({ userId: "alice", filters: { topic: "food" } })).results.map((m) => m.id)).toEqual([id]);
    expect((await memory.getAll({ userId: "alice", filters: { topic: "drinks" } })).results).toEqual([]);

    const both = await memory.update(id, { text: "I like green tea", metadata: {} }, { userId: "alice" });
    expect([both.memory, both.metadata]).toEqual(["I like green tea", {}]);
    expect((await memory.search("green tea", { userId: "alice" })).results[0]?.id).toBe(id);
    const history = await memory.history(id, { userId: "alice" });
    expect(history.map(({ event, previousValue, newValue }) => [event, previousValue, newValue])).toEqual([
      ["ADD", null, "I like tea"],
      ["UPDATE", "I like tea", "I like tea"],
      ["UPDATE", "I like tea", "I like green tea"],
    ]);
    // The string form is the text alone; it keeps the metadata.
    expect((await memory.update(id, "I like black tea", { userId: "alice" })).metadata).toEqual({});
  });

  test("an update changing nothing writes nothing; bad changes are typed errors and change nothing", async () => {
    const { memory } = spiedMemory();
    const [added] = (await memory.add("I like tea", { userId: "alice", metadata: { topic: "drinks" } })).results;
    const id = added?.id as string;
    const same = await memory.update(id, { text: "I like tea", metadata: { topic: "drinks" } }, { userId: "alice" });
    expect(same.updatedAt).toBe((await memory.get(id, { userId: "alice" }))?.updatedAt);
    await expect(memory.update(id, {}, { userId: "alice" })).rejects.toThrow(InvalidInputError);
    await expect(memory.update(id, { metadata: { userId: "bob" } }, { userId: "alice" })).rejects.toThrow(InvalidInputError);
    await expect(memory.update(id, JSON.parse('{"txt":"typo"}'), { userId: "alice" })).rejects.toThrow(InvalidInputError);
    await expect(memory.update(id, { metadata: { topic: "x" } }, JSON.parse('{"user_id":"alice"}'))).rejects.toThrow(InvalidScopeError);
    await expect(memory.update(id, { metadata: { topic: "x" } }, { userId: "bob" })).rejects.toThrow(MemoryNotFoundError);
    expect((await memory.history(id, { userId: "alice" })).map((entry) => entry.event)).toEqual(["ADD"]);
    expect((await memory.get(id, { userId: "alice" }))?.metadata).toEqual({ topic: "drinks" });
  });
});

describe("Memory.delete says what it deleted", () => {
  test("delete returned nothing: it returns the id and text it deleted, and whether the text was purged", async () => {
    const { memory } = spiedMemory();
    const [tea, coffee] = (
      await memory.add(
        ["I like tea", "I like coffee"].map((content) => ({ role: "user" as const, content })),
        { userId: "alice" },
      )
    ).results;
    expect(await memory.delete(tea?.id as string, { userId: "alice" })).toEqual({ id: tea?.id, memory: "I like tea", purged: false });
    // Purging a memory deleted earlier erases a text that is no longer there to report.
    expect(await memory.delete(tea?.id as string, { userId: "alice", purge: true })).toEqual({ id: tea?.id, memory: null, purged: true });
    expect(await memory.delete(coffee?.id as string, { userId: "alice", purge: true })).toEqual({
      id: coffee?.id,
      memory: "I like coffee",
      purged: true,
    });
    await expect(memory.delete(coffee?.id as string, { userId: "alice" })).rejects.toThrow(MemoryNotFoundError);
  });
});

describe("Memory.deleteAll with purge", () => {
  test("regression: a purged deleteAll left no DELETE in the history of the memories it deleted", async () => {
    const { memory } = spiedMemory();
    const { results } = await memory.add(
      [
        { role: "user", content: "one" },
        { role: "assistant", content: "two" },
      ],
      { userId: "alice" },
    );
    expect(await memory.deleteAll({ userId: "alice", purge: true })).toEqual({ deleted: 2 });
    for (const { id } of results) {
      const history = await memory.history(id, { userId: "alice" });
      expect(history.map(({ event, previousValue, newValue }) => [event, previousValue, newValue])).toEqual([
        ["ADD", null, null],
        ["DELETE", null, null],
      ]);
    }
  });
});

describe("Memory.search", () => {
  test("reads the scope's memories while the query is being embedded, then ranks them without another store query", async () => {
    // An embedder that, once gated, answers only when released: what the search does meanwhile is recorded.
    const inner = deterministicEmbedder({ dimension: 64 });
    const events: string[] = [];
    let gate: Promise<void> | undefined;
    const { memory, calls } = spiedMemory({
      embedder: {
        dimension: inner.dimension,
        async embed(texts) {
          events.push("embed.start");
          await gate;
          events.push("embed.done");
          return inner.embed(texts);
        },
      },
    });
    await memory.add("I prefer Postgres for everything", { userId: "alice", infer: false });
    let release: () => void = () => {};
    gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    events.length = 0;
    calls.length = 0;
    const search = memory.search("postgres", { userId: "alice" });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(events).toEqual(["embed.start"]);
    expect(calls).toEqual(["store.stamps", "store.get"]);
    release();
    await search;
    const { results } = await memory.search("postgres", { userId: "alice", threshold: 0 });
    // The second search finds the scope unchanged (its stamps): nothing is read again.
    expect(calls).toEqual(["store.stamps", "store.get", "store.stamps"]);
    expect(results[0]?.memory).toBe("I prefer Postgres for everything");
    await memory.close();
  });
});
