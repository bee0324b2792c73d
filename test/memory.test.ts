import { describe, expect, test } from "vitest";
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
