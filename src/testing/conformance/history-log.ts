import { afterAll, afterEach, describe, expect, test } from "vitest";
import { type HistoryEntry, type HistoryLog, isHistoryScopeEnumerable } from "../../history/history-log.js";
import type { Scope } from "../../scope.js";

export interface HistoryLogConformanceOptions {
  /** Shown in the test names, e.g. "sqliteHistory". */
  name: string;
  /** A new, EMPTY history log (a fresh file, schema or database). Called once per test; the suite inits and closes it. */
  create: () => Promise<HistoryLog> | HistoryLog;
  /** Runs once after every test of the suite (e.g. removes temporary directories, drops databases). @default nothing */
  cleanup?: () => Promise<void> | void;
}

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

function ids(entries: readonly { id: string }[]): string[] {
  return entries.map((e) => e.id);
}

/**
 * The conformance suite of the `HistoryLog` contract: idempotent appends, reads by scope (AND of
 * the given ids), oldest first, and purges that erase text for good, also from entries appended
 * after a purge by id; `entryScopes` when the log has the `HistoryScopeEnumerable` capability. Call it at the top level of a vitest test file.
 *
 * @example
 * import { testHistoryLog } from "engram/test/conformance";
 *
 * testHistoryLog({ name: "myHistoryLog", create: () => myHistoryLog({ url, schema: `s_${Date.now()}_${Math.random()}` }) });
 */
export function testHistoryLog({ name, create, cleanup }: HistoryLogConformanceOptions): void {
  describe(`HistoryLog conformance: ${name}`, () => {
    const open: HistoryLog[] = [];
    const fresh = async () => {
      const store = await create();
      open.push(store);
      await store.init();
      await store.init();
      return store;
    };

    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((store) => store.close()));
    });
    afterAll(async () => {
      await cleanup?.();
    });

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

    test("reset deletes every entry of every scope", async () => {
      const store = await fresh();
      await store.append([entry({ memoryId: "m1", userId: "u1" }), entry({ memoryId: "m2", agentId: "a1" })]);
      await store.reset();
      expect(await store.list("m1", { userId: "u1" })).toEqual([]);
      expect(await store.list("m2", { agentId: "a1" })).toEqual([]);
      await store.append([entry({ memoryId: "m1", userId: "u1", newValue: "after the reset" })]);
      expect((await store.list("m1", { userId: "u1" })).map((e) => e.newValue)).toEqual(["after the reset"]);
    });

    test("entryScopes (when the log has it): each exact scope of the entries whose id starts with the prefix, inside the scope", async () => {
      const store = await fresh();
      if (!isHistoryScopeEnumerable(store)) return;
      await store.append([
        entry({ memoryId: "p:1", userId: "u1" }),
        entry({ memoryId: "p:1", userId: "u1" }),
        entry({ memoryId: "p:2", userId: "u1", agentId: "a1" }),
        entry({ memoryId: "p:3", agentId: "a1", runId: "r1" }),
        // Not the prefix: a longer id that starts differently, and wildcard characters taken literally.
        entry({ memoryId: "px1", userId: "u2" }),
        entry({ memoryId: "m1", userId: "u3" }),
        entry({ memoryId: "p%", userId: "u4" }),
      ]);
      const sorted = (scopes: Scope[]) => scopes.map((scope) => JSON.stringify([scope.userId, scope.agentId, scope.runId])).sort();
      const exact = (scopes: Scope[]) => scopes.map((scope) => ({ ...scope }));
      expect(sorted(await store.entryScopes("p:", {}))).toEqual(
        sorted([{ userId: "u1" }, { userId: "u1", agentId: "a1" }, { agentId: "a1", runId: "r1" }]),
      );
      expect(exact(await store.entryScopes("p:", { userId: "u1", agentId: "a1" }))).toEqual([{ userId: "u1", agentId: "a1" }]);
      expect(sorted(await store.entryScopes("p:", { agentId: "a1" }))).toEqual(
        sorted([
          { userId: "u1", agentId: "a1" },
          { agentId: "a1", runId: "r1" },
        ]),
      );
      expect(await store.entryScopes("p:", { userId: "u2" })).toEqual([]);
      expect(exact(await store.entryScopes("p%", {}))).toEqual([{ userId: "u4" }]);
    });
  });
}
