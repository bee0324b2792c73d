import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
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
import { chromaStore } from "../../src/stores/chroma-store.js";
import { pgvectorStore } from "../../src/stores/pgvector-store.js";
import { qdrantStore } from "../../src/stores/qdrant-store.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../../src/testing/index.js";
import { type ChromaServer, startChroma } from "../support/chroma-server.js";
import { type QdrantStandIn, startQdrantStandIn } from "../support/qdrant-stand-in.js";

let standIn: QdrantStandIn;
let chroma: ChromaServer;
beforeAll(async () => {
  [standIn, chroma] = await Promise.all([startQdrantStandIn(), startChroma()]);
}, 120_000);
afterAll(async () => {
  await standIn.close();
  await chroma?.remove();
});

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
  [
    "pgvectorStore (PGlite + pgvector over the wire protocol)",
    () => pgvectorStore({ connectionString: inject("pgliteUrl"), table: `scopes_${process.pid}` }),
  ],
  ["qdrantStore (against the Qdrant REST stand-in)", () => qdrantStore({ url: standIn.url, collection: `scopes_${process.pid}` })],
  ["chromaStore (against a Chroma server)", () => chromaStore({ url: chroma.url, collection: `scopes_${process.pid}` })],
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
