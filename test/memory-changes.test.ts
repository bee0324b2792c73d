import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { ConfigError, InvalidInputError, Memory } from "../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../src/testing/index.js";

// Memory.changes: a scope's (or every scope's) change log at once, deleted memories included, for
// operator tools such as the inspector's per-day plot.

const open: Memory[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((memory) => memory.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const backends: [string, () => Memory][] = [
  [
    "SQLite",
    () => {
      const dataDir = mkdtempSync(join(tmpdir(), "engram-changes-"));
      dirs.push(dataDir);
      return new Memory({ dataDir, embedder: deterministicEmbedder() });
    },
  ],
  ["in memory", () => new Memory({ embedder: deterministicEmbedder(), vectorStore: inMemoryStore(), historyStore: inMemoryHistory() })],
];

describe.each(backends)("Memory.changes on the %s history", (_, create) => {
  test("lists a scope's ADD, UPDATE and DELETE oldest first, a deleted memory's included, without texts, profiles or other scopes", async () => {
    const memory = create();
    open.push(memory);
    const [tea] = (await memory.add("Alice likes tea", { userId: "alice" })).results;
    const [city] = (await memory.add("Alice lives in Porto", { userId: "alice", agentId: "travel" })).results;
    await memory.add("Bob likes coffee", { userId: "bob" });
    await memory.update(city?.id as string, "Alice lives in Lisbon", { userId: "alice" });
    await memory.delete(tea?.id as string, { userId: "alice" });
    await memory.setProfile({ userId: "alice" }, "name: Alice");

    const alice = await memory.changes({ userId: "alice" });
    expect(alice.map((entry) => [entry.event, entry.memoryId])).toEqual([
      ["ADD", tea?.id],
      ["ADD", city?.id],
      ["UPDATE", city?.id],
      ["DELETE", tea?.id],
    ]);
    expect(alice[1]).toEqual({ memoryId: city?.id, event: "ADD", userId: "alice", agentId: "travel", createdAt: expect.any(String) });
    expect((await memory.changes({ userId: "alice", agentId: "travel" })).map((entry) => entry.event)).toEqual(["ADD", "UPDATE"]);
    expect((await memory.changes({ allScopes: true })).map((entry) => entry.userId)).toEqual(["alice", "alice", "bob", "alice", "alice"]);
    // The latest ones when there are more than the limit.
    expect((await memory.changes({ userId: "alice" }, { limit: 2 })).map((entry) => entry.event)).toEqual(["UPDATE", "DELETE"]);
  });

  test("refuses a call without a scope, a half-given allScopes and a bad limit", async () => {
    const memory = create();
    open.push(memory);
    await expect(memory.changes({} as never)).rejects.toThrow(/needs a scope|scope/);
    await expect(memory.changes({ allScopes: false } as never)).rejects.toThrow(InvalidInputError);
    await expect(memory.changes({ userId: "alice" }, { limit: 0 })).rejects.toThrow(/limit must be a whole number/);
  });
});

test("a history log without the HistoryScannable capability gets a ConfigError that says what to do instead", async () => {
  const { events: _events, ...plain } = inMemoryHistory();
  const memory = new Memory({ embedder: deterministicEmbedder(), vectorStore: inMemoryStore(), historyStore: plain });
  open.push(memory);
  await memory.add("Alice likes tea", { userId: "alice" });
  await expect(memory.changes({ userId: "alice" })).rejects.toThrow(ConfigError);
  await expect(memory.changes({ userId: "alice" })).rejects.toThrow(/read them memory by memory with history\(\)/);
});
