import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { postgresHistory } from "../src/history/postgres-history.js";
import { InvalidInputError, Memory, MemoryNotFoundError, MissingScopeError } from "../src/index.js";
import { estimateTokens } from "../src/profile.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../src/testing/index.js";
import { createDatabase } from "./support/databases.js";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const backends: [string, () => Promise<{ memory: Memory; dataDir?: string }>][] = [
  [
    "SQLite (the default)",
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "engram-profile-"));
      dirs.push(dataDir);
      return { memory: new Memory({ dataDir, embedder: deterministicEmbedder() }), dataDir };
    },
  ],
  [
    "PostgreSQL history",
    async () => {
      const url = await createDatabase(inject("postgresUrl"), "profile");
      return {
        memory: new Memory({
          embedder: deterministicEmbedder(),
          vectorStore: inMemoryStore(),
          historyStore: postgresHistory({ connectionString: url }),
        }),
      };
    },
  ],
];

describe.each(backends)("memory.profile on %s", (_, create) => {
  let memory: Memory;
  let dataDir: string | undefined;
  beforeAll(async () => {
    ({ memory, dataDir } = await create());
    return () => memory.close();
  });

  test("set, merge fields, clear: each change is in profileHistory with the text before and after", async () => {
    const alice = { userId: "alice-1" };
    expect(await memory.profile(alice)).toBeNull();
    expect(await memory.profileHistory(alice)).toEqual([]);
    const set = await memory.setProfile(alice, "name: Ana\ndiet: vegetarian");
    expect(set).toMatchObject({ text: "name: Ana\ndiet: vegetarian", fields: { name: "Ana", diet: "vegetarian" } });
    const merged = await memory.setProfile(alice, { language: "French", diet: null, name: "Ana María" });
    expect(merged?.text).toBe("name: Ana María\nlanguage: French");
    expect(await memory.profile(alice)).toEqual(merged);
    // No change, no entry.
    await memory.setProfile(alice, "name: Ana María\nlanguage: French");
    expect(await memory.setProfile(alice, null)).toBeNull();
    expect(await memory.profile(alice)).toBeNull();
    const history = await memory.profileHistory(alice);
    expect(history.map((entry) => [entry.event, entry.previousValue, entry.newValue])).toEqual([
      ["ADD", null, "name: Ana\ndiet: vegetarian"],
      ["UPDATE", "name: Ana\ndiet: vegetarian", "name: Ana María\nlanguage: French"],
      ["DELETE", "name: Ana María\nlanguage: French", null],
    ]);
  });

  test("a profile belongs to exactly one scope: no other user's, and no wider or narrower scope's", async () => {
    await memory.setProfile({ userId: "ana-2" }, "name: Ana");
    await memory.setProfile({ userId: "ana-2", agentId: "chef" }, "diet: vegetarian");
    expect((await memory.profile({ userId: "ana-2" }))?.text).toBe("name: Ana");
    expect((await memory.profile({ userId: "ana-2", agentId: "chef" }))?.text).toBe("diet: vegetarian");
    expect(await memory.profile({ userId: "ana-2", agentId: "coder" })).toBeNull();
    expect(await memory.profile({ agentId: "chef" })).toBeNull();
    expect(await memory.profile({ userId: "bob-2" })).toBeNull();
    expect(await memory.profileHistory({ userId: "bob-2" })).toEqual([]);
    // Profiles are not memories: searches and listings never return them.
    expect((await memory.search("Ana vegetarian", { userId: "ana-2" })).results).toEqual([]);
    expect((await memory.getAll({ userId: "ana-2" })).results).toEqual([]);
  });

  test("profileScopes lists the exact scopes with a profile inside the given scope (AND of its ids), or every scope's with allScopes", async () => {
    const tag = `ps-${Math.random().toString(36).slice(2, 8)}`;
    const ana = { userId: `${tag}-ana` };
    const chef = { ...ana, agentId: "chef" };
    const bob = { userId: `${tag}-bob` };
    const coder = { agentId: `${tag}-coder` };
    for (const scope of [ana, chef, bob, coder]) await memory.setProfile(scope, "name: x");
    const sorted = (scopes: object[]) => scopes.map((scope) => JSON.stringify(scope)).sort();

    expect(sorted(await memory.profileScopes(ana))).toEqual(sorted([ana, chef]));
    expect(sorted(await memory.profileScopes(chef))).toEqual(sorted([chef]));
    expect(await memory.profileScopes({ userId: `${tag}-nobody` })).toEqual([]);
    const all = sorted(await memory.profileScopes({ allScopes: true }));
    for (const scope of sorted([ana, chef, bob, coder])) expect(all).toContain(scope);
    await expect(memory.profileScopes({} as never)).rejects.toThrow(MissingScopeError);
  });

  test("deleteAll with purge erases the text of every profile inside the scope; a new profile can be set afterwards", async () => {
    await memory.setProfile({ userId: "carol-3" }, "name: Carol");
    await memory.setProfile({ userId: "carol-3", agentId: "chef" }, "allergy: peanuts");
    await memory.setProfile({ userId: "dave-3" }, "name: Dave");
    await memory.deleteAll({ userId: "carol-3", purge: true });
    expect(await memory.profile({ userId: "carol-3" })).toBeNull();
    expect(await memory.profile({ userId: "carol-3", agentId: "chef" })).toBeNull();
    for (const entry of await memory.profileHistory({ userId: "carol-3", agentId: "chef" })) {
      expect([entry.previousValue, entry.newValue]).toEqual([null, null]);
    }
    expect((await memory.profile({ userId: "dave-3" }))?.text).toBe("name: Dave");
    await memory.setProfile({ userId: "carol-3" }, "name: Caroline");
    expect((await memory.profile({ userId: "carol-3" }))?.text).toBe("name: Caroline");
    if (dataDir) {
      await memory.close();
      expect(readFileSync(join(dataDir, "engram.db")).includes("peanuts")).toBe(false);
      ({ memory } = { memory: new Memory({ dataDir, embedder: deterministicEmbedder() }) });
    }
  });
});

