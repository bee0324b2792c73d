import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { Memory } from "../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../../src/testing/index.js";
import { memoriesClosedAfterEach } from "../support/memories.js";

const newMemory = memoriesClosedAfterEach();
const alice = { userId: "alice" };
const chat = [
  { role: "user" as const, name: "Alice", content: "I adopted a beagle puppy called Biscuit last week." },
  { role: "assistant" as const, content: "Sure, noted." },
  { role: "user" as const, name: "Bob", content: "My sister Clara lives in Lisbon and teaches piano." },
  { role: "user" as const, name: "Alice", content: "We are planning a trip to Japan in April." },
];

describe("Memory.search ranking", () => {
  test("an off-topic query injects nothing by default: no filler, no unrelated memories (default cut-off)", async () => {
    const memory = newMemory();
    await memory.add(chat, alice);
    expect((await memory.search("What is 2 + 2?", alice)).results).toEqual([]);
    // threshold 0 turns the cut-off off: the scope's memories come back, and "Sure, noted." was never stored.
    const { results } = await memory.search("What is 2 + 2?", { ...alice, threshold: 0 });
    expect(results.length).toBeGreaterThan(0);
    expect(results.map((r) => r.memory).join(" ")).not.toMatch(/noted/);
  });

  test("explain: true returns each result's score parts, the probability being its score", async () => {
    const memory = newMemory();
    await memory.add(chat, alice);
    const { results } = await memory.search("What is the name of Alice's beagle puppy?", { ...alice, threshold: 0, explain: true });
    const [best] = results;
    expect(best?.memory).toMatch(/Biscuit/);
    expect(best?.explain).toMatchObject({ keyword: 1, speaker: "named" });
    expect(best?.explain?.probability).toBe(best?.score);
    expect(Object.keys(best?.explain ?? {}).sort()).toEqual(
      ["date", "entity", "keyword", "logit", "neighbours", "probability", "session", "speaker", "vector", "window"].sort(),
    );
    expect((await memory.search("beagle", alice)).results.every((r) => r.explain === undefined)).toBe(true);
  });

  test("threshold keeps results whose score reaches it; maxTokens keeps the results within the budget", async () => {
    const memory = newMemory();
    await memory.add(chat, alice);
    const all = (await memory.search("Alice", { ...alice, threshold: 0 })).results;
    const cut = all[1]?.score as number;
    expect((await memory.search("Alice", { ...alice, threshold: cut })).results.map((r) => r.id)).toEqual(all.slice(0, 2).map((r) => r.id));
    expect((await memory.search("Alice", { ...alice, threshold: 0, maxTokens: 30 })).results).toHaveLength(1);
  });

  test("a query naming a speaker is also compared without the name: embedded after the first read of the scope, with the query after it", async () => {
    const embedder = deterministicEmbedder();
    const memory = new Memory({ embedder, vectorStore: inMemoryStore(), historyStore: inMemoryHistory() });
    try {
      await memory.add(chat, alice);
      const before = embedder.calls.length;
      const query = "What is the name of Alice's beagle puppy?";
      const first = await memory.search(query, { ...alice, threshold: 0 });
      expect(first.results[0]?.memory).toMatch(/Biscuit/);
      // The scope's speakers are known once its copy is read: the query without the name follows.
      expect(embedder.calls.slice(before)).toEqual([[query], ["What is the name of beagle puppy?"]]);
      const second = await memory.search(query, { ...alice, threshold: 0 });
      expect(second.results.map((r) => r.id)).toEqual(first.results.map((r) => r.id));
      // Later searches of the scope embed both in one call.
      expect(embedder.calls.slice(before + 2)).toEqual([[query, "What is the name of beagle puppy?"]]);
      // A query naming no speaker is embedded alone.
      await memory.search("beagle puppy", alice);
      expect(embedder.calls.at(-1)).toEqual(["beagle puppy"]);
    } finally {
      await memory.close();
    }
  });

  test("metadata filters restrict the results, not the context they are ranked in", async () => {
    const memory = newMemory();
    await memory.add([chat[0] as (typeof chat)[number]], { ...alice, metadata: { topic: "pets" } });
    await memory.add([chat[2] as (typeof chat)[number]], { ...alice, metadata: { topic: "family" } });
    expect((await memory.getAll(alice)).results).toHaveLength(2);
    const { results } = await memory.search("beagle puppy", { ...alice, threshold: 0, filters: { topic: "family" } });
    expect(results.map((r) => r.metadata)).toEqual([{ topic: "family" }]);
  });
});

describe("Memory.search copies of a scope", () => {
  const directory = mkdtempSync(join(tmpdir(), "engram-search-cache-"));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  test("regression: a memory deleted or changed by another instance of the same data dir is never served from the copy", async () => {
    const dataDir = join(directory, "shared");
    const one = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
    const other = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
    try {
      const [added] = (await one.add("Alice keeps bees on the roof", { ...alice, infer: false })).results;
      await one.add("Bob keeps bees too", { userId: "bob", infer: false });
      expect((await one.search("bees", { ...alice, threshold: 0 })).results.map((r) => r.memory)).toEqual(["Alice keeps bees on the roof"]);
      await other.update(added?.id as string, "Alice sold her bees", alice);
      expect((await one.search("bees", { ...alice, threshold: 0 })).results.map((r) => r.memory)).toEqual(["Alice sold her bees"]);
      await other.delete(added?.id as string, { ...alice, purge: true });
      expect((await one.search("bees", { ...alice, threshold: 0 })).results).toEqual([]);
    } finally {
      await one.close();
      await other.close();
    }
  });
});
