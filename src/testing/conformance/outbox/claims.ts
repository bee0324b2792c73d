import { describe, expect, test } from "vitest";
import { outboxEntryId } from "../../../history/outbox-entry-id.js";
import { enqueue, ids, type SuiteContext, turn } from "./fixtures.js";

/** Claims, leases, retries and the fencing of a claimed entry by its worker id. */
export function describeClaims({ fresh, clock }: SuiteContext): void {
  describe("claims and leases", () => {
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
      expect(await store.fail("a9-first", "w1", { error: "boom", retryAt: new Date(clock.now() - 1) })).toBe(true);
      // a9-first is due again and older than a9-second: it goes first.
      expect(ids(await store.claim({ workerId: "w3", limit: 10, leaseMs: 10_000 }))).toEqual(["a9-first"]);
    });

    test("perKey hands out up to that many of a key's oldest due entries in one claim, in order; limit counts keys", async () => {
      const store = await fresh();
      for (let i = 0; i < 5; i++) await enqueue(store, `u1-${i}`, { userId: "u1", ...(i % 2 ? { agentId: "a1" } : {}) });
      await enqueue(store, "u2-0", { userId: "u2" });
      await enqueue(store, "u3-0", { userId: "u3" });
      await enqueue(store, "u2-1", { userId: "u2" });
      const claimed = await store.claim({ workerId: "w1", limit: 2, leaseMs: 10_000, perKey: 3 });
      const byKey = (key: string) => ids(claimed.filter((entry) => entry.userId === key));
      // An implementation may hand out fewer per key, but always a key's oldest first, in order.
      expect(byKey("u1")).toEqual(["u1-0", "u1-1", "u1-2"].slice(0, byKey("u1").length));
      expect(byKey("u1").length).toBeGreaterThanOrEqual(1);
      expect(byKey("u2")).toEqual(["u2-0", "u2-1"].slice(0, byKey("u2").length));
      expect(byKey("u2").length).toBeGreaterThanOrEqual(1);
      expect(byKey("u3")).toEqual([]);
      expect(claimed.every((entry) => entry.status === "processing")).toBe(true);
      // Oldest first across keys too.
      expect([...claimed].sort((a, b) => a.createdAt.localeCompare(b.createdAt))).toEqual(claimed);
      // Nothing more of u1 or u2 while they are claimed: u3 only.
      expect(ids(await store.claim({ workerId: "w2", limit: 10, leaseMs: 10_000, perKey: 3 }))).toEqual(["u3-0"]);
      // Once they are done, u1's next entries, in order.
      for (const entry of claimed) expect(await store.complete(entry.id, "w1")).toBe(true);
      const next = ids(await store.claim({ workerId: "w3", limit: 10, leaseMs: 10_000, perKey: 10 })).filter((id) => id.startsWith("u1"));
      const left = ["u1-0", "u1-1", "u1-2", "u1-3", "u1-4"].filter((id) => !ids(claimed).includes(id));
      expect(next.length).toBeGreaterThanOrEqual(1);
      expect(next).toEqual(left.slice(0, next.length));
    });

    test("perKey never hands out a later entry of a key without the due ones before it, nor one not due", async () => {
      const store = await fresh();
      await enqueue(store, "k-0", { userId: "k" });
      await enqueue(store, "k-1", { userId: "k" });
      await enqueue(store, "k-2", { userId: "k" });
      await store.claim({ workerId: "w1", limit: 1, leaseMs: 10_000 });
      expect(await store.fail("k-0", "w1", { error: "later", retryAt: new Date(clock.now() + 60_000) })).toBe(true);
      // k-0 waits for its retry: the key's due entries go on without it, in order.
      const claimed = ids(await store.claim({ workerId: "w2", limit: 5, leaseMs: 10_000, perKey: 5 }));
      expect(claimed.length).toBeGreaterThanOrEqual(1);
      expect(claimed).toEqual(["k-1", "k-2"].slice(0, claimed.length));
    });

    test("concurrent claims by several workers never hand out one entry, or one key, twice", async () => {
      const store = await fresh();
      const users = 6;
      for (let i = 0; i < 24; i++)
        await store.enqueue({ id: `c${i}`, messages: turn(`c${i}`), scope: { userId: `u${i % users}` }, options: {} });
      const rounds = await Promise.all(Array.from({ length: 8 }, (_, w) => store.claim({ workerId: `w${w}`, limit: 3, leaseMs: 10_000 })));
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
      expect(await store.fail("later", "w1", { error: "Error: try later", retryAt: new Date(clock.now() + 60_000) })).toBe(true);
      expect(await store.fail("soon", "w1", { error: "Error: try soon", retryAt: new Date(clock.now() + 150) })).toBe(true);
      const [later] = await store.pending({ userId: "u1" });
      expect(later).toMatchObject({ status: "pending", attempts: 1, lastError: "Error: try later" });
      expect(Date.parse(later?.nextAttemptAt ?? "")).toBeGreaterThan(clock.now() + 50_000);
      expect(await store.claim({ workerId: "w2", limit: 10, leaseMs: 10_000 })).toEqual([]);
      clock.advance(200);
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
      clock.advance(150);
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
      clock.advance(80);
      expect(await store.renew("renewed", "w1", 10_000)).toBe(true);
      clock.advance(120);
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
  });
}
