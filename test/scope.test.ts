import { describe, expect, test } from "vitest";
import { objectEntries, readScope } from "../integrations/shared/scope.js";
import { InvalidInputError, InvalidScopeError, MemoryNotFoundError, MissingScopeError } from "../src/errors.js";
import type { Memory } from "../src/memory.js";
import { spiedMemory } from "./support/spies.js";

/** Merges a scope into a call's options; anything that is not an object is passed as the options themselves. */
function merge(scope: unknown, extra: Record<string, unknown> = {}): never {
  return (scope != null && typeof scope === "object" && !Array.isArray(scope) ? { ...scope, ...extra } : scope) as never;
}

/** Every public call that takes a scope, called with `scope` (and otherwise valid input). */
const calls: [string, (memory: Memory, scope: unknown, id: string) => Promise<unknown>][] = [
  ["add", (m, scope) => m.add("remember this", merge(scope))],
  ["search", (m, scope) => m.search("remember", merge(scope, { limit: 5 }))],
  ["get", (m, scope, id) => m.get(id, scope as never)],
  ["getAll", (m, scope) => m.getAll(merge(scope))],
  ["iterate", (m, scope) => m.iterate(merge(scope)).next()],
  ["update", (m, scope, id) => m.update(id, "new text", scope as never)],
  ["delete", (m, scope, id) => m.delete(id, merge(scope))],
  ["delete", (m, scope, id) => m.delete(id, merge(scope, { purge: true }))],
  ["deleteAll", (m, scope) => m.deleteAll(merge(scope))],
  ["deleteAll", (m, scope) => m.deleteAll(merge(scope, { purge: true }))],
  ["history", (m, scope, id) => m.history(id, scope as never)],
  ["enqueue", (m, scope) => m.enqueue("a turn", merge(scope))],
  ["pending", (m, scope) => m.pending(scope as never)],
  ["retryFailed", (m, scope) => m.retryFailed(scope as never)],
];

const missingScopes: unknown[] = [
  undefined,
  null,
  {},
  { userId: "" },
  { userId: "   " },
  { userId: undefined },
  { userId: null },
  { userId: "", agentId: "", runId: "" },
  { agentId: "\t" },
  "alice",
  42,
  [],
  ["alice"],
];

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected the call to be refused");
    },
    (error: unknown) => error,
  );
}

describe("MissingScopeError: at least one non-empty id on every call, before any work", () => {
  for (const [call, run] of calls) {
    test(`${call}()`, async () => {
      for (const scope of missingScopes) {
        const { memory, calls: made } = spiedMemory();
        const error = await rejection(run(memory, scope, "some-id"));
        const where = `${call} with ${JSON.stringify(scope) ?? String(scope)}`;
        expect(MissingScopeError.isInstance(error), where).toBe(true);
        expect((error as MissingScopeError).call, where).toBe(call);
        expect((error as Error).message, where).toMatch(/userId, agentId or runId/);
        expect(made, `${where}: the embedder and the stores were called`).toEqual([]);
        await memory.close();
      }
    });
  }

  test("the scope is checked before anything else: bad input with no scope is a MissingScopeError", async () => {
    const { memory, calls: made } = spiedMemory();
    for (const refused of [
      memory.add("", {} as never),
      memory.add([], { metadata: { userId: "x" } } as never),
      memory.search("", { limit: 1000 } as never),
      memory.get("", {}),
      memory.update("", "", {}),
      memory.delete("", { purge: "yes" } as never),
      memory.history(42 as never, {}),
      memory.enqueue(null as never, { idempotencyKey: "" } as never),
    ]) {
      expect(MissingScopeError.isInstance(await rejection(refused))).toBe(true);
    }
    expect(made).toEqual([]);
  });
});

