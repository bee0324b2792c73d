import { describe, expect, test } from "vitest";
import { enqueue, ids, type SuiteContext, turn } from "./fixtures.js";

/** What the queue holds: enqueue, pending, completion, pruning, purging and reset. */
export function describeQueue({ fresh, clock }: SuiteContext): void {
  describe("queue", () => {
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
      await store.fail("p1", "w1", { error: "failed", retryAt: new Date(clock.now() + 60_000) });
      expect(await store.pruneDone(new Date(clock.now() - 60_000))).toBe(0);
      expect(await store.pruneDone(new Date(clock.now() + 60_000))).toBe(2);
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

    test("reset deletes every entry, pending or done", async () => {
      const store = await fresh();
      await enqueue(store, "r1", { userId: "u1" });
      await enqueue(store, "r2", { userId: "u2" });
      await store.claim({ workerId: "w1", limit: 1, leaseMs: 10_000 });
      expect(await store.complete("r1", "w1")).toBe(true);
      await store.reset();
      expect(await store.pending()).toEqual([]);
      expect(await store.statuses(["r1", "r2"])).toEqual(new Map());
      expect(await store.enqueue({ id: "r1", messages: turn("again"), scope: { userId: "u1" }, options: {} })).toBe(true);
    });
  });
}
