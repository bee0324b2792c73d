import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { type EngramError, InvalidInputError } from "../src/errors.js";
import { postgresHistory } from "../src/history/postgres-history.js";
import { normaliseText } from "../src/internal/hash.js";
import { Memory } from "../src/memory.js";
import { pgvectorStore } from "../src/stores/pgvector-store.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";
import { createDatabase, withClient } from "./support/databases.js";

// Text the stores cannot hold as given (U+0000, which PostgreSQL refuses and SQLite reads back cut
// short; lone UTF-16 surrogates, stored as U+FFFD) is refused where it enters, with an
// InvalidInputError, by add and enqueue alike. Everything accepted is stored and read back exactly,
// and nothing enqueue accepts fails later for its content. Checked on the embedded SQLite default
// and on pgvector with PostgreSQL history.

const directory = mkdtempSync(join(tmpdir(), "engram-storable-"));
const vectorUrl = inject("pgliteUrl");
const table = `storable_${process.pid}`;
const memories: Record<string, Memory> = {};

beforeAll(async () => {
  memories.sqlite = new Memory({ dataDir: directory, embedder: deterministicEmbedder(), writeBehind: { pollIntervalMs: 10 } });
  memories.postgres = new Memory({
    embedder: deterministicEmbedder(),
    vectorStore: pgvectorStore({ connectionString: vectorUrl, table }),
    historyStore: postgresHistory({ connectionString: await createDatabase(inject("postgresUrl"), "storable_text") }),
    writeBehind: { pollIntervalMs: 10 },
  });
});

afterAll(async () => {
  await Promise.all(Object.values(memories).map((memory) => memory.close()));
  await withClient(vectorUrl, (client) => client.query(`DROP TABLE IF EXISTS ${table}, ${table}_meta`));
  rmSync(directory, { recursive: true, force: true });
});

const unstorable = (text: string) => text.includes("\u0000") || /\p{Cs}/u.test(text);

