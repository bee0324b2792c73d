import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { findClusters } from "../src/consolidate.js";
import { postgresHistory } from "../src/history/postgres-history.js";
import { ExtractionError, InvalidInputError, Memory, type MemoryOptions } from "../src/index.js";
import { pgvectorStore } from "../src/stores/pgvector-store.js";
import type { MemoryRecord } from "../src/stores/vector-store.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";
import { scriptedLanguageModel } from "../src/testing/scripted-language-model.js";
import { createDatabase, withClient } from "./support/databases.js";

const DAY = 86_400_000;

/** A Memory on a fake clock that moves a day per add, so turns never join into one memory. */
type Backend = (options: Partial<MemoryOptions>) => Memory;

const sisters = ["My sister Anna lives in Lisbon", "my sister Anna lives in Lisbon.", "My sister Anna lives in Lisbon!"];

function suite(name: string, backend: () => Backend) {
  describe(`Memory.consolidate on ${name}`, () => {
    const fresh = (options: Partial<MemoryOptions> = {}) => {
      let now = Date.parse("2026-01-01T00:00:00Z");
      const memory = backend()({ ...options, _internal: { now: () => now } });
      const tick = () => {
        now += DAY;
      };
      return { memory, tick };
    };
    const seed = async (memory: Memory, tick: () => void, user: string, texts: readonly string[], extra: object = {}) => {
      const ids: string[] = [];
      for (const [n, text] of texts.entries()) {
        tick();
        const { results } = await memory.add(text, { userId: user, metadata: { n }, ...extra, infer: false });
        ids.push(results[0]?.id as string);
      }
      return ids;
    };

    test("without an llm keeps the newest text verbatim, deletes the others, and every original stays in history as MERGE", async () => {
      const { memory, tick } = fresh();
      const user = `u-${Math.random()}`;
      const [oldest, middle, newest] = await seed(memory, tick, user, sisters);
      const [other] = await seed(memory, tick, user, ["I work as a nurse at night"]);

      const dry = await memory.consolidate({ userId: user }, { dryRun: true });
      expect(dry).toMatchObject({ memories: 4, merged: 0, dryRun: true });
      expect(dry.clusters).toHaveLength(1);
      expect(dry.clusters[0]?.into).toBe(newest);
      expect(dry.clusters[0]?.members.map((member) => member.id)).toEqual([oldest, middle, newest]);
      expect((await memory.getAll({ userId: user })).results).toHaveLength(4);

      const done = await memory.consolidate({ userId: user });
      expect(done).toMatchObject({ memories: 4, merged: 2, dryRun: false });
      expect(done.usage.llmCalls).toBe(0);
      expect(done.clusters[0]?.memory).toBe(sisters[2]);
      const left = (await memory.getAll({ userId: user })).results;
      expect(left.map((item) => item.id).sort()).toEqual([newest, other].sort());
      expect(left.find((item) => item.id === newest)?.memory).toBe(sisters[2]);
      // Where each merged message came from stays with the memory.
      expect(left.find((item) => item.id === newest)?.sources).toEqual([{ n: 2 }, { n: 0 }, { n: 1 }]);

      const absorbed = await memory.history(oldest as string, { userId: user });
      expect(absorbed.map((entry) => [entry.event, entry.previousValue, entry.newValue])).toEqual([
        ["ADD", null, sisters[0]],
        ["MERGE", sisters[0], sisters[2]],
      ]);
      const survivor = await memory.history(newest as string, { userId: user });
      expect(survivor.filter((entry) => entry.event === "MERGE").map((entry) => entry.previousValue)).toEqual([
        sisters[2],
        sisters[0],
        sisters[1],
      ]);
      expect(await memory.get(oldest as string, { userId: user })).toBeNull();
      // A second run finds nothing left to merge.
      expect((await memory.consolidate({ userId: user })).clusters).toEqual([]);
      await memory.close();
    });

    test("never merges across scopes: another user, or a run of the same user, keeps its own copy", async () => {
      const { memory, tick } = fresh();
      const user = `u-${Math.random()}`;
      await seed(memory, tick, user, sisters.slice(0, 1));
      await seed(memory, tick, user, sisters.slice(1, 2), { runId: "r1" });
      await seed(memory, tick, `${user}-bob`, sisters.slice(2));
      const result = await memory.consolidate({ userId: user });
      expect(result.memories).toBe(2);
      expect(result.clusters).toEqual([]);
      expect((await memory.getAll({ userId: `${user}-bob` })).results).toHaveLength(1);
      await memory.close();
    });

    test("with an llm, one call per cluster writes the merged fact, which is embedded and found by search", async () => {
      const llm = scriptedLanguageModel(() => ({ json: { memory: "Anna, the user's sister, lives in Lisbon" } }));
      const { memory, tick } = fresh({ llm });
      const user = `u-${Math.random()}`;
      const ids = await seed(memory, tick, user, [...sisters, "I own two cats", "i own two cats."]);

      const dry = await memory.consolidate({ userId: user }, { dryRun: true });
      expect(llm.prompts).toHaveLength(0);
      expect(dry.clusters).toHaveLength(2);
      expect(dry.clusters[0]?.memory).toBeUndefined();

      const done = await memory.consolidate({ userId: user });
      expect(llm.prompts).toHaveLength(2);
      expect(llm.prompts[0]?.text).toContain(sisters[0]);
      expect(done.usage.llmCalls).toBe(2);
      expect(done.merged).toBe(3);
      const { results } = await memory.search("where does Anna live", { userId: user, threshold: 0, limit: 1 });
      expect(results[0]).toMatchObject({ id: ids[2], memory: "Anna, the user's sister, lives in Lisbon" });
      await memory.close();
    });

    test("a model reply that is not a merged memory is an ExtractionError and changes nothing", async () => {
      const llm = scriptedLanguageModel(() => "I cannot help with that");
      const { memory, tick } = fresh({ llm, llmRetry: { retries: 0 } });
      const user = `u-${Math.random()}`;
      await seed(memory, tick, user, sisters);
      await expect(memory.consolidate({ userId: user })).rejects.toBeInstanceOf(ExtractionError);
      expect((await memory.getAll({ userId: user })).results).toHaveLength(3);
      await memory.close();
    });

    test("bad options and a missing scope are refused with typed errors", async () => {
      const { memory } = fresh();
      await expect(memory.consolidate({ userId: "a" }, { similarity: 2 })).rejects.toBeInstanceOf(InvalidInputError);
      await expect(memory.consolidate({ userId: "a" }, { dryrun: true } as never)).rejects.toBeInstanceOf(InvalidInputError);
      await expect(memory.consolidate({} as never)).rejects.toThrow(/scope|userId/);
      await memory.close();
    });
  });
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

suite("SQLite", () => (options) => {
  const dataDir = mkdtempSync(join(tmpdir(), "engram-consolidate-"));
  dirs.push(dataDir);
  return new Memory({ dataDir, embedder: deterministicEmbedder(), ...options });
});

describe("on PostgreSQL", () => {
  const vectorUrl = inject("pgliteUrl");
  const tables: string[] = [];
  let historyUrl: string;
  beforeAll(async () => {
    historyUrl = await createDatabase(inject("postgresUrl"), "consolidate");
  });
  afterAll(async () => {
    await withClient(vectorUrl, (client) =>
      client.query(tables.map((table) => `DROP TABLE IF EXISTS ${table}, ${table}_meta;`).join("\n")),
    );
  });
  suite("pgvector and PostgreSQL history", () => (options) => {
    const table = `consolidate_${process.pid}_${tables.length}`;
    tables.push(table);
    return new Memory({
      embedder: deterministicEmbedder(),
      vectorStore: pgvectorStore({ connectionString: vectorUrl, table }),
      historyStore: postgresHistory({ connectionString: historyUrl }),
      ...options,
    });
  });
});

describe("findClusters", () => {
  const record = (id: number, vector: number[], text: string): MemoryRecord & { vector: Float32Array } => ({
    id: `m${id}`,
    text,
    hash: `h${id}`,
    vector: Float32Array.from(vector),
    metadata: {},
    userId: "u",
    createdAt: new Date(Date.UTC(2026, 0, 1) + id).toISOString(),
    updatedAt: new Date(Date.UTC(2026, 0, 1) + id).toISOString(),
  });

  test("property: every two members of a cluster pass both tests, and no memory is in two clusters", () => {
    const words = ["tea", "coffee", "berlin", "lisbon", "cat", "dog", "nurse", "piano"];
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 3, maxLength: 3 }), fc.subarray(words, { minLength: 1 })),
          { minLength: 2, maxLength: 25 },
        ),
        fc.double({ min: 0.5, max: 0.99, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (items, similarity, keywordOverlap) => {
          const records = items.map(([vector, text], i) => record(i, vector.every((x) => x === 0) ? [1, 0, 0] : vector, text.join(" ")));
          const clusters = findClusters(records, { similarity, keywordOverlap });
          const seen = new Set<string>();
          const unit = (v: Float32Array) => {
            const n = Math.hypot(...v);
            return [...v].map((x) => x / n);
          };
          for (const { members } of clusters) {
            expect(members.length).toBeGreaterThan(1);
            for (const member of members) {
              expect(seen.has(member.id)).toBe(false);
              seen.add(member.id);
            }
            for (const a of members) {
              for (const b of members) {
                if (a === b) continue;
                const [x, y] = [unit(a.vector), unit(b.vector)];
                const cosine = x.reduce((sum, value, k) => sum + value * (y[k] as number), 0);
                expect(cosine).toBeGreaterThanOrEqual(similarity - 1e-6);
                const [ta, tb] = [new Set(a.text.split(" ")), new Set(b.text.split(" "))];
                const shared = [...ta].filter((t) => tb.has(t)).length;
                expect(shared / (ta.size + tb.size - shared)).toBeGreaterThanOrEqual(keywordOverlap - 1e-9);
              }
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test("a chain of small steps does not join two different facts (complete linkage)", () => {
    const at = (angle: number) => [Math.cos(angle), Math.sin(angle), 0];
    const records = [record(0, at(0), "tea"), record(1, at(0.3), "tea"), record(2, at(0.6), "tea")];
    // cos(0.3) ≈ 0.955 between neighbours, cos(0.6) ≈ 0.825 between the ends.
    const clusters = findClusters(records, { similarity: 0.9, keywordOverlap: 0 });
    expect(clusters).toHaveLength(1);
    expect(clusters[0]?.members).toHaveLength(2);
  });
});
