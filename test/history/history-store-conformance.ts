import { afterAll, afterEach, describe, expect, test } from "vitest";
import type { HistoryEntry, HistoryStore, Message } from "../../src/history/history-store.js";
import { outboxEntryId } from "../../src/history/outbox-entry-id.js";
import type { Scope } from "../../src/scope.js";

export interface HistoryStoreConformanceOptions {
  /** Shown in the test names, e.g. "sqliteHistory". */
  name: string;
  /** A new, EMPTY history store (a fresh file, schema or database). Called once per test; the suite inits and closes it. */
  create: () => Promise<HistoryStore> | HistoryStore;
  /** Runs once after every test of the suite (e.g. removes temporary directories, drops databases). */
  cleanup?: () => Promise<void> | void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let sequence = 0;

function entry(fields: Partial<HistoryEntry> & { memoryId: string } & Scope): HistoryEntry {
  const cleaned: Record<string, unknown> = {
    id: `h-${sequence++}`,
    event: "ADD",
    previousValue: null,
    newValue: `text of ${fields.memoryId}`,
    createdAt: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, sequence)).toISOString(),
    ...fields,
  };
  for (const key of ["userId", "agentId", "runId"]) if (cleaned[key] === undefined) delete cleaned[key];
  return cleaned as unknown as HistoryEntry;
}

const turn = (text: string): Message[] => [
  { role: "user", content: text },
  { role: "assistant", content: `reply to ${text}` },
];

async function enqueue(store: HistoryStore, id: string, scope: Scope, text = `turn ${id}`): Promise<boolean> {
  const queued = await store.enqueue({ id, messages: turn(text), scope, options: { metadata: { source: id } } });
  // Outbox order is by enqueue time: keep enqueues a millisecond apart so "oldest first" is well defined.
  await sleep(2);
  return queued;
}

function ids(entries: readonly { id: string }[]): string[] {
  return entries.map((e) => e.id);
}

/**
 * The shared conformance suite of the `HistoryStore` contract (src/history/history-store.ts):
 * the change log and the write-behind outbox with its leases and per-key serialisation.
 *
 * @example
 * testHistoryStore({ name: "sqliteHistory", create: () => sqliteHistory({ path: join(mkdtempSync(...), "h.db") }) });
 */
