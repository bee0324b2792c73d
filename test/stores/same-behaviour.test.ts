import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { textHash } from "../../src/internal/hash.js";
import { keywordTerms, rankByBm25 } from "../../src/store-kit/index.js";
import { chromaStore } from "../../src/stores/chroma-store.js";
import { inMemoryStore } from "../../src/stores/in-memory-store.js";
import { pgvectorStore } from "../../src/stores/pgvector-store.js";
import { qdrantStore } from "../../src/stores/qdrant-store.js";
import { sqliteStore } from "../../src/stores/sqlite-store.js";
import type { KeywordSearchable, MemoryRecord, VectorStore } from "../../src/stores/vector-store.js";
import { type ChromaServer, startChroma } from "../support/chroma-server.js";
import { withClient } from "../support/databases.js";
import { type QdrantStandIn, startQdrantStandIn } from "../support/qdrant-stand-in.js";

// Where the contract leaves room (how keyword hits are scored, how a refused embedder is worded),
// every built-in store does the same thing, through the store kit.

const directory = mkdtempSync(join(tmpdir(), "engram-same-behaviour-"));
const pgliteUrl = inject("pgliteUrl");
const tables: string[] = [];
let standIn: QdrantStandIn;
let chroma: ChromaServer;
let names = 0;
const nextName = (prefix: string) => `${prefix}_${process.pid}_${names++}`;

beforeAll(async () => {
  [standIn, chroma] = await Promise.all([startQdrantStandIn(), startChroma()]);
}, 120_000);
afterAll(async () => {
  await standIn.close();
  await chroma?.remove();
  rmSync(directory, { recursive: true, force: true });
  await withClient(pgliteUrl, async (client) => {
    for (const table of tables) await client.query(`DROP TABLE IF EXISTS ${table}, ${table}_meta, ${table}_tombstones`);
  });
});

type Store = VectorStore & KeywordSearchable;
const stores: [string, () => Store][] = [
  ["inMemoryStore", () => inMemoryStore()],
  ["sqliteStore", () => sqliteStore({ path: join(directory, `${nextName("store")}.db`) })],
  [
    "pgvectorStore",
    () => {
      const table = nextName("same");
      tables.push(table);
      return pgvectorStore({ connectionString: pgliteUrl, table });
    },
  ],
  ["qdrantStore", () => qdrantStore({ url: standIn.url, collection: nextName("same") })],
  ["chromaStore", () => chromaStore({ url: chroma.url, collection: nextName("same") })],
];

function record(id: string, text: string, userId: string): MemoryRecord {
  const at = "2025-01-01T00:00:00.000Z";
  return { id, text, hash: textHash(text), vector: Float32Array.from([1, 0]), userId, metadata: {}, createdAt: at, updatedAt: at };
}

/** What every store must answer: BM25 over the scope's records, as the store kit ranks. */
function expectedHits(query: string, scopeRecords: readonly MemoryRecord[], limit: number) {
  return rankByBm25(keywordTerms(query), scopeRecords, { limit }).map(({ candidate, score }) => ({ id: candidate.id, score }));
}

async function expectRankedLikeBm25(store: Store, query: string, userId: string, scopeRecords: readonly MemoryRecord[], limit: number) {
  const hits = await store.keywordSearch({ text: query, filter: { scope: { userId } }, limit });
  const expected = expectedHits(query, scopeRecords, limit);
  expect(hits.map((hit) => hit.record.id)).toEqual(expected.map((hit) => hit.id));
  hits.forEach((hit, i) => {
    expect(hit.score).toBeCloseTo(expected[i]?.score as number, 9);
  });
}

describe.each(stores)("%s", (_name, create) => {
  test("regression: pgvectorStore ranked keyword hits by ts_rank, so they came in another order than in the other stores", async () => {
    const store = create();
    await store.init({ dimension: 2 });
    // ts_rank counts occurrences and ignores length: the long text saying "walrus" twice comes
    // first. BM25 weighs a short text saying it once higher.
    const filler = "with many other words about the weather the city the office and the long evening walks home";
    const scope = [
      record("long", `walrus ${filler} walrus ${filler}`, "u1"),
      record("short", "walrus tusks", "u1"),
      record("none-1", "penguins on the ice", "u1"),
      record("none-2", "zebras in the grass", "u1"),
    ];
    await store.write({ upsert: [...scope, record("elsewhere", "walrus walrus walrus", "u2")] });
    const expected = expectedHits("walrus", scope, 10);
    expect(expected.map((hit) => hit.id)).toEqual(["short", "long"]);
    await expectRankedLikeBm25(store, "walrus", "u1", scope, 10);
    await store.close();
  });

  test("regression: each store worded a refused embedder its own way (9 messages in 4 stores); they say one thing now", async () => {
    const store = create();
    await store.init({ dimension: 2, modelId: "model-a" });
    await store.write({ upsert: [record("m", "a memory", "u1")] });
    const refusal = (options: { dimension: number; modelId?: string }) =>
      store.init(options).then(
        () => undefined,
        (error: unknown) => error,
      );
    const size = await refusal({ dimension: 3, modelId: "model-a" });
    expect(ConfigError.isInstance(size)).toBe(true);
    expect((size as Error).message).toMatch(
      /^(This inMemoryStore|The database .+|The table .+|The (Qdrant|Chroma) collection .+) is made for 2-dimensional vectors, but the embedder gives 3-dimensional ones: vectors of another size cannot be compared\. Use the embedder it was made for, or (a new one|another dataDir|another table|another collection) \(move memories with export and import\)\.$/,
    );
    const model = await refusal({ dimension: 2, modelId: "model-b" });
    expect(ConfigError.isInstance(model)).toBe(true);
    expect((model as Error).message).toMatch(
      / is made for vectors of the embedding model "model-a", but the embedder gives vectors of "model-b": vectors of another model cannot be compared\. Use the embedder it was made for, or /,
    );
    await store.close();
  });
});

describe("keyword search ranks the same in every store", () => {
  // Words every full-text engine here tokenizes alike and no stemmer conflates: the stores find
  // the same candidates, so their rankings can only differ by how they score them.
  const vocabulary = ["walrus", "penguin", "zebra", "otter", "falcon", "badger", "lynx", "heron", "bison", "gecko", "koala", "llama"];
  const text = fc.array(fc.constantFrom(...vocabulary), { minLength: 1, maxLength: 8 }).map((words) => words.join(" "));
  const opened: Store[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((store) => store.close()));
  });

  test("property: the BM25 order and scores of the scope's records, whatever the texts and the query", { timeout: 60_000 }, async () => {
    const every = stores.map(([name, create]) => [name, create()] as const);
    opened.push(...every.map(([, store]) => store));
    for (const [, store] of every) await store.init({ dimension: 2 });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(text, { minLength: 1, maxLength: 10 }),
        fc.array(text, { maxLength: 4 }),
        fc.array(fc.constantFrom(...vocabulary), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 6 }),
        async (mine, others, query, limit) => {
          const userId = `run-${run++}`;
          const scope = mine.map((text, i) => record(`${userId}-${String(i).padStart(2, "0")}`, text, userId));
          const elsewhere = others.map((text, i) => record(`${userId}-other-${i}`, text, `${userId}-other`));
          for (const [name, store] of every) {
            await store.write({ upsert: [...scope, ...elsewhere] });
            try {
              await expectRankedLikeBm25(store, query.join(" "), userId, scope, limit);
            } catch (error) {
              throw new Error(`${name}: ${(error as Error).message}`);
            }
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});