describe("InvalidScopeError: misspelled keys name the right one; ids are trimmed, printable, 1-256 characters", () => {
  const invalidScopes: [unknown, RegExp][] = [
    [{ user_id: "alice" }, /"userId"/],
    [{ userID: "alice" }, /"userId"/],
    [{ userid: "alice" }, /"userId"/],
    [{ "user-id": "alice" }, /"userId"/],
    [{ UserId: "alice" }, /"userId"/],
    [{ user: "alice" }, /"userId"/],
    [{ USER_ID: "alice" }, /"userId"/],
    [{ agent_id: "coder" }, /"agentId"/],
    [{ agentID: "coder" }, /"agentId"/],
    [{ run_id: "r1" }, /"runId"/],
    [{ runID: "r1" }, /"runId"/],
    [{ userId: "alice", agent_id: "coder" }, /"agentId"/],
    [{ userId: "alice", user_id: "bob" }, /"userId"/],
    [{ userId: "alice", agentId: "" }, /agentId is empty/],
    [{ userId: "alice", runId: "  " }, /runId is empty/],
    [{ userId: "alice", agentId: null }, /agentId is empty/],
    [{ userId: " alice" }, /whitespace/],
    [{ userId: "alice\n" }, /whitespace/],
    [{ agentId: "coder\t" }, /whitespace/],
    [{ userId: "a".repeat(257) }, /at most 256/],
    [{ userId: "ali\u0000ce" }, /printable/],
    [{ userId: "ali\nce" }, /printable/],
    [{ userId: "ali\u001bce" }, /printable/],
    [{ userId: "ali\u200bce" }, /printable/],
    [{ userId: "ali\u2028ce" }, /printable/],
    [{ userId: "ali\ud800ce" }, /printable/],
    [{ runId: "\u007f" }, /printable/],
    [{ userId: 42 }, /must be a string/],
    [{ userId: { id: "alice" } }, /must be a string/],
    [{ userId: ["alice"] }, /must be a string/],
    [{ userId: true }, /must be a string/],
  ];

  for (const [call, run] of calls) {
    test(`${call}()`, async () => {
      for (const [scope, message] of invalidScopes) {
        const { memory, calls: made } = spiedMemory();
        const error = await rejection(run(memory, scope, "some-id"));
        const where = `${call} with ${JSON.stringify(scope)}`;
        expect(InvalidScopeError.isInstance(error), `${where}: ${String(error)}`).toBe(true);
        expect((error as Error).message, where).toMatch(message);
        expect(made, `${where}: the embedder and the stores were called`).toEqual([]);
        await memory.close();
      }
    });
  }

  test("unknown keys in a by-id call's scope are refused; in an options object they are an unknown option", async () => {
    const { memory, calls: made } = spiedMemory();
    for (const refused of [
      memory.get("x", { userId: "alice", tenant: "t" } as never),
      memory.update("x", "text", { userId: "alice", limit: 3 } as never),
      memory.history("x", { userId: "alice", purge: true } as never),
      memory.pending({ userId: "alice", status: "failed" } as never),
    ]) {
      const error = await rejection(refused);
      expect(InvalidScopeError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/userId, agentId and runId/);
    }
    for (const refused of [
      memory.add("x", { userId: "alice", tenant: "t" } as never),
      memory.search("x", { userId: "alice", tenant: "t" } as never),
      memory.deleteAll({ userId: "alice", everything: true } as never),
    ]) {
      const error = await rejection(refused);
      expect(InvalidInputError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/Unknown option/);
    }
    expect(made).toEqual([]);
  });

  test("valid ids at the edges are accepted and matched exactly", async () => {
    const { memory } = spiedMemory();
    const ids = ["a", "a".repeat(256), "Zoë 🎉", "alice smith", "ALICE", "alice", "al%ce", "al_ce", "😀".repeat(128)];
    for (const userId of ids) await memory.add(`memory of ${userId}`, { userId });
    for (const userId of ids) {
      const { results } = await memory.getAll({ userId });
      expect(
        results.map((r) => r.memory),
        userId,
      ).toEqual([`memory of ${userId}`]);
    }
  });
});

