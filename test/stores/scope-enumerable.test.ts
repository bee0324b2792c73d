import { describe, expect, test } from "vitest";
import {
  ConfigError,
  InvalidInputError,
  isScopeEnumerable,
  Memory,
  type MemoryRecord,
  type ScopeEnumerable,
  sqliteStore,
  type VectorStore,
} from "../../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../../src/testing/index.js";

function record(id: string, scope: Pick<MemoryRecord, "userId" | "agentId" | "runId">): MemoryRecord {
  return {
    id,
    text: `text ${id}`,
    hash: id,
    vector: new Float32Array([1, 0, 0]),
    ...scope,
    metadata: {},
    createdAt: "2024-01-01T00:00:00.000Z",
    updatedAt: "2024-01-01T00:00:00.000Z",
  };
}

describe.each([
  ["sqliteStore", () => sqliteStore({ path: ":memory:" })],
  ["inMemoryStore", () => inMemoryStore()],
])("%s lists its scopes", (_name, create: () => VectorStore & ScopeEnumerable) => {
  test("every exact combination of ids with its count, absent ids first, and nothing once deleted", async () => {
    const store = create();
    expect(isScopeEnumerable(store)).toBe(true);
    await store.init({ dimension: 3 });
    expect(await store.scopes()).toEqual([]);
    await store.write({
      upsert: [
        record("1", { userId: "bob" }),
        record("2", { userId: "alice" }),
        record("3", { userId: "alice", agentId: "coder" }),
        record("4", { userId: "alice" }),
        record("5", { agentId: "coder" }),
        record("6", { runId: "r1" }),
        record("7", { userId: "alice", agentId: "coder", runId: "r1" }),
      ],
    });
    expect(await store.scopes()).toEqual([
      { runId: "r1", count: 1 },
      { agentId: "coder", count: 1 },
      { userId: "alice", count: 2 },
      { userId: "alice", agentId: "coder", count: 1 },
      { userId: "alice", agentId: "coder", runId: "r1", count: 1 },
      { userId: "bob", count: 1 },
    ]);
    await store.deleteMany({ scope: { userId: "alice" } });
    expect(await store.scopes()).toEqual([
      { runId: "r1", count: 1 },
      { agentId: "coder", count: 1 },
      { userId: "bob", count: 1 },
    ]);
    await store.close();
  });
});

describe("Memory.scopes", () => {
  const memoryWith = (vectorStore: VectorStore) =>
    new Memory({ embedder: deterministicEmbedder(), vectorStore, historyStore: inMemoryHistory(), writeBehind: { enabled: false } });

  test("lists scopes and counts only with an explicit { allScopes: true }", async () => {
    const memory = memoryWith(inMemoryStore());
    await memory.add(
      ["a", "b"].map((content) => ({ role: "user" as const, content })),
      { userId: "alice" },
    );
    await memory.add("c", { userId: "bob", runId: "r1" });
    expect(await memory.scopes({ allScopes: true })).toEqual([
      { userId: "alice", count: 2 },
      { userId: "bob", runId: "r1", count: 1 },
    ]);
    for (const wrong of [{}, { userId: "alice" }, { allScopes: false }, { allScopes: true, userId: "alice" }, undefined]) {
      await expect(memory.scopes(wrong as never), JSON.stringify(wrong)).rejects.toThrow(InvalidInputError);
    }
    await memory.close();
  });

  test("is a ConfigError for a store without the capability", async () => {
    const { scopes: _scopes, ...plain } = inMemoryStore();
    const memory = memoryWith(plain);
    await expect(memory.scopes({ allScopes: true })).rejects.toThrow(ConfigError);
    await memory.close();
  });
});
