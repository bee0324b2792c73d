import { describe, expect, test } from "vitest";
import { z } from "zod";
import { ConfigError, InvalidInputError, MissingScopeError, StoreError } from "../../src/errors.js";
import {
  asStoreError,
  assertSameEmbedding,
  compareScopes,
  countScopes,
  encodeCursor,
  metadataConditions,
  parseConfig,
  rankByBm25,
  readCursor,
  scopeConditions,
  scopeOfRow,
} from "../../src/store-kit/index.js";

describe("rankByBm25", () => {
  test("known values: a term in 2 of 3 one-word texts scores ln(1.6); equal scores by id; texts without a term are left out", () => {
    const ranked = rankByBm25(
      ["walrus"],
      [
        { id: "b", text: "Walrus" },
        { id: "c", text: "penguin" },
        { id: "a", text: "walrus" },
      ],
      { limit: 10 },
    );
    expect(ranked.map((hit) => hit.candidate.id)).toEqual(["a", "b"]);
    for (const hit of ranked) expect(hit.score).toBeCloseTo(Math.log(1.6), 12);
  });

  test("the whole scope, or only the texts holding a term with documentCount, rank alike", () => {
    const scope = [
      { id: "1", text: "walrus tusks" },
      { id: "2", text: "a walrus and another walrus on the long ice shelf by the sea" },
      { id: "3", text: "penguins" },
      { id: "4", text: "otters near a walrus" },
      { id: "5", text: "zebras" },
    ];
    const all = rankByBm25(["walrus"], scope, { limit: 10 });
    const matched = rankByBm25(
      ["walrus"],
      scope.filter((record) => record.text.includes("walrus")),
      { documentCount: scope.length, limit: 10 },
    );
    expect(matched).toEqual(all);
    expect(all.map((hit) => hit.candidate.id)).toEqual(["1", "4", "2"]);
    expect(rankByBm25(["walrus"], scope, { limit: 1 })).toEqual(all.slice(0, 1));
    expect(rankByBm25([], scope, { limit: 10 })).toEqual([]);
  });
});

describe("assertSameEmbedding", () => {
  const where = { holder: "The table t", elsewhere: "another table" };

  test("says which size or model the store is made for, which the embedder gives, and what to do", () => {
    expect(() => assertSameEmbedding({ dimension: "512" }, { dimension: 384 }, where)).toThrow(
      new ConfigError({
        message:
          "The table t is made for 512-dimensional vectors, but the embedder gives 384-dimensional ones: vectors of another size cannot be compared. Use the embedder it was made for, or another table (move memories with export and import).",
      }),
    );
    expect(() => assertSameEmbedding({ dimension: 8, modelId: "a" }, { dimension: 8, modelId: "b" }, where)).toThrow(
      'The table t is made for vectors of the embedding model "a", but the embedder gives vectors of "b": vectors of another model cannot be compared. Use the embedder it was made for, or another table (move memories with export and import).',
    );
    expect(() => assertSameEmbedding({ dimension: "named or unknown" }, { dimension: 8 }, where)).toThrow(ConfigError);
  });

  test("what the store does not know yet, or the embedder does not say, is no mismatch", () => {
    expect(() => assertSameEmbedding({}, { dimension: 8, modelId: "a" }, where)).not.toThrow();
    expect(() => assertSameEmbedding({ dimension: 8 }, { dimension: 8, modelId: "a" }, where)).not.toThrow();
    expect(() => assertSameEmbedding({ dimension: "8", modelId: "a" }, { dimension: 8 }, where)).not.toThrow();
  });
});