describe("AND semantics through every read", () => {
  test("{ userId } sees every agent and run of the user; adding ids narrows the slice", async () => {
    const { memory } = spiedMemory();
    const scopes = [
      { userId: "alice" },
      { userId: "alice", agentId: "coder" },
      { userId: "alice", agentId: "coder", runId: "r1" },
      { userId: "alice", agentId: "writer" },
      { userId: "alice", runId: "r1" },
      { userId: "bob", agentId: "coder" },
      { agentId: "coder" },
      { agentId: "coder", runId: "r1" },
      { runId: "r1" },
    ];
    const text = (scope: object) => `shared fact ${JSON.stringify(scope)}`;
    for (const scope of scopes) await memory.add(text(scope), scope);
    const queries = [
      ...scopes,
      { userId: "alice", agentId: "nobody" },
      { userId: "carol" },
      { agentId: "writer", runId: "r1" },
      { userId: "bob", runId: "r1" },
    ];
    for (const query of queries) {
      const expected = scopes
        .filter((scope) => Object.entries(query).every(([key, value]) => (scope as Record<string, string>)[key] === value))
        .map(text)
        .sort();
      const where = JSON.stringify(query);
      const { results: all } = await memory.getAll(query);
      expect(all.map((r) => r.memory).sort(), `getAll ${where}`).toEqual(expected);
      const { results: found } = await memory.search("shared fact", { ...query, limit: 100 });
      expect(found.map((r) => r.memory).sort(), `search ${where}`).toEqual(expected);
      const seen: string[] = [];
      for await (const item of memory.iterate(query)) seen.push(item.memory);
      expect(seen.sort(), `iterate ${where}`).toEqual(expected);
    }
  });
});

describe("a by-id call outside the scope behaves exactly like an unknown id, and leaves the memory untouched", () => {
  const outside = [
    { userId: "bob" },
    { userId: "alice", agentId: "writer" },
    { userId: "alice", agentId: "coder", runId: "r2" },
    { userId: "bob", agentId: "coder" },
    { agentId: "writer" },
    { runId: "r1" },
    { userId: "Alice" },
    { userId: "alice ".trim(), agentId: "Coder" },
  ];

  const describeError = (error: unknown, id: string) => ({
    name: (error as Error).name,
    code: (error as MemoryNotFoundError).code,
    message: (error as Error).message.replace(id, "<id>"),
    memoryId: (error as MemoryNotFoundError).memoryId === id,
  });

  test("get → null; update, delete, delete with purge and history → MemoryNotFoundError", async () => {
    const { memory, calls: made } = spiedMemory();
    const own = { userId: "alice", agentId: "coder" };
    const {
      results: [added],
    } = await memory.add("alice's private fact", { ...own, metadata: { tag: "x" } });
    const id = added?.id as string;
    const before = await memory.get(id, own);
    const historyBefore = await memory.history(id, own);
    const unknown = "00000000-0000-4000-8000-000000000000";

    for (const scope of outside) {
      made.length = 0;
      const where = JSON.stringify(scope);
      expect(await memory.get(id, scope), where).toBeNull();
      expect(await memory.get(unknown, scope)).toBeNull();
      for (const [call, run] of [
        ["update", (target: string) => memory.update(target, "overwritten by someone else", scope)],
        ["delete", (target: string) => memory.delete(target, scope)],
        ["delete purge", (target: string) => memory.delete(target, { ...scope, purge: true })],
        ["history", (target: string) => memory.history(target, scope)],
      ] as const) {
        const outOfScope = await rejection(run(id));
        const missing = await rejection(run(unknown));
        expect(MemoryNotFoundError.isInstance(outOfScope), `${call} ${where}`).toBe(true);
        expect(describeError(outOfScope, id), `${call} ${where}`).toEqual(describeError(missing, unknown));
      }
      // Nothing was written, embedded or erased.
      expect(
        made.filter((call) => /store\.(write|deleteMany|reset)|history\.(append|purge|purgePending|reset)|embedder\.embed/.test(call)),
        where,
      ).toEqual([]);
      expect(await memory.deleteAll(scope), where).toEqual({ deleted: 0 });
      expect(await memory.deleteAll({ ...scope, purge: true }), where).toEqual({ deleted: 0 });
    }
    expect(await memory.get(id, own)).toEqual(before);
    expect(await memory.get(id, { userId: "alice" })).toEqual(before);
    expect(await memory.history(id, own)).toEqual(historyBefore);
    const { results } = await memory.search("private fact", own);
    expect(results.map((r) => r.id)).toEqual([id]);
  });
});

