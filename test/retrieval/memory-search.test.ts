import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { Memory, type VectorStore } from "../../src/index.js";
import { loadNodeSqlite } from "../../src/internal/node-sqlite.js";
import { sqliteStore } from "../../src/stores/sqlite-store.js";
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

  test("a speaker's name spelt otherwise is left out too, and in one embedder call once the scope was read", async () => {
    const embedder = deterministicEmbedder();
    const memory = new Memory({ embedder, vectorStore: inMemoryStore(), historyStore: inMemoryHistory() });
    try {
      await memory.add(chat, alice);
      const query = "What is the name of Alyce's beagle puppy?";
      await memory.search("Alice", alice);
      const before = embedder.calls.length;
      const { results } = await memory.search(query, { ...alice, threshold: 0, explain: true });
      expect(embedder.calls.slice(before)).toEqual([[query, "What is the name of beagle puppy?"]]);
      // "Alyce" names Alice: her memories are the named speaker's.
      const speakers = results.map((r) => [r.memory.split(":")[0], r.explain?.speaker]);
      expect(speakers).toContainEqual(["Alice", "named"]);
      expect(speakers).toContainEqual(["Bob", "other named"]);
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

  test("a search reads the scope's stamps only when the scope's version moved: writes in it by this process or a raw connection are seen, others' are not", async () => {
    const path = join(directory, "token.db");
    const store = sqliteStore({ path });
    let stampReads = 0;
    const counted = new Proxy(store, {
      get(target, property, receiver) {
        if (property === "stamps")
          return (...args: Parameters<typeof store.stamps>) => {
            stampReads++;
            return target.stamps(...args);
          };
        const value = Reflect.get(target, property, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    }) as VectorStore;
    const memory = new Memory({ vectorStore: counted, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
    try {
      await memory.add("Alice keeps bees on the roof", { ...alice, infer: false });
      const version = await store.scopeVersion({ scope: alice });
      expect((await memory.search("bees", { ...alice, threshold: 0 })).results).toHaveLength(1);
      const afterFirst = stampReads;
      expect(afterFirst).toBe(1);
      // Nothing written: the copy is served without reading the stamps again.
      for (let i = 0; i < 3; i++) await memory.search("bees", { ...alice, threshold: 0 });
      expect(stampReads).toBe(afterFirst);
      expect(await store.scopeVersion({ scope: alice })).toBe(version);
      // Written in another user's scope: still nothing to read again.
      await memory.add("Bob keeps bees too", { userId: "bob", infer: false });
      await memory.search("bees", { ...alice, threshold: 0 });
      expect(stampReads).toBe(afterFirst);
      // Written in the scope by this process: read again.
      await memory.add("Alice sells honey at the market", { ...alice, infer: false });
      expect((await memory.search("honey", { ...alice, threshold: 0 })).results.map((r) => r.memory)).toContain(
        "Alice sells honey at the market",
      );
      expect(stampReads).toBe(afterFirst + 1);
      // Written by another connection (as another process would): the version moves, the change is seen.
      const raw = new (loadNodeSqlite().DatabaseSync)(path);
      try {
        const before = await store.scopeVersion({ scope: alice });
        raw
          .prepare("UPDATE memories SET text = ?, hash = ?, updated_at = ? WHERE text = ?")
          .run("Alice gave her bees away", "changed", new Date(Date.UTC(2030, 0, 1)).toISOString(), "Alice keeps bees on the roof");
        expect(await store.scopeVersion({ scope: alice })).not.toBe(before);
      } finally {
        raw.close();
      }
      const found = (await memory.search("bees", { ...alice, threshold: 0 })).results.map((r) => r.memory);
      expect(found).toContain("Alice gave her bees away");
      expect(found).not.toContain("Alice keeps bees on the roof");
    } finally {
      await memory.close();
    }
  });

  test("after adds, continued bursts, updates and deletes, the copy a search keeps up to date ranks exactly as a copy built from nothing", async () => {
    const dataDir = join(directory, "incremental");
    const live = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
    const questions = ["Where does Alice keep bees?", "What did Bob plant in March?", "honey", "Who walks the dog in the rain?"];
    const topics = ["bees on the roof", "tomatoes in March", "honey at the market", "the dog in the rain", "a guitar lesson"];
    try {
      const start = Date.UTC(2025, 0, 1);
      for (let step = 0; step < 24; step++) {
        const at = new Date(start + step * (step % 5 === 0 ? 3_600_000 : 60_000));
        const speaker = step % 3 === 0 ? "Bob" : "Alice";
        await live.add([{ role: "user", name: speaker, content: `${speaker} talks about ${topics[step % topics.length]} (${step})` }], {
          ...alice,
          infer: false,
          timestamp: at,
        });
        if (step % 7 === 6) {
          const { results } = await live.getAll({ ...alice, limit: 100 });
          const [oldest, second] = results;
          if (oldest) await live.update(oldest.id, `${oldest.memory} and more`, alice);
          if (second) await live.delete(second.id, alice);
        }
        // Searches between the writes keep the copy current step by step.
        await live.search(questions[step % questions.length] as string, { ...alice, threshold: 0 });
      }
      const cold = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
      try {
        for (const question of questions) {
          const fromLive = (await live.search(question, { ...alice, threshold: 0, explain: true })).results;
          const fromCold = (await cold.search(question, { ...alice, threshold: 0, explain: true })).results;
          expect(fromLive.map((r) => [r.id, r.memory, r.score, r.explain])).toEqual(
            fromCold.map((r) => [r.id, r.memory, r.score, r.explain]),
          );
        }
      } finally {
        await cold.close();
      }
    } finally {
      await live.close();
    }
  });
});