describe("memory.profile input", () => {
  const memory = new Memory({ embedder: deterministicEmbedder(), vectorStore: inMemoryStore(), historyStore: inMemoryHistory() });
  afterAll(() => memory.close());

  test("no scope is MissingScopeError; a misspelled or __proto__ scope key is refused", async () => {
    await expect(memory.profile({})).rejects.toBeInstanceOf(MissingScopeError);
    await expect(memory.setProfile({}, "x")).rejects.toBeInstanceOf(MissingScopeError);
    await expect(memory.profileHistory({})).rejects.toBeInstanceOf(MissingScopeError);
    await expect(memory.profile({ user_id: "a" } as never)).rejects.toThrow(/userId/);
    await expect(memory.setProfile(JSON.parse('{"__proto__": {"userId": "bob"}}'), "x")).rejects.toThrow(/__proto__/);
    expect(await memory.profile({ userId: "bob" })).toBeNull();
  });

  test("a profile over its token budget is refused with a typed error and the old profile is kept", async () => {
    await memory.setProfile({ userId: "erin" }, "name: Erin");
    const long = "likes ".repeat(400);
    await expect(memory.setProfile({ userId: "erin" }, long)).rejects.toThrow(InvalidInputError);
    await expect(memory.setProfile({ userId: "erin" }, long)).rejects.toThrow(/budget is 300.*profile\.maxTokens/);
    expect((await memory.profile({ userId: "erin" }))?.text).toBe("name: Erin");
    const small = new Memory({
      embedder: deterministicEmbedder(),
      vectorStore: inMemoryStore(),
      historyStore: inMemoryHistory(),
      profile: { maxTokens: 10 },
    });
    await expect(small.setProfile({ userId: "erin" }, "a fairly long profile text, surely more than ten tokens")).rejects.toThrow(
      /budget is 10/,
    );
    await small.close();
  });

  test("bad fields are refused: a non-string value, an unusable name, an array, a NUL", async () => {
    await expect(memory.setProfile({ userId: "f" }, { name: 3 } as never)).rejects.toThrow(/must be a string/);
    await expect(memory.setProfile({ userId: "f" }, { "a:b": "x" })).rejects.toThrow(/not usable/);
    await expect(memory.setProfile({ userId: "f" }, ["x"] as never)).rejects.toThrow(InvalidInputError);
    await expect(memory.setProfile({ userId: "f" }, "a\u0000b")).rejects.toThrow(/NUL/);
    expect(await memory.profile({ userId: "f" })).toBeNull();
  });

  test("regression: a purge by id of a profile's id would erase every later text of that profile; by-id calls do not reach profiles", async () => {
    await memory.setProfile({ userId: "gina" }, "name: Gina");
    const [entry] = await memory.profileHistory({ userId: "gina" });
    await expect(memory.delete(entry?.memoryId as string, { userId: "gina", purge: true })).rejects.toBeInstanceOf(MemoryNotFoundError);
    await expect(memory.history(entry?.memoryId as string, { userId: "gina" })).rejects.toBeInstanceOf(MemoryNotFoundError);
    await memory.setProfile({ userId: "gina" }, "name: Gina B");
    expect((await memory.profile({ userId: "gina" }))?.text).toBe("name: Gina B");
  });

  test("property: field updates read back as the fields set, last write per key wins, within the budget", async () => {
    const key = fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/);
    const value = fc.option(fc.string({ minLength: 0, maxLength: 12 }), { nil: null });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.dictionary(key, value, { maxKeys: 4 }), { minLength: 1, maxLength: 5 }), async (updates) => {
        const scope = { userId: `prop-${Math.random()}` };
        const expected = new Map<string, string>();
        for (const update of updates) {
          await memory.setProfile(scope, update);
          for (const [k, v] of Object.entries(update)) {
            const existing = [...expected.keys()].find((known) => known.toLowerCase() === k.toLowerCase());
            const text = v === null ? "" : v.replace(/\s+/g, " ").trim();
            if (existing !== undefined) expected.delete(existing);
            if (text !== "") expected.set(k, text);
          }
        }
        const profile = await memory.profile(scope);
        const fields = Object.fromEntries([...expected].map(([k, v]) => [k, v]));
        if (expected.size === 0) expect(profile).toBeNull();
        else {
          expect(profile?.fields).toEqual(fields);
          expect(estimateTokens(profile?.text ?? "")).toBeLessThanOrEqual(300);
        }
      }),
      { numRuns: 60 },
    );
  });
});