describe("metadata can never set or change scope fields", () => {
  for (const key of ["userId", "agentId", "runId", "user_id", "agent_id", "run_id"]) {
    test(`metadata.${key} is refused on add and enqueue, and as a search or getAll filter; nothing is stored`, async () => {
      const { memory, calls: made } = spiedMemory();
      for (const refused of [
        memory.add("spoof", { userId: "alice", metadata: { [key]: "bob" } }),
        memory.enqueue("spoof", { userId: "alice", metadata: { [key]: "bob" } }),
        memory.search("spoof", { userId: "alice", filters: { [key]: "bob" } }),
        memory.getAll({ userId: "alice", filters: { [key]: "bob" } }),
      ]) {
        const error = await rejection(refused);
        expect(InvalidInputError.isInstance(error), String(error)).toBe(true);
        expect((error as Error).message).toMatch(/scope/);
      }
      expect(made).toEqual([]);
    });
  }

  test("scope fields of a memory come from its scope only, whatever its metadata holds", async () => {
    const { memory } = spiedMemory();
    const {
      results: [added],
    } = await memory.add("fact", { userId: "alice", metadata: { scope: { userId: "bob" }, owner: "bob", UserID: "bob" } });
    const item = await memory.get(added?.id as string, { userId: "alice" });
    expect(item).toMatchObject({ userId: "alice", metadata: { scope: { userId: "bob" }, owner: "bob", UserID: "bob" } });
    expect(item?.agentId).toBeUndefined();
    expect(await memory.get(added?.id as string, { userId: "bob" })).toBeNull();
    expect((await memory.getAll({ userId: "bob" })).results).toEqual([]);
  });
});

