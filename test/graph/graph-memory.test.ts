import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, inject, test } from "vitest";
import { ConfigError, InvalidInputError, InvalidScopeError, MissingScopeError } from "../../src/errors.js";
import { postgresGraph } from "../../src/graph/postgres-graph.js";
import { sqliteGraph } from "../../src/graph/sqlite-graph.js";
import { Memory, type MemoryOptions } from "../../src/memory.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";
import { createDatabase } from "../support/databases.js";

const directory = mkdtempSync(join(tmpdir(), "engram-graph-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let runs = 0;

// The same behaviour from the embedded graph (in the SQLite file) and from PostgreSQL.
const backends: { name: string; graph: () => Promise<MemoryOptions["graph"]> }[] = [
  { name: "SQLite", graph: async () => true },
  {
    name: "PostgreSQL",
    graph: async () => ({ store: postgresGraph({ connectionString: await createDatabase(inject("postgresUrl"), "graph") }) }),
  },
];

for (const backend of backends) {
  const newMemory = async (options: { graph?: boolean } = { graph: true }) =>
    new Memory({
      dataDir: join(directory, `data-${runs++}`),
      embedder: deterministicEmbedder(),
      writeBehind: { enabled: false },
      onError: (error) => {
        throw error;
      },
      ...(options.graph ? { graph: await backend.graph() } : {}),
    });

  const triples = (relations: { source: string; relation: string; target: string }[]) =>
    relations.map(({ source, relation, target }) => `${source} -${relation}- ${target}`).sort();

  describe(`graph memory without a model (${backend.name})`, () => {
    test("links the names one memory mentions as co-occurs, each relation with the memories that support it", async () => {
      const memory = await newMemory();
      const alice = { userId: "alice" };
      const { results } = await memory.add("Alice manages Bob", alice);
      await memory.add("Bob mentors Carol in Paris", alice);
      const first = results[0]?.id as string;
      expect(triples(await memory.graph.relations(alice))).toEqual([
        "Alice -co-occurs- Bob",
        "Bob -co-occurs- Carol",
        "Bob -co-occurs- Paris",
        "Carol -co-occurs- Paris",
      ]);
      const [managing] = await memory.graph.relations(alice, { entity: "alice" });
      expect(managing).toEqual({ source: "Alice", relation: "co-occurs", target: "Bob", memoryIds: [first] });
      // Two steps from Alice: Bob's relations too.
      expect(triples(await memory.graph.relations(alice, { entity: "Alice", depth: 2 }))).toEqual([
        "Alice -co-occurs- Bob",
        "Bob -co-occurs- Carol",
        "Bob -co-occurs- Paris",
      ]);
      expect(await memory.graph.neighbors(alice, "ALICE", { depth: 2 })).toEqual([
        { entity: "Bob", depth: 1 },
        { entity: "Carol", depth: 2 },
        { entity: "Paris", depth: 2 },
      ]);
      await memory.close();
    });

    test("an entity named in two users' memories is two entities: no relation or neighbor crosses users", async () => {
      const memory = await newMemory();
      await memory.add("Alice manages Bob", { userId: "alice" });
      await memory.add("Bob plays chess with Dave", { userId: "carol" });
      expect(triples(await memory.graph.relations({ userId: "alice" }, { entity: "Bob", depth: 3 }))).toEqual(["Alice -co-occurs- Bob"]);
      expect(await memory.graph.neighbors({ userId: "carol" }, "Bob", { depth: 3 })).toEqual([{ entity: "Dave", depth: 1 }]);
      expect(await memory.graph.neighbors({ userId: "nobody" }, "Bob")).toEqual([]);
      await memory.close();
    });

    test("scopes are AND-ed like search: a user's graph spans their agents, an agent's graph is its own slice", async () => {
      const memory = await newMemory();
      await memory.add("Alice manages Bob", { userId: "alice", agentId: "work" });
      await memory.add("Bob lives in Rome", { userId: "alice", agentId: "home" });
      // One name is one node across the user's agents.
      expect(await memory.graph.neighbors({ userId: "alice" }, "Alice", { depth: 2 })).toEqual([
        { entity: "Bob", depth: 1 },
        { entity: "Rome", depth: 2 },
      ]);
      expect(await memory.graph.neighbors({ userId: "alice", agentId: "work" }, "Alice", { depth: 2 })).toEqual([
        { entity: "Bob", depth: 1 },
      ]);
      expect(await memory.graph.relations({ agentId: "home", userId: "bob" })).toEqual([]);
      await memory.close();
    });

    test("update re-derives the memory's relations; delete removes its support; a relation no memory supports disappears; history keeps the changes", async () => {
      const memory = await newMemory();
      const scope = { userId: "alice" };
      const {
        results: [added],
      } = await memory.add("Alice manages Bob", scope);
      const id = added?.id as string;
      await memory.add("Alice and Bob run the Berlin office", scope);
      await memory.update(id, "Alice manages Dana", scope);
      expect(triples(await memory.graph.relations(scope, { entity: "Alice" }))).toEqual([
        "Alice -co-occurs- Berlin",
        "Alice -co-occurs- Bob",
        "Alice -co-occurs- Dana",
      ]);
      // Alice–Bob is still supported by the second memory only.
      const [aliceBob] = await memory.graph.relations(scope, { entity: "Dana" });
      expect(aliceBob?.memoryIds).toEqual([id]);
      await memory.delete(id, scope);
      expect(await memory.graph.neighbors(scope, "Dana")).toEqual([]);
      expect((await memory.graph.relations(scope)).every((relation) => !relation.memoryIds.includes(id))).toBe(true);
      const changes = await memory.graph.history(scope, { memoryId: id });
      expect(changes.map(({ event, source, target }) => `${event} ${source}-${target}`)).toEqual([
        "ADD Alice-Bob",
        "DELETE Alice-Bob",
        "ADD Alice-Dana",
        "DELETE Alice-Dana",
      ]);
      expect(await memory.graph.history({ userId: "bob" }, { memoryId: id })).toEqual([]);
      await memory.close();
    });

    test("deleteAll removes the scope's graph, and only the scope's", async () => {
      const memory = await newMemory();
      await memory.add("Alice manages Bob", { userId: "alice", agentId: "a" });
      await memory.add("Alice manages Carol", { userId: "alice", agentId: "b" });
      await memory.deleteAll({ userId: "alice", agentId: "a" });
      expect(triples(await memory.graph.relations({ userId: "alice" }))).toEqual(["Alice -co-occurs- Carol"]);
      await memory.deleteAll({ userId: "alice", purge: true });
      expect(await memory.graph.relations({ userId: "alice" })).toEqual([]);
      expect(await memory.graph.history({ userId: "alice" })).toEqual([]);
      await memory.close();
    });

    test("search with graph: true returns the query's relations and adds memories reached through its entities (multi-hop), inside the scope only", async () => {
      const memory = await newMemory();
      const alice = { userId: "alice" };
      await memory.add("Alice manages Bob", alice);
      await memory.add("Bob is married to Dana", alice);
      for (const filler of ["The kitchen needs new tiles", "Tuesday is the recycling day", "The printer ran out of toner"]) {
        await memory.add(filler, alice);
      }
      await memory.add("Bob is married to Eve", { userId: "mallory" });
      const query = "Alice's direct report: who is the spouse?";
      const plain = await memory.search(query, alice);
      expect(plain.results.map((r) => r.memory)).not.toContain("Bob is married to Dana");
      expect(plain).not.toHaveProperty("relations");
      const { results, relations } = await memory.search(query, { ...alice, graph: true });
      expect(triples(relations ?? [])).toEqual(["Alice -co-occurs- Bob"]);
      const texts = results.map((r) => r.memory);
      // The ranked results first, as without the graph; then what the graph reached.
      expect(texts.slice(0, plain.results.length)).toEqual(plain.results.map((r) => r.memory));
      expect(texts).toContain("Alice manages Bob");
      expect(texts).toContain("Bob is married to Dana");
      expect(texts).not.toContain("Bob is married to Eve");
      expect(results.every((r) => r.userId === "alice" && typeof r.score === "number")).toBe(true);
      // A limit the ranked results fill leaves no room for more.
      expect((await memory.search(query, { ...alice, graph: true, limit: 1 })).results).toHaveLength(1);
      await memory.close();
      const off = await newMemory({});
      await expect(off.search(query, { ...alice, graph: true })).rejects.toSatisfy((error) => ConfigError.isInstance(error));
      await off.close();
    });

    test("graph calls need a scope, refuse bad options with typed errors, and say how to turn graph memory on", async () => {
      const memory = await newMemory();
      await expect(memory.graph.relations({} as never)).rejects.toBeInstanceOf(MissingScopeError);
      await expect(memory.graph.relations({ user_id: "alice" } as never)).rejects.toBeInstanceOf(InvalidScopeError);
      await expect(memory.graph.relations(JSON.parse('{"__proto__": {"userId": "alice"}}'))).rejects.toSatisfy(
        (error) => MissingScopeError.isInstance(error) || InvalidScopeError.isInstance(error),
      );
      await expect(memory.graph.relations({ userId: "alice" }, { depth: 9 })).rejects.toBeInstanceOf(InvalidInputError);
      await expect(memory.graph.neighbors({ userId: "alice" }, "" as string)).rejects.toBeInstanceOf(InvalidInputError);
      await memory.close();
      const off = await newMemory({});
      await expect(off.graph.relations({ userId: "alice" })).rejects.toSatisfy(
        (error) => ConfigError.isInstance(error) && /graph: true/.test((error as Error).message),
      );
      await off.close();
    });
  });
}

describe("graph options", () => {
  test('regression: a bad graph option said only "Invalid input"; it names what is expected now, as does a bad search graph flag', async () => {
    const expected = /graph must be true, false, or \{ store \} with a store implementing the GraphStore contract \(init, write, relations/;
    expect(() => new Memory({ graph: "yes" as never })).toThrow(expected);
    expect(() => new Memory({ graph: { store: { write() {} } } as never })).toThrow(expected);
    expect(() => new Memory({ graph: { store: sqliteGraph({ path: ":memory:" }), depth: 2 } as never })).toThrow(InvalidInputError);
    const memory = new Memory({ dataDir: join(directory, `data-${runs++}`), embedder: deterministicEmbedder(), graph: true });
    await expect(memory.search("hi", { userId: "alice", graph: "yes" as never })).rejects.toSatisfy(
      (error) => InvalidInputError.isInstance(error) && /graph must be true or false/.test((error as Error).message),
    );
    await memory.close();
  });
});
