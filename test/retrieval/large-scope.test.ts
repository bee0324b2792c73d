import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, expect, test } from "vitest";
import { Memory } from "../../src/memory.js";
import { LARGE_SCOPE } from "../../src/retrieval/large-scope.js";
import { sqliteStore } from "../../src/stores/sqlite-store.js";
import type { StoreFilter, VectorStore } from "../../src/stores/vector-store.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";

// Memory.search ranks a scope past LARGE_SCOPE memories from the store's vector and keyword
// candidates. The store here reports every scope as that large, so small scopes take that path.

const directory = mkdtempSync(join(tmpdir(), "engram-large-scope-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let files = 0;

function largeScopes(counted: StoreFilter[]): VectorStore {
  const store = sqliteStore({ path: join(directory, `store-${files++}.db`) });
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === "countWithin") {
        return async (filter: StoreFilter) => {
          counted.push(filter);
          return LARGE_SCOPE + 1;
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const newMemory = (store: VectorStore) =>
  new Memory({ vectorStore: store, embedder: deterministicEmbedder(), writeBehind: { enabled: false }, onError: () => {} });

test("a large scope is ranked from the store's candidates: the memory that answers comes first, and other scopes' closer memories never appear", async () => {
  const counted: StoreFilter[] = [];
  const memory = newMemory(largeScopes(counted));
  const alice = { userId: "alice" };
  for (const text of [
    "the walrus colony lives on the north shore",
    "my dentist appointment is on tuesday",
    "the kettle in the office is blue",
    "we deploy the billing service every friday",
  ])
    await memory.add(text, alice);
  // Bob holds the query's own words: closer than anything of alice's.
  await memory.add("where does the walrus colony live", { userId: "bob" });
  const { results } = await memory.search("where does the walrus colony live", { ...alice, threshold: 0 });
  expect(counted.map((filter) => filter.scope)).toEqual([alice]);
  expect(results[0]?.memory).toBe("the walrus colony lives on the north shore");
  expect(results.every((result) => result.userId === "alice")).toBe(true);
  expect(results).toHaveLength(4);
  // A metadata filter reaches the store's candidates.
  await memory.add("the walrus keeper is named Ola", { ...alice, metadata: { topic: "zoo" } });
  const zoo = await memory.search("walrus", { ...alice, threshold: 0, filters: { topic: "zoo" } });
  expect(zoo.results.map((result) => result.memory)).toEqual(["the walrus keeper is named Ola"]);
  await memory.close();
});

test("property: through the large-scope path, a search never returns a memory outside its scope", async () => {
  const words = ["walrus", "kettle", "dentist", "billing", "friday", "shore", "blue", "colony"];
  const scopes: Record<string, string>[] = [
    { userId: "u1" },
    { userId: "u2" },
    { userId: "u1", agentId: "a1" },
    { agentId: "a1" },
    { userId: "u1", runId: "r1" },
  ];
  const inside = (result: { userId?: string; agentId?: string; runId?: string }, scope: Record<string, string>) =>
    Object.entries(scope).every(([key, value]) => (result as Record<string, string | undefined>)[key] === value);
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.tuple(fc.integer({ min: 0, max: scopes.length - 1 }), fc.array(fc.constantFrom(...words), { minLength: 1, maxLength: 5 })),
        {
          minLength: 1,
          maxLength: 25,
        },
      ),
      fc.array(fc.tuple(fc.integer({ min: 0, max: scopes.length - 1 }), fc.constantFrom(...words)), { minLength: 1, maxLength: 5 }),
      async (adds, searches) => {
        const memory = newMemory(largeScopes([]));
        try {
          for (const [scope, text] of adds) await memory.add(text.join(" "), scopes[scope] as Record<string, string>);
          for (const [scope, word] of searches) {
            const { results } = await memory.search(`which ${word}?`, { ...(scopes[scope] as Record<string, string>), threshold: 0 });
            for (const result of results) expect(inside(result, scopes[scope] as Record<string, string>)).toBe(true);
          }
        } finally {
          await memory.close();
        }
        runs++;
      },
    ),
    { numRuns: 15 },
  );
  expect(runs).toBe(15);
});

test("a large scope ranks as the whole scope does: the same results, scores and score parts (neighbours, window, session, speaker) as the in-process copy", async () => {
  const path = join(directory, `store-${files++}.db`);
  const plain = sqliteStore({ path });
  const whole = newMemory(plain);
  const scope = { userId: "alice" };
  const said = [
    ["Ana", "I finally booked the walrus tour for the north shore"],
    ["Ben", "nice, which day do you leave?"],
    ["Ana", "the ferry leaves on Friday morning"],
    ["Ben", "bring the blue kettle for tea on the boat"],
    ["Ana", "my dentist moved the appointment to Tuesday"],
    ["Ben", "the billing service deploy failed again"],
    ["Ana", "Ben, did the walrus keeper answer your email?"],
    ["Ben", "yes, the keeper said the colony is on the north shore"],
  ];
  for (const [k, [name, content]] of said.entries()) {
    // Two sessions: the first five messages one day, the rest two days later.
    const at = Date.UTC(2025, 0, k < 5 ? 1 : 3, 10, k);
    await whole.add([{ role: "user", name: name as string, content: content as string }], { ...scope, timestamp: new Date(at) });
  }
  await whole.add("the walrus colony is on the south shore", { userId: "bob" });
  // The same file searched through the large-scope path.
  const forced = newMemory(
    new Proxy(plain, {
      get(target, property, receiver) {
        if (property === "countWithin") return async () => LARGE_SCOPE + 1;
        const value = Reflect.get(target, property, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    }),
  );
  for (const query of [
    "where does the walrus colony live?",
    "what did Ben say about the kettle?",
    "when does the ferry leave",
    "dentist",
  ]) {
    const expected = await whole.search(query, { ...scope, threshold: 0, explain: true });
    const got = await forced.search(query, { ...scope, threshold: 0, explain: true });
    expect(got.results.map((result) => result.id)).toEqual(expected.results.map((result) => result.id));
    for (const [k, result] of got.results.entries()) {
      const reference = expected.results[k];
      expect(result.score).toBeCloseTo(reference?.score as number, 10);
      for (const part of ["vector", "keyword", "window", "neighbours", "session", "entity", "date"] as const)
        expect(result.explain?.[part]).toBeCloseTo(reference?.explain?.[part] as number, 10);
      expect(result.explain?.speaker).toBe(reference?.explain?.speaker);
    }
    expect(got.results.every((result) => result.userId === "alice")).toBe(true);
  }
  // The neighbour and window signals are there (they were 0 for every memory of a large scope before).
  const walrus = await forced.search("where does the walrus colony live?", { ...scope, threshold: 0, explain: true });
  expect(walrus.results.some((result) => (result.explain?.neighbours ?? 0) > 0)).toBe(true);
  // A memory added since: the next search ranks it as the copy does.
  await whole.add([{ role: "user", name: "Ana", content: "the walrus colony moved to the east shore" }], {
    ...scope,
    timestamp: new Date(Date.UTC(2025, 0, 3, 10, 30)),
  });
  const after = await forced.search("where does the walrus colony live?", { ...scope, threshold: 0 });
  expect(after.results.map((result) => result.id)).toEqual(
    (await whole.search("where does the walrus colony live?", { ...scope, threshold: 0 })).results.map((result) => result.id),
  );
  expect(after.results.map((result) => result.memory)).toContain("Ana: the walrus colony moved to the east shore");
  await forced.close();
  await whole.close();
});

test("a large scope is counted again only after a write inside it: the count is kept while the scope's version stays", async () => {
  const counted: StoreFilter[] = [];
  const memory = newMemory(largeScopes(counted));
  const alice = { userId: "alice" };
  await memory.add("the walrus colony lives on the north shore", alice);
  await memory.search("walrus", { ...alice, threshold: 0 });
  await memory.search("shore", { ...alice, threshold: 0 });
  expect(counted).toHaveLength(1);
  // Another scope's write leaves alice's count as it was.
  await memory.add("the kettle is blue", { userId: "bob" });
  await memory.search("kettle", { ...alice, threshold: 0 });
  expect(counted).toHaveLength(1);
  await memory.add("the kettle in the office is blue", alice);
  const { results } = await memory.search("kettle", { ...alice, threshold: 0 });
  expect(counted).toHaveLength(2);
  expect(results.map((result) => result.memory)).toContain("the kettle in the office is blue");
  await memory.close();
});

test("a large scope ranked from its quantised vectors in process: the top 10 of the in-process copy, every result read whole from the store, a fraction of the scope read", async () => {
  const path = join(directory, `store-${files++}.db`);
  const plain = sqliteStore({ path });
  const whole = newMemory(plain);
  const scope = { userId: "alice" };
  let seed = 11;
  const random = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed / 2 ** 32;
  };
  const words =
    "walrus kettle dentist billing ferry colony shore tuesday friday garden piano bicycle recipe mountain harbour lantern violin"
      .split(" ")
      .concat(Array.from({ length: 60 }, (_, i) => `word${i}`));
  const pick = () => words[Math.floor(random() * random() * words.length)] as string;
  const count = 1_200;
  await whole.addMany(
    Array.from({ length: count }, (_, i) => ({
      messages: [{ role: "user" as const, name: i % 2 ? "Ben" : "Ana", content: Array.from({ length: 4 + (i % 7) }, pick).join(" ") }],
      ...scope,
      // Sessions of 20 messages a minute apart, a day apart.
      timestamp: new Date(Date.UTC(2025, 0, 1) + Math.floor(i / 20) * 86_400_000 + (i % 20) * 60_000),
    })),
  );
  let read = 0;
  const forced = newMemory(
    new Proxy(plain, {
      get(target, property, receiver) {
        if (property === "countWithin") return async () => LARGE_SCOPE + 1;
        if (property === "get")
          return async (ids: readonly string[], filter: StoreFilter) => {
            read += ids.length;
            return target.get(ids, filter);
          };
        const value = Reflect.get(target, property, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    }),
  );
  // The first search reads the scope's statistics (every memory); later ones only candidates.
  await forced.search("warm up", { ...scope, threshold: 0 });
  let same = 0;
  let compared = 0;
  const queries = Array.from({ length: 12 }, (_, q) => `what did Ana say about the ${words[q] as string} and ${pick()}?`);
  for (const query of queries) {
    read = 0;
    const got = await forced.search(query, { ...scope, threshold: 0, limit: 10 });
    expect(read).toBeLessThan(count / 4);
    const expected = await whole.search(query, { ...scope, threshold: 0, limit: 10 });
    const texts = new Map(expected.results.map((result) => [result.id, result.memory]));
    const stored = new Map(
      (
        await plain.get(
          got.results.map((result) => result.id),
          { scope },
        )
      ).map((record) => [record.id, record]),
    );
    for (const result of got.results) {
      expect(result.memory).toBe(stored.get(result.id)?.text);
      expect(result.userId).toBe("alice");
      if (texts.has(result.id)) same++;
    }
    compared += expected.results.length;
    expect(got.results).toHaveLength(10);
  }
  expect(same / compared).toBeGreaterThanOrEqual(0.9);
  await forced.close();
  await whole.close();
});

test("a large scope's speakers, known from an earlier search, let a query naming one be embedded with its version without the names in one call", async () => {
  const embedder = deterministicEmbedder();
  const memory = new Memory({ vectorStore: largeScopes([]), embedder, writeBehind: { enabled: false }, onError: () => {} });
  const scope = { userId: "alice" };
  for (const [k, [name, content]] of [
    ["Ana", "I finally booked the walrus tour"],
    ["Ben", "bring the blue kettle for tea"],
  ].entries())
    await memory.add([{ role: "user", name: name as string, content: content as string }], {
      ...scope,
      timestamp: new Date(Date.UTC(2025, 0, 1, 10, k)),
    });
  // First search of the scope: its speakers are not known yet, so the query without them is a second call.
  let before = embedder.calls.length;
  await memory.search("what did Ben bring?", { ...scope, threshold: 0 });
  expect(embedder.calls.slice(before)).toEqual([["what did Ben bring?"], ["what did bring?"]]);
  before = embedder.calls.length;
  const { results } = await memory.search("what did Ben say about tea?", { ...scope, threshold: 0, explain: true });
  expect(embedder.calls.slice(before)).toEqual([["what did Ben say about tea?", "what did say about tea?"]]);
  expect(results[0]?.memory).toBe("Ben: bring the blue kettle for tea");
  await memory.close();
});