describe("scope is read from own properties only", () => {
  async function withBob() {
    const { memory, calls: made } = spiedMemory();
    const [bob] = (await memory.add("Bob's locker PIN is 4242", { userId: "bob" })).results;
    return { memory, made, bobId: bob?.id as string, bobState: () => memory.getAll({ userId: "bob" }) };
  }

  test('regression: an own "__proto__" key in search options no longer injects scope ids (it returned Bob\'s memory)', async () => {
    const { memory, made } = await withBob();
    made.length = 0;
    const error = await rejection(memory.search("PIN", JSON.parse('{"limit":5,"__proto__":{"userId":"bob"}}')));
    expect(MissingScopeError.isInstance(error), String(error)).toBe(true);
    expect(made).toEqual([]);
  });

  test('regression: options spread from a client body with "__proto__" no longer write into the scope it names', async () => {
    const { memory, bobState } = await withBob();
    const before = await bobState();
    const clientBody = JSON.parse('{"__proto__":{"userId":"bob"}}');
    const error = await rejection(memory.add("Alice's secret", { ...clientBody, agentId: "coder" }));
    expect(InvalidInputError.isInstance(error), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/Unknown option "__proto__" in add\(\)/);
    expect(await bobState()).toEqual(before);
    expect((await memory.getAll({ agentId: "coder" })).results).toEqual([]);
  });

  test('regression: scope keys named like Object.prototype members are unknown keys (the message printed "function Object() { [native code] }")', async () => {
    const { memory, bobId } = await withBob();
    for (const key of ["constructor", "toString", "valueOf", "hasOwnProperty", "__proto__", "__defineGetter__"]) {
      for (const [call, refused] of [
        ["get", () => memory.get(bobId, JSON.parse(`{"userId":"alice",${JSON.stringify(key)}:{"userId":"bob"}}`))],
        ["history", () => memory.history(bobId, JSON.parse(`{${JSON.stringify(key)}:"bob"}`))],
        ["update", () => memory.update(bobId, "changed", JSON.parse(`{"userId":"alice",${JSON.stringify(key)}:"bob"}`))],
      ] as const) {
        const error = await rejection(refused());
        expect(InvalidScopeError.isInstance(error), `${call} ${key}: ${String(error)}`).toBe(true);
        expect((error as Error).message).toBe(`Unknown key "${key}" in the scope of ${call}(). Scope keys are userId, agentId and runId.`);
      }
    }
    expect((await memory.get(bobId, { userId: "bob" }))?.memory).toBe("Bob's locker PIN is 4242");
  });

  test("regression: inherited properties are no scope ids and no consent (an inherited allScopes made pending() cover every scope)", async () => {
    const { memory, bobId } = await withBob();
    await memory.enqueue("Bob's queued turn", { userId: "bob" });
    await memory.enqueue("Alice's queued turn", { userId: "alice" });
    const inheritedAllScopes = Object.assign(Object.create({ allScopes: true }), { userId: "alice" });
    expect((await memory.pending(inheritedAllScopes)).map((turn) => turn.userId)).toEqual(["alice"]);
    expect(MissingScopeError.isInstance(await rejection(memory.get(bobId, Object.create({ userId: "bob" }))))).toBe(true);
    expect(MissingScopeError.isInstance(await rejection(memory.search("PIN", Object.create({ userId: "bob" }))))).toBe(true);
    const scopes = await rejection(memory.scopes(Object.assign(Object.create({ allScopes: true }), { note: 1 })));
    expect(InvalidInputError.isInstance(scopes), String(scopes)).toBe(true);
  });

  test('regression: filters with a "__proto__" key are refused (the key was dropped and every memory of the scope returned)', async () => {
    const { memory } = await withBob();
    await memory.add("tagged", { userId: "bob", metadata: { topic: "x" } });
    for (const refused of [
      memory.getAll({ userId: "bob", filters: JSON.parse('{"__proto__":"x"}') }),
      memory.search("tagged", { userId: "bob", filters: JSON.parse('{"topic":"x","__proto__":{"topic":"y"}}') }),
      memory.iterate({ userId: "bob", filters: JSON.parse('{"__proto__":"x"}') }).next(),
    ]) {
      const error = await rejection(refused);
      expect(InvalidInputError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/filters\.__proto__: "__proto__" cannot be a filter key/);
    }
  });

  test("regression: readScope ignores keys named like Object.prototype members (it threw a TypeError) and reads no inherited id", () => {
    for (const key of ["constructor", "toString", "valueOf", "__proto__", "hasOwnProperty"]) {
      const context = JSON.parse(`{"userId":"alice",${JSON.stringify(key)}:{"userId":"bob"}}`);
      expect({ ...readScope("run()", objectEntries(context)) }).toEqual({ userId: "alice" });
      const error = (() => {
        try {
          return readScope("run()", objectEntries(JSON.parse(`{${JSON.stringify(key)}:"bob"}`)));
        } catch (caught) {
          return caught;
        }
      })();
      expect(MissingScopeError.isInstance(error), `${key}: ${String(error)}`).toBe(true);
    }
    const inherited = Object.create({ userId: "bob" });
    expect(() => readScope("run()", objectEntries(inherited))).toThrow(MissingScopeError);
  });
});