export function testHistoryStore({ name, create, cleanup }: HistoryStoreConformanceOptions): void {
  describe(`HistoryStore conformance: ${name}`, () => {
    const open: HistoryStore[] = [];

    async function fresh(): Promise<HistoryStore> {
      const store = await create();
      open.push(store);
      await store.init();
      await store.init();
      return store;
    }

    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((store) => store.close()));
    });
    afterAll(async () => {
      await cleanup?.();
    });

    describe("history", () => {
      test("append keeps every field, and is idempotent by entry id", async () => {
        const store = await fresh();
        const first = entry({ memoryId: "m1", userId: "u1", agentId: "a1", runId: "r1", newValue: 'first ✓ "quoted"' });
        await store.append([first]);
        await store.append([first, { ...first, newValue: "a replay must not change it" }]);
        const listed = await store.list("m1", { userId: "u1" });
        expect(listed).toEqual([first]);
        await store.append([]);
        expect(await store.list("m1", { userId: "u1" })).toHaveLength(1);
      });

      test("list returns one memory's entries inside the scope (AND of given ids), oldest first", async () => {
        const store = await fresh();
        const at = (second: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, second)).toISOString();
        const scope = { userId: "u1", agentId: "a1", runId: "r1" };
        const update = entry({ memoryId: "m1", ...scope, event: "UPDATE", previousValue: "v1", newValue: "v2", createdAt: at(20) });
        const add = entry({ memoryId: "m1", ...scope, event: "ADD", previousValue: null, newValue: "v1", createdAt: at(10) });
        const remove = entry({ memoryId: "m1", ...scope, event: "DELETE", previousValue: "v2", newValue: null, createdAt: at(30) });
        // Appended out of order, in separate calls.
        await store.append([update]);
        await store.append([remove, add]);
        await store.append([entry({ memoryId: "m2", ...scope }), entry({ memoryId: "m1-other", userId: "u2" })]);
        const expected = [add, update, remove];
        for (const visible of [
          { userId: "u1" },
          { agentId: "a1" },
          { runId: "r1" },
          { userId: "u1", agentId: "a1" },
          { userId: "u1", runId: "r1" },
          { agentId: "a1", runId: "r1" },
          scope,
        ]) {
          expect(await store.list("m1", visible), JSON.stringify(visible)).toEqual(expected);
        }
        for (const hidden of [
          { userId: "u2" },
          { userId: "u1", agentId: "a2" },
          { agentId: "a1", runId: "r2" },
          { runId: "r" },
          { userId: "U1" },
        ]) {
          expect(await store.list("m1", hidden), JSON.stringify(hidden)).toEqual([]);
        }
        expect(await store.list("unknown", { userId: "u1" })).toEqual([]);
      });

      test("an entry of a memory without a user is not visible to a user scope", async () => {
        const store = await fresh();
        await store.append([entry({ memoryId: "m-agent", agentId: "a1" })]);
        expect(await store.list("m-agent", { userId: "u1" })).toEqual([]);
        expect(await store.list("m-agent", { userId: "u1", agentId: "a1" })).toEqual([]);
        expect(await store.list("m-agent", { agentId: "a1" })).toHaveLength(1);
      });

      test("purge by memory ids nulls the text of those memories only and keeps the entries", async () => {
        const store = await fresh();
        const entries = [
          entry({ memoryId: "m1", userId: "u1", event: "ADD", newValue: "secret one" }),
          entry({ memoryId: "m1", userId: "u1", event: "UPDATE", previousValue: "secret one", newValue: "secret two" }),
          entry({ memoryId: "m2", userId: "u1", newValue: "kept" }),
          entry({ memoryId: "m3", userId: "u2", newValue: "also purged" }),
        ];
        await store.append(entries);
        await store.purge({ memoryIds: ["m1", "m3", "unknown"] });
        const m1 = await store.list("m1", { userId: "u1" });
        expect(m1.map((e) => [e.event, e.previousValue, e.newValue])).toEqual([
          ["ADD", null, null],
          ["UPDATE", null, null],
        ]);
        expect(ids(m1)).toEqual(ids(entries.slice(0, 2)));
        expect((await store.list("m2", { userId: "u1" }))[0]?.newValue).toBe("kept");
        expect((await store.list("m3", { userId: "u2" }))[0]?.newValue).toBeNull();
      });

      test("entries appended for a memory after its purge by id are kept without text (a write racing the purge)", async () => {
        const store = await fresh();
        await store.append([entry({ memoryId: "m1", userId: "u1", newValue: "my bank PIN is 4321" })]);
        await store.purge({ memoryIds: ["m1", "never-written"] });
        const late = entry({ memoryId: "m1", userId: "u1", event: "UPDATE", previousValue: "my bank PIN is 4321", newValue: "PIN 9999" });
        await store.append([late, entry({ memoryId: "never-written", userId: "u1", newValue: "also erased" })]);
        await store.append([entry({ memoryId: "m2", userId: "u1", newValue: "kept" })]);
        expect((await store.list("m1", { userId: "u1" })).map((e) => [e.event, e.previousValue, e.newValue])).toEqual([
          ["ADD", null, null],
          ["UPDATE", null, null],
        ]);
        expect((await store.list("never-written", { userId: "u1" }))[0]?.newValue).toBeNull();
        expect((await store.list("m2", { userId: "u1" }))[0]?.newValue).toBe("kept");
        // A purge by scope erases what is there, but later memories of the scope keep their text.
        await store.purge({ scope: { userId: "u1" } });
        await store.append([entry({ memoryId: "m3", userId: "u1", newValue: "said after the purge" })]);
        expect((await store.list("m3", { userId: "u1" }))[0]?.newValue).toBe("said after the purge");
        // reset forgets which memories were erased.
        await store.reset();
        await store.append([entry({ memoryId: "m1", userId: "u1", newValue: "new life" })]);
        expect((await store.list("m1", { userId: "u1" }))[0]?.newValue).toBe("new life");
      });

      test("purge by scope nulls the text of every entry inside the scope (AND), and no other", async () => {
        const store = await fresh();
        await store.append([
          entry({ memoryId: "m1", userId: "u1", agentId: "a1", newValue: "gone" }),
          entry({ memoryId: "m2", userId: "u1", agentId: "a2", newValue: "kept: other agent" }),
          entry({ memoryId: "m3", userId: "u2", agentId: "a1", newValue: "kept: other user" }),
          entry({ memoryId: "m4", agentId: "a1", newValue: "kept: no user" }),
        ]);
        await store.purge({ scope: { userId: "u1", agentId: "a1" } });
        expect((await store.list("m1", { userId: "u1" }))[0]?.newValue).toBeNull();
        expect((await store.list("m2", { userId: "u1" }))[0]?.newValue).toBe("kept: other agent");
        expect((await store.list("m3", { userId: "u2" }))[0]?.newValue).toBe("kept: other user");
        expect((await store.list("m4", { agentId: "a1" }))[0]?.newValue).toBe("kept: no user");
        await store.purge({ scope: { agentId: "a1" } });
        expect((await store.list("m3", { userId: "u2" }))[0]?.newValue).toBeNull();
        expect((await store.list("m4", { agentId: "a1" }))[0]?.newValue).toBeNull();
        expect((await store.list("m2", { userId: "u1" }))[0]?.newValue).toBe("kept: other agent");
      });
    });

    describe("outbox", () => {
      test("enqueue is idempotent by id and stores the turn as given", async () => {
        const store = await fresh();
        expect(
          await store.enqueue({ id: "t1", messages: turn("hello"), scope: { userId: "u1", runId: "r1" }, options: { infer: false } }),
        ).toBe(true);
        expect(await store.enqueue({ id: "t1", messages: turn("changed"), scope: { userId: "u2" }, options: {} })).toBe(false);
        const [pending] = await store.pending({ userId: "u1" });
        expect(pending).toMatchObject({
          id: "t1",
          messages: turn("hello"),
          userId: "u1",
          runId: "r1",
          options: { infer: false },
          status: "pending",
          attempts: 0,
        });
        expect(pending?.agentId).toBeUndefined();
        expect(Number.isNaN(Date.parse(pending?.createdAt ?? ""))).toBe(false);
        expect(Number.isNaN(Date.parse(pending?.nextAttemptAt ?? ""))).toBe(false);
        expect(await store.pending({ userId: "u2" })).toEqual([]);
        expect(await store.statuses(["t1", "unknown"])).toEqual(new Map([["t1", "pending"]]));
      });

      test("one idempotency key in two scopes (ids from outboxEntryId) is two entries, each claimed and completed on its own", async () => {
        const store = await fresh();
        const alice = outboxEntryId({ userId: "alice" }, "req-1");
        const bob = outboxEntryId({ userId: "bob" }, "req-1");
        expect(await store.enqueue({ id: alice, messages: turn("alice's turn"), scope: { userId: "alice" }, options: {} })).toBe(true);
        expect(await store.enqueue({ id: bob, messages: turn("bob's turn"), scope: { userId: "bob" }, options: {} })).toBe(true);
        expect(await store.enqueue({ id: bob, messages: turn("bob again"), scope: { userId: "bob" }, options: {} })).toBe(false);
        expect((await store.pending({ userId: "bob" })).map((e) => [e.id, e.messages[0]?.content])).toEqual([[bob, "bob's turn"]]);
        const claimed = await store.claim({ workerId: "w1", limit: 10, leaseMs: 10_000 });
        expect(ids(claimed).sort()).toEqual([alice, bob].sort());
        expect(await store.complete(bob, "w1")).toBe(true);
        expect(await store.statuses([alice, bob])).toEqual(
          new Map([
            [alice, "processing"],
            [bob, "done"],
          ]),
        );
      });

      test("claim hands out due entries oldest first, marks them processing, and respects limit", async () => {
        const store = await fresh();
        for (let i = 0; i < 4; i++) await enqueue(store, `t${i}`, { userId: `u${i}` });
        const [first] = await store.claim({ workerId: "w1", limit: 1, leaseMs: 10_000 });
        expect(first).toMatchObject({
          id: "t0",
          status: "processing",
          messages: turn("turn t0"),
          userId: "u0",
          options: { metadata: { source: "t0" } },
        });
        const rest = await store.claim({ workerId: "w2", limit: 10, leaseMs: 10_000 });
        expect(ids(rest)).toEqual(["t1", "t2", "t3"]);
        expect(await store.claim({ workerId: "w3", limit: 10, leaseMs: 10_000 })).toEqual([]);
        expect(await store.statuses(["t0", "t1"])).toEqual(
          new Map([
            ["t0", "processing"],
            ["t1", "processing"],
          ]),
        );
        expect((await store.pending({ userId: "u0" }))[0]?.status).toBe("processing");
      });

      test("one entry per lock key per claim, and none while another of the key is processing under a live lease", async () => {
        const store = await fresh();
        // Lock keys: user:u1 (3 turns, over several agents and runs), user:u2 (2), agent:a9 (2), run:r9 (1).
        await enqueue(store, "u1-first", { userId: "u1", agentId: "a1" });
        await enqueue(store, "u2-first", { userId: "u2" });
        await enqueue(store, "u1-second", { userId: "u1", agentId: "a2" });
        await enqueue(store, "a9-first", { agentId: "a9" });
        await enqueue(store, "u1-third", { userId: "u1", runId: "r9" });
        await enqueue(store, "a9-second", { agentId: "a9", runId: "r1" });
        await enqueue(store, "r9-first", { runId: "r9" });
        await enqueue(store, "u2-second", { userId: "u2", agentId: "a9" });
        const claimed = await store.claim({ workerId: "w1", limit: 10, leaseMs: 10_000 });
        expect(ids(claimed)).toEqual(["u1-first", "u2-first", "a9-first", "r9-first"]);
        // Another worker gets nothing: every key has a turn in progress.
        expect(await store.claim({ workerId: "w2", limit: 10, leaseMs: 10_000 })).toEqual([]);
        expect(await store.complete("u1-first", "w1")).toBe(true);
        expect(ids(await store.claim({ workerId: "w2", limit: 10, leaseMs: 10_000 }))).toEqual(["u1-second"]);
        expect(await store.fail("a9-first", "w1", { error: "boom", retryAt: new Date(Date.now() - 1) })).toBe(true);
        // a9-first is due again and older than a9-second: it goes first.
        expect(ids(await store.claim({ workerId: "w3", limit: 10, leaseMs: 10_000 }))).toEqual(["a9-first"]);
      });

      test("concurrent claims by several workers never hand out one entry, or one key, twice", async () => {
        const store = await fresh();
        const users = 6;
        for (let i = 0; i < 24; i++)
          await store.enqueue({ id: `c${i}`, messages: turn(`c${i}`), scope: { userId: `u${i % users}` }, options: {} });
        const rounds = await Promise.all(
          Array.from({ length: 8 }, (_, w) => store.claim({ workerId: `w${w}`, limit: 3, leaseMs: 10_000 })),
        );
        const claimed = rounds.flat();
        expect(new Set(ids(claimed)).size).toBe(claimed.length);
        expect(new Set(claimed.map((e) => e.userId)).size).toBe(claimed.length);
        expect(claimed).toHaveLength(users);
      });

      test("fail with retryAt puts the entry back to pending, not claimable before its time", async () => {
        const store = await fresh();
        await enqueue(store, "later", { userId: "u1" });
        await enqueue(store, "soon", { userId: "u2" });
        await store.claim({ workerId: "w1", limit: 10, leaseMs: 10_000 });
        expect(await store.fail("later", "w1", { error: "Error: try later", retryAt: new Date(Date.now() + 60_000) })).toBe(true);
        expect(await store.fail("soon", "w1", { error: "Error: try soon", retryAt: new Date(Date.now() + 150) })).toBe(true);
        const [later] = await store.pending({ userId: "u1" });
        expect(later).toMatchObject({ status: "pending", attempts: 1, lastError: "Error: try later" });
        expect(Date.parse(later?.nextAttemptAt ?? "")).toBeGreaterThan(Date.now() + 50_000);
        expect(await store.claim({ workerId: "w2", limit: 10, leaseMs: 10_000 })).toEqual([]);
        await sleep(200);
        const [again] = await store.claim({ workerId: "w2", limit: 10, leaseMs: 10_000 });
        expect(again).toMatchObject({ id: "soon", attempts: 1, lastError: "Error: try soon", status: "processing" });
        expect(await store.claim({ workerId: "w3", limit: 10, leaseMs: 10_000 })).toEqual([]);
      });

      test("fail without retryAt ends the entry failed: kept, visible, never claimed, until retryFailed", async () => {
        const store = await fresh();
        await enqueue(store, "doomed", { userId: "u1", agentId: "a1" });
        await enqueue(store, "doomed-2", { userId: "u2" });
        await store.claim({ workerId: "w1", limit: 10, leaseMs: 10_000 });
        expect(await store.fail("doomed", "w1", { error: "EmbeddingError: down" })).toBe(true);
        expect(await store.fail("doomed-2", "w1", { error: "EmbeddingError: down" })).toBe(true);
        expect(await store.statuses(["doomed"])).toEqual(new Map([["doomed", "failed"]]));
        const [failed] = await store.pending({ userId: "u1" });
        expect(failed).toMatchObject({
          id: "doomed",
          status: "failed",
          attempts: 1,
          lastError: "EmbeddingError: down",
          messages: turn("turn doomed"),
        });
        expect(await store.claim({ workerId: "w2", limit: 10, leaseMs: 10_000 })).toEqual([]);
        // retryFailed is scoped (AND): other scopes stay failed.
        expect(await store.retryFailed({ userId: "u1", agentId: "a2" })).toBe(0);
        expect(await store.retryFailed({ userId: "u1" })).toBe(1);
        expect(await store.statuses(["doomed", "doomed-2"])).toEqual(
          new Map([
            ["doomed", "pending"],
            ["doomed-2", "failed"],
          ]),
        );
        const [retried] = await store.claim({ workerId: "w2", limit: 10, leaseMs: 10_000 });
        expect(retried).toMatchObject({ id: "doomed", attempts: 1 });
        expect(await store.retryFailed()).toBe(1);
        expect(await store.retryFailed()).toBe(0);
        expect(await store.statuses(["doomed-2"])).toEqual(new Map([["doomed-2", "pending"]]));
      });

      test("an expired lease lets another worker claim the entry, counting the lost attempt; the old worker is fenced off", async () => {
        const store = await fresh();
        await enqueue(store, "leased", { userId: "u1" });
        const [claimed] = await store.claim({ workerId: "crashed", limit: 10, leaseMs: 100 });
        expect(claimed?.attempts).toBe(0);
        expect(await store.savePlan("leased", "crashed", '{"plan":1}')).toBe(true);
        expect(await store.claim({ workerId: "w2", limit: 10, leaseMs: 10_000 })).toEqual([]);
        await sleep(150);
        const [reclaimed] = await store.claim({ workerId: "w2", limit: 10, leaseMs: 10_000 });
        expect(reclaimed).toMatchObject({ id: "leased", status: "processing", attempts: 1, plan: '{"plan":1}' });
        expect(reclaimed?.lastError).toEqual(expect.any(String));
        // The worker that lost its lease changes nothing any more.
        expect(await store.renew("leased", "crashed", 10_000)).toBe(false);
        expect(await store.savePlan("leased", "crashed", '{"plan":2}')).toBe(false);
        expect(await store.fail("leased", "crashed", { error: "late" })).toBe(false);
        expect(await store.complete("leased", "crashed")).toBe(false);
        expect(await store.statuses(["leased"])).toEqual(new Map([["leased", "processing"]]));
        expect(await store.complete("leased", "w2")).toBe(true);
        expect(await store.statuses(["leased"])).toEqual(new Map([["leased", "done"]]));
      });

      test("renew keeps a lease alive past its first expiry", async () => {
        const store = await fresh();
        await enqueue(store, "renewed", { userId: "u1" });
        await store.claim({ workerId: "w1", limit: 1, leaseMs: 150 });
        await sleep(80);
        expect(await store.renew("renewed", "w1", 10_000)).toBe(true);
        await sleep(120);
        expect(await store.claim({ workerId: "w2", limit: 10, leaseMs: 10_000 })).toEqual([]);
        expect(await store.renew("renewed", "w2", 10_000)).toBe(false);
        expect(await store.renew("unknown", "w1", 10_000)).toBe(false);
      });

      test("savePlan, complete and fail are fenced by worker id and need a claimed entry", async () => {
        const store = await fresh();
        await enqueue(store, "fenced", { userId: "u1" });
        // Not claimed yet: nobody owns it.
        expect(await store.savePlan("fenced", "w1", "p")).toBe(false);
        expect(await store.complete("fenced", "w1")).toBe(false);
        expect(await store.fail("fenced", "w1", { error: "x" })).toBe(false);
        await store.claim({ workerId: "w1", limit: 1, leaseMs: 10_000 });
        expect(await store.savePlan("fenced", "intruder", "p")).toBe(false);
        expect(await store.complete("fenced", "intruder")).toBe(false);
        expect(await store.fail("fenced", "intruder", { error: "x" })).toBe(false);
        expect((await store.pending({ userId: "u1" }))[0]).toMatchObject({ status: "processing", attempts: 0 });
        expect((await store.pending({ userId: "u1" }))[0]?.plan).toBeUndefined();
        expect(await store.savePlan("fenced", "w1", "first plan")).toBe(true);
        // A plan is saved once: the first decision stands.
        expect(await store.savePlan("fenced", "w1", "second plan")).toBe(false);
        expect((await store.pending({ userId: "u1" }))[0]?.plan).toBe("first plan");
        expect(await store.complete("fenced", "w1")).toBe(true);
        expect(await store.complete("fenced", "w1")).toBe(false);
        expect(await store.fail("fenced", "w1", { error: "after done" })).toBe(false);
        expect(await store.statuses(["fenced"])).toEqual(new Map([["fenced", "done"]]));
      });

      test("discardPlan forgets a claimed entry's plan so it can be decided again, fenced by worker id", async () => {
        const store = await fresh();
        await enqueue(store, "redo", { userId: "u1" });
        expect(await store.discardPlan("redo", "w1")).toBe(false);
        await store.claim({ workerId: "w1", limit: 1, leaseMs: 10_000 });
        expect(await store.savePlan("redo", "w1", "stale plan")).toBe(true);
        expect(await store.discardPlan("redo", "intruder")).toBe(false);
        expect((await store.pending({ userId: "u1" }))[0]?.plan).toBe("stale plan");
        expect(await store.discardPlan("redo", "w1")).toBe(true);
        expect((await store.pending({ userId: "u1" }))[0]?.plan).toBeUndefined();
        expect(await store.savePlan("redo", "w1", "fresh plan")).toBe(true);
        expect((await store.pending({ userId: "u1" }))[0]).toMatchObject({ status: "processing", plan: "fresh plan" });
      });

      test("complete erases the turn: done entries are not pending, never claimed, and not matched by content", async () => {
        const store = await fresh();
        await store.enqueue({ id: "finished", messages: turn("a very private sentence"), scope: { userId: "u1" }, options: {} });
        await store.claim({ workerId: "w1", limit: 1, leaseMs: 10_000 });
        await store.savePlan("finished", "w1", "plan mentioning a very private sentence");
        expect(await store.complete("finished", "w1")).toBe(true);
        expect(await store.pending({ userId: "u1" })).toEqual([]);
        expect(await store.pending()).toEqual([]);
        expect(await store.claim({ workerId: "w2", limit: 10, leaseMs: 1 })).toEqual([]);
        expect(await store.purgePending({ scope: { userId: "u1" }, containing: "private sentence" })).toBe(0);
        expect(await store.enqueue({ id: "finished", messages: turn("replayed"), scope: { userId: "u1" }, options: {} })).toBe(false);
        expect(await store.statuses(["finished"])).toEqual(new Map([["finished", "done"]]));
      });

      test("pending lists entries that are not done inside the scope (AND), or of every scope, oldest first", async () => {
        const store = await fresh();
        await enqueue(store, "p1", { userId: "u1", agentId: "a1" });
        await enqueue(store, "p2", { userId: "u1", agentId: "a2" });
        await enqueue(store, "p3", { userId: "u2", agentId: "a1" });
        await enqueue(store, "p4", { agentId: "a1", runId: "r1" });
        await enqueue(store, "p5", { userId: "u1", agentId: "a1", runId: "r1" });
        expect(ids(await store.pending({ userId: "u1" }))).toEqual(["p1", "p2", "p5"]);
        expect(ids(await store.pending({ userId: "u1", agentId: "a1" }))).toEqual(["p1", "p5"]);
        expect(ids(await store.pending({ agentId: "a1" }))).toEqual(["p1", "p3", "p4", "p5"]);
        expect(ids(await store.pending({ runId: "r1" }))).toEqual(["p4", "p5"]);
        expect(ids(await store.pending({ agentId: "a1", runId: "r1" }))).toEqual(["p4", "p5"]);
        expect(ids(await store.pending({ userId: "u3" }))).toEqual([]);
        expect(ids(await store.pending())).toEqual(["p1", "p2", "p3", "p4", "p5"]);
      });

      test("purgePending by scope deletes every entry inside it, done traces included, and counts them", async () => {
        const store = await fresh();
        await enqueue(store, "x1", { userId: "u1", agentId: "a1" });
        await enqueue(store, "x2", { userId: "u1", agentId: "a2" });
        await enqueue(store, "x3", { userId: "u2", agentId: "a1" });
        await enqueue(store, "x4", { agentId: "a1" });
        await store.claim({ workerId: "w1", limit: 10, leaseMs: 10_000 });
        await store.complete("x1", "w1");
        await store.fail("x2", "w1", { error: "failed" });
        expect(await store.purgePending({ scope: { userId: "u1", agentId: "a1" } })).toBe(1);
        expect(await store.statuses(["x1"])).toEqual(new Map());
        // A purged id can be enqueued again: nothing of it is left.
        expect(await store.enqueue({ id: "x1", messages: turn("again"), scope: { userId: "u1", agentId: "a1" }, options: {} })).toBe(true);
        expect(await store.purgePending({ scope: { userId: "u1" } })).toBe(2);
        expect(ids(await store.pending())).toEqual(["x3", "x4"]);
      });

      test("pruneDone, when the store has it, deletes only done traces enqueued before the cut-off", async () => {
        const store = await fresh();
        if (!store.pruneDone) return expect(store.pruneDone).toBeUndefined();
        for (const id of ["d1", "d2", "f1", "p1"]) await enqueue(store, id, { userId: `u-${id}` });
        await store.claim({ workerId: "w1", limit: 10, leaseMs: 10_000 });
        await store.complete("d1", "w1");
        await store.complete("d2", "w1");
        await store.fail("f1", "w1", { error: "failed" });
        await store.fail("p1", "w1", { error: "failed", retryAt: new Date(Date.now() + 60_000) });
        expect(await store.pruneDone(new Date(Date.now() - 60_000))).toBe(0);
        expect(await store.pruneDone(new Date(Date.now() + 60_000))).toBe(2);
        expect(await store.statuses(["d1", "d2", "f1", "p1"])).toEqual(
          new Map([
            ["f1", "failed"],
            ["p1", "pending"],
          ]),
        );
      });

      test("purgePending with containing deletes only not-done entries of the scope whose message contents hold the text", async () => {
        const store = await fresh();
        const tricky = 'my "secret" 50%_off\\path\nline two ✓';
        await store.enqueue({
          id: "y1",
          messages: [{ role: "user", content: `before ${tricky} after` }],
          scope: { userId: "u1" },
          options: {},
        });
        await store.enqueue({ id: "y2", messages: [{ role: "user", content: "unrelated" }], scope: { userId: "u1" }, options: {} });
        await store.enqueue({ id: "y3", messages: [{ role: "assistant", content: tricky }], scope: { userId: "u2" }, options: {} });
        await store.enqueue({ id: "y4", messages: [{ role: "user", content: "my secret 50 off" }], scope: { userId: "u1" }, options: {} });
        expect(await store.purgePending({ scope: { userId: "u1" }, containing: tricky })).toBe(1);
        expect(ids(await store.pending())).toEqual(["y2", "y3", "y4"]);
        expect(await store.purgePending({ scope: { userId: "u1" }, containing: "nowhere" })).toBe(0);
      });

      test("regression: purgePending containing a word of the stored message format (role, content, user) matched every turn", async () => {
        const store = await fresh();
        await store.enqueue({ id: "z1", messages: [{ role: "user", content: "hello" }], scope: { userId: "u1" }, options: {} });
        await store.enqueue({ id: "z2", messages: [{ role: "assistant", content: "the reply" }], scope: { userId: "u1" }, options: {} });
        for (const text of ["role", "content", '"role":"user"', "assistant", '","', "{", "user", "u1"]) {
          expect(await store.purgePending({ scope: { userId: "u1" }, containing: text }), text).toBe(0);
        }
        expect(ids(await store.pending({ userId: "u1" }))).toEqual(["z1", "z2"]);
        expect(await store.purgePending({ scope: { userId: "u1" }, containing: "reply" })).toBe(1);
        expect(ids(await store.pending({ userId: "u1" }))).toEqual(["z1"]);
      });

      test("reset deletes all history and outbox entries", async () => {
        const store = await fresh();
        await store.append([entry({ memoryId: "m1", userId: "u1" })]);
        await enqueue(store, "r1", { userId: "u1" });
        await store.reset();
        expect(await store.list("m1", { userId: "u1" })).toEqual([]);
        expect(await store.pending()).toEqual([]);
        expect(await store.statuses(["r1"])).toEqual(new Map());
      });
    });
  });
}