describe("list cursors", () => {
  test("a cursor reads back as written; none is the first page; anything else is a StoreError", () => {
    expect(readCursor(encodeCursor(["2025-01-01T00:00:00.000Z", "id ✓"]), 2)).toEqual(["2025-01-01T00:00:00.000Z", "id ✓"]);
    expect(readCursor(undefined, 2)).toBeUndefined();
    for (const bad of [
      "",
      "%%%",
      encodeCursor(["one"]),
      Buffer.from("[1,2]").toString("base64url"),
      Buffer.from("{").toString("base64url"),
    ]) {
      expect(() => readCursor(bad, 2), bad).toThrow(StoreError);
      expect(() => readCursor(bad, 2), bad).toThrow(/pass back the cursor a list call returned/);
    }
  });
});

describe("scopes", () => {
  test("scopeOfRow keeps the ids of a row's scope columns and leaves NULL ones out", () => {
    expect(scopeOfRow({ user_id: "alice", agent_id: null, run_id: "r1" })).toEqual({ userId: "alice", runId: "r1" });
    expect(scopeOfRow({ user_id: null, agent_id: undefined, run_id: null })).toEqual({});
  });

  test("countScopes counts each exact combination of ids, absent ids first, then by code units; it reads async sources too", async () => {
    const scopes = [
      { userId: "bob" },
      { userId: "alice" },
      { userId: "alice", agentId: "coder" },
      { agentId: "coder" },
      { userId: "alice" },
    ];
    const expected = [
      { agentId: "coder", count: 1 },
      { userId: "alice", count: 2 },
      { userId: "alice", agentId: "coder", count: 1 },
      { userId: "bob", count: 1 },
    ];
    expect(await countScopes(scopes)).toEqual(expected);
    async function* paged() {
      yield* scopes;
    }
    expect(await countScopes(paged())).toEqual(expected);
    expect([{ userId: "b" }, { userId: "B" }, {}, { runId: "r" }].sort(compareScopes)).toEqual([
      {},
      { runId: "r" },
      { userId: "B" },
      { userId: "b" },
    ]);
  });
});

describe("filters", () => {
  test("a filter without a scope id is a MissingScopeError", () => {
    expect(() => scopeConditions({ scope: {} })).toThrow(MissingScopeError);
    expect(() => scopeConditions({ scope: { userId: "" } })).toThrow(MissingScopeError);
  });

  test("regression: a metadata filter key outside the pattern was a plain Error; it is an InvalidInputError naming the key", () => {
    const error = (() => {
      try {
        metadataConditions({ scope: { userId: "u" }, metadata: { "bad key'": 1 } });
      } catch (caught) {
        return caught;
      }
    })();
    expect(InvalidInputError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain(`"bad key'"`);
    expect(metadataConditions({ scope: { userId: "u" }, metadata: { "a.b-c_d": null } })).toEqual([["a.b-c_d", null]]);
  });
});

describe("errors and options", () => {
  test("asStoreError keeps an Engram error as it is and wraps anything else in a StoreError with its cause", () => {
    const own = new ConfigError({ message: "own" });
    expect(asStoreError(own, "ignored")).toBe(own);
    const cause = new Error("connection reset");
    const wrapped = asStoreError(cause, "PostgreSQL search failed");
    expect(StoreError.isInstance(wrapped)).toBe(true);
    expect(wrapped.message).toBe("PostgreSQL search failed: connection reset");
    expect(wrapped.cause).toBe(cause);
    expect(asStoreError("a string", "Qdrant write failed").message).toBe("Qdrant write failed: a string");
  });

  test("parseConfig: bad options are a ConfigError naming the call and the option", () => {
    const schema = z.strictObject({
      url: z
        .string()
        .regex(/^https?:\/\//, "url must start with http://")
        .optional(),
    });
    expect(parseConfig(schema, { url: "http://x" }, "myStore")).toEqual({ url: "http://x" });
    expect(() => parseConfig(schema, { url: "x" }, "myStore")).toThrow(
      new ConfigError({ message: "myStore(): url: url must start with http://." }),
    );
    expect(() => parseConfig(schema, { uri: "http://x" }, "myStore")).toThrow(/Unknown option "uri" in myStore\(\)\. Known options: url\./);
  });
});