/** Text with the characters stores trip on: NUL, both surrogate halves alone and paired, controls, separators. */
const awkwardText = fc
  .array(
    fc.oneof(
      fc.constantFrom("\u0000", "\ud800", "\udfff", "\ud83d", "\ude00", "😀", "é", "\u0001", "\u2028", "\ufeff", "\\u0000", "'", '"'),
      fc.string({ minLength: 1, maxLength: 8 }),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((parts) => `note ${parts.join("")}`);

async function outcome(promise: Promise<unknown>): Promise<{ refused: EngramError } | { value: unknown }> {
  try {
    return { value: await promise };
  } catch (error) {
    return { refused: error as EngramError };
  }
}

describe.each(["sqlite", "postgres"])("on %s", (name) => {
  const memory = () => memories[name] as Memory;

  test("regression: text with U+0000 or a lone surrogate is refused by add and enqueue alike (it was cut short by SQLite, refused late by PostgreSQL); all other text reads back exactly", async () => {
    let user = 0;
    await fc.assert(
      fc.asyncProperty(awkwardText, async (text) => {
        const scope = { userId: `${name}-user-${user++}` };
        const added = await outcome(memory().add(text, scope));
        const queued = await outcome(memory().enqueue(text, scope));
        if (unstorable(text)) {
          for (const result of [added, queued]) {
            expect("refused" in result && InvalidInputError.isInstance(result.refused), JSON.stringify(text)).toBe(true);
          }
          expect((result(added) as EngramError).message.replace("add()", "enqueue()")).toBe((result(queued) as EngramError).message);
          return;
        }
        expect("value" in added && "value" in queued, `${JSON.stringify(text)}: ${String(result(added))} ${String(result(queued))}`).toBe(
          true,
        );
        const [first] = (result(added) as { results: { id: string; event: string }[] }).results;
        const stored = await memory().get(first?.id as string, scope);
        expect(stored?.memory).toBe(normaliseText(text));
        expect((await memory().history(first?.id as string, scope)).map((entry) => entry.newValue)).toEqual([normaliseText(text)]);
        // Writing back what was read is the same memory, not a second one.
        expect((await memory().add(stored?.memory as string, scope)).results.map((r) => [r.id, r.event])).toEqual([[first?.id, "NONE"]]);
      }),
      { numRuns: name === "sqlite" ? 120 : 40 },
    );
    // Nothing enqueue accepted fails later for its content.
    const flushed = await memory().flush({ timeoutMs: 30_000 });
    expect({ failed: flushed.failed, waiting: flushed.waiting }).toEqual({ failed: 0, waiting: 0 });
  });

  test("NUL and lone surrogates are refused in metadata, filters and idempotency keys too, by add, enqueue, search and getAll alike", async () => {
    const alice = { userId: `${name}-alice` };
    for (const bad of ["a\u0000b", "a\ud800b", "\udfff"]) {
      const cases: [string, () => Promise<unknown>, RegExp][] = [
        ["add: metadata value", () => memory().add("x", { ...alice, metadata: { note: bad } }), /metadata\.note contains/],
        [
          "add: nested metadata value",
          () => memory().add("x", { ...alice, metadata: { a: [{ b: bad }] } }),
          /metadata\.a\[0\]\.b contains/,
        ],
        ["add: metadata key", () => memory().add("x", { ...alice, metadata: { [bad]: 1 } }), /metadata has a key .* that contains/],
        ["enqueue: metadata value", () => memory().enqueue("x", { ...alice, metadata: { note: bad } }), /metadata\.note contains/],
        ["enqueue: metadata key", () => memory().enqueue("x", { ...alice, metadata: { [bad]: 1 } }), /metadata has a key/],
        ["enqueue: idempotency key", () => memory().enqueue("x", { ...alice, idempotencyKey: bad }), /idempotencyKey contains/],
        ["search: query", () => memory().search(bad, alice), /query contains/],
        ["search: filter value", () => memory().search("x", { ...alice, filters: { note: bad } }), /filters\.note contains/],
        ["getAll: filter key", () => memory().getAll({ ...alice, filters: { [bad]: 1 } }), /filters has a key/],
        ["get: memory id", () => memory().get(bad, alice), /memoryId must be a non-empty string id/],
      ];
      for (const [what, call, message] of cases) {
        const result = await outcome(call());
        const where = `${what} ${JSON.stringify(bad)}`;
        expect("refused" in result && InvalidInputError.isInstance(result.refused), `${where}: ${String(result)}`).toBe(true);
        expect((result as { refused: Error }).refused.message, where).toMatch(message);
      }
    }
    expect((await memory().getAll(alice)).results).toEqual([]);
    expect(await memory().pending(alice)).toEqual([]);
  });

  test("metadata keys named like Object.prototype members are stored as data, read back and filtered on exactly", async () => {
    const alice = { userId: `${name}-prototype-keys` };
    const metadata = {
      constructor: "c",
      toString: "t",
      valueOf: 1,
      hasOwnProperty: true,
      prototype: null,
      __defineGetter__: ["x"],
      nested: { constructor: { prototype: "deep" } },
    };
    // Two hours apart: not one speaker's run of messages, so two memories.
    const [added] = (await memory().add("Alice keeps odd metadata", { ...alice, metadata, timestamp: new Date(Date.now() - 7_200_000) }))
      .results;
    const queued = await memory().enqueue("Alice queues odd metadata", { ...alice, metadata });
    await memory().flush({ timeoutMs: 30_000 });
    expect(await memory().pending(alice)).toEqual([]);
    expect((await memory().get(added?.id as string, alice))?.metadata).toEqual(metadata);
    expect(queued.queued).toBe(true);
    for (const item of (await memory().getAll(alice)).results) expect(item.metadata).toEqual(metadata);
    const { results } = await memory().search("odd metadata", { ...alice, threshold: 0, filters: { constructor: "c", valueOf: 1 } });
    expect(results.map((item) => item.memory).sort()).toEqual(["Alice keeps odd metadata", "Alice queues odd metadata"]);
    expect((await memory().getAll({ ...alice, filters: { constructor: "other" } })).results).toEqual([]);
    expect((await memory().getAll({ ...alice, filters: { toString: "t", prototype: null } })).results).toHaveLength(2);
  });
});

function result(value: { refused: EngramError } | { value: unknown }): unknown {
  return "refused" in value ? value.refused : value.value;
}
