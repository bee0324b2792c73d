import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, inject, test } from "vitest";
import { inMemoryHistory } from "../src/history/in-memory-history.js";
import { outboxEntryId } from "../src/history/outbox-entry-id.js";
import { postgresHistory } from "../src/history/postgres-history.js";
import type { MemoryOptions } from "../src/memory.js";
import { Memory } from "../src/memory.js";
import type { Scope } from "../src/scope.js";
import { inMemoryStore } from "../src/stores/in-memory-store.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";
import { createDatabase } from "./support/databases.js";

// Idempotency keys are per scope, like everything else: the same key in two scopes is two turns,
// and whether a key was used says nothing about another scope.

const directory = mkdtempSync(join(tmpdir(), "engram-idempotency-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let runs = 0;

const histories: [string, () => Promise<{ dataDir: string; historyStore?: MemoryOptions["historyStore"] }>][] = [
  ["SQLite", async () => ({ dataDir: join(directory, `data-${runs++}`) })],
  ["in memory", async () => ({ dataDir: join(directory, `data-${runs++}`), historyStore: inMemoryHistory() })],
  [
    "PostgreSQL",
    async () => ({
      dataDir: join(directory, `data-${runs++}`),
      historyStore: postgresHistory({ connectionString: await createDatabase(inject("postgresUrl"), "idempotency") }),
    }),
  ],
];

const texts = async (memory: Memory, scope: Scope) => (await memory.getAll(scope)).results.map((item) => item.memory).sort();

describe.each(histories)("idempotency keys on %s history", (_name, setup) => {
  test("regression: Bob's turn with Alice's idempotency key was dropped (queued: false), telling Bob the key was used elsewhere", async () => {
    const memory = new Memory({ ...(await setup()), embedder: deterministicEmbedder(), writeBehind: { pollIntervalMs: 20 } });
    try {
      const alice = await memory.enqueue("Alice likes tea", { userId: "alice", idempotencyKey: "req-1" });
      const bob = await memory.enqueue("Bob likes coffee", { userId: "bob", idempotencyKey: "req-1" });
      expect(alice.queued).toBe(true);
      expect(bob.queued).toBe(true);
      expect(bob.id).not.toBe(alice.id);
      // A narrower scope of the same user is another scope too.
      const coder = await memory.enqueue("Alice codes in Rust", { userId: "alice", agentId: "coder", idempotencyKey: "req-1" });
      expect(coder.queued).toBe(true);
      // Within one scope a repeat is still a no-op, and gets the same id.
      expect(await memory.enqueue("Alice likes tea", { userId: "alice", idempotencyKey: "req-1" })).toEqual({ ...alice, queued: false });
      expect(await memory.enqueue("Bob likes coffee", { userId: "bob", idempotencyKey: "req-1" })).toEqual({ ...bob, queued: false });
      expect((await memory.pending({ userId: "bob" })).map((turn) => turn.id)).toEqual([bob.id]);

      expect(await memory.flush({ timeoutMs: 20_000 })).toEqual({ processed: 3, failed: 0, waiting: 0 });
      expect(await texts(memory, { userId: "alice" })).toEqual(["Alice codes in Rust", "Alice likes tea"]);
      expect(await texts(memory, { userId: "bob" })).toEqual(["Bob likes coffee"]);
      // Done: a repeat in the scope is still refused, and still does not concern the other.
      expect((await memory.enqueue("Bob likes coffee", { userId: "bob", idempotencyKey: "req-1" })).queued).toBe(false);
      expect((await memory.enqueue("Carol likes cocoa", { userId: "carol", idempotencyKey: "req-1" })).queued).toBe(true);
      expect(await memory.flush({ timeoutMs: 20_000 })).toMatchObject({ failed: 0, waiting: 0 });
      expect(await texts(memory, { userId: "bob" })).toEqual(["Bob likes coffee"]);
      expect(await texts(memory, { userId: "carol" })).toEqual(["Carol likes cocoa"]);
    } finally {
      await memory.close();
    }
  }, 30_000);
});

const id = fc.constantFrom("", "a", "b", 'a","b', "a\u0000", "null", "[", "1");
const optionalId = fc.option(id, { nil: undefined });
const scopeArbitrary = fc.record({ userId: optionalId, agentId: optionalId, runId: optionalId }).map((scope) => {
  const clean: Scope = {};
  for (const key of ["userId", "agentId", "runId"] as const) if (scope[key] !== undefined) clean[key] = scope[key];
  return clean;
});
const sameTurn = (a: [Scope, string], b: [Scope, string]) =>
  a[1] === b[1] && a[0].userId === b[0].userId && a[0].agentId === b[0].agentId && a[0].runId === b[0].runId;

test("outbox ids of two (scope, key) pairs are equal exactly when the scopes and keys are (absent ids distinct from empty ones)", () => {
  fc.assert(
    fc.property(fc.tuple(scopeArbitrary, id), fc.tuple(scopeArbitrary, id), (a, b) => {
      expect(outboxEntryId(...a) === outboxEntryId(...b)).toBe(sameTurn(a, b));
    }),
    { numRuns: 2000 },
  );
  expect(outboxEntryId({ userId: "a" }, "k")).not.toBe(outboxEntryId({ userId: "a", agentId: "" }, "k"));
  expect(outboxEntryId({ userId: "a" }, "k")).not.toBe(outboxEntryId({ agentId: "a" }, "k"));
});

test("any sequence of enqueues over overlapping scopes and keys queues a turn exactly when its scope has not used its key", async () => {
  const users = ["u0", "u1", undefined];
  const agents = ["a0", undefined];
  const turn = fc
    .record({ user: fc.constantFrom(...users), agent: fc.constantFrom(...agents), key: fc.constantFrom("k0", "k1", "k2") })
    .filter((t) => t.user !== undefined || t.agent !== undefined);
  await fc.assert(
    fc.asyncProperty(fc.array(turn, { minLength: 1, maxLength: 12 }), async (turns) => {
      const memory = new Memory({
        embedder: deterministicEmbedder(),
        vectorStore: inMemoryStore(),
        historyStore: inMemoryHistory(),
        writeBehind: { enabled: false },
      });
      try {
        const used = new Map<string, string>();
        for (const { user, agent, key } of turns) {
          const scope: Scope = {};
          if (user) scope.userId = user;
          if (agent) scope.agentId = agent;
          const name = JSON.stringify([user ?? null, agent ?? null, key]);
          const result = await memory.enqueue(`turn ${name}`, { ...scope, idempotencyKey: key });
          expect(result.queued, name).toBe(!used.has(name));
          if (used.has(name)) expect(result.id).toBe(used.get(name));
          else expect([...used.values()]).not.toContain(result.id);
          used.set(name, result.id);
          // Every queued turn is stored under the scope that enqueued it.
          for (const entry of await memory.pending(scope)) {
            expect(entry.messages[0]?.content).toMatch(
              `turn ${JSON.stringify([entry.userId ?? null, entry.agentId ?? null]).slice(0, -1)},`,
            );
          }
        }
        expect((await memory.pending({ allScopes: true })).length).toBe(used.size);
      } finally {
        await memory.close();
      }
    }),
    { numRuns: 60 },
  );
});
