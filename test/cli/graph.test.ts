import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { StoredRelation } from "../../src/index.js";
import { assertBuilt, cliJson, runCli } from "./run-cli.js";

const root = mkdtempSync(join(tmpdir(), "engram-cli-graph-"));
beforeAll(assertBuilt);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const jsonl = (lines: object[]) => `${lines.map((line) => JSON.stringify(line)).join("\n")}\n`;
const triple = (relation: StoredRelation) => `${relation.source} -${relation.relation}-> ${relation.target}`;

/** A data dir whose graph was written by `engram import --graph`: alice's and bob's memories name a "Bob" each. */
async function graphDir(name: string): Promise<string[]> {
  const dir = ["--data-dir", join(root, name)];
  const file = join(root, `${name}.jsonl`);
  writeFileSync(
    file,
    jsonl([
      { role: "user", content: "Alice manages Bob", userId: "alice" },
      { role: "user", content: "Bob reports to Carol", userId: "alice" },
      { role: "user", content: "Bob works with Dana", userId: "bob" },
    ]),
  );
  expect(await cliJson(["import", file, "--graph", ...dir])).toMatchObject({ imported: 3, failed: 0 });
  return dir;
}

describe("engram graph", () => {
  test("prints a scope's relations, an entity's within --depth, and its --neighbors; never another scope's", async () => {
    const dir = await graphDir("walk");
    const all = await cliJson<{ relations: StoredRelation[] }>(["graph", "--user", "alice", ...dir]);
    expect(all.relations.map(triple).sort()).toEqual(["Alice -co-occurs-> Bob", "Bob -co-occurs-> Carol"]);
    expect(all.relations.every((relation) => relation.memoryIds.length === 1)).toBe(true);
    const near = await cliJson<{ relations: StoredRelation[] }>(["graph", "--user", "alice", "--entity", "alice", ...dir]);
    expect(near.relations.map(triple)).toEqual(["Alice -co-occurs-> Bob"]);
    const far = await cliJson<{ relations: StoredRelation[] }>(["graph", "-u", "alice", "-e", "Alice", "--depth", "2", ...dir]);
    expect(far.relations.map(triple).sort()).toEqual(["Alice -co-occurs-> Bob", "Bob -co-occurs-> Carol"]);
    expect(await cliJson(["graph", "--user", "alice", "--entity", "Alice", "--depth", "2", "--neighbors", ...dir])).toEqual({
      neighbors: [
        { entity: "Bob", depth: 1 },
        { entity: "Carol", depth: 2 },
      ],
    });
    const bob = await cliJson<{ relations: StoredRelation[] }>(["graph", "--user", "bob", ...dir]);
    expect(bob.relations.map(triple)).toEqual(["Bob -co-occurs-> Dana"]);
    expect(await cliJson(["graph", "--user", "alice", "--relation", "manages", ...dir])).toEqual({ relations: [] });

    const table = await runCli(["graph", "--user", "alice", "--entity", "Bob", ...dir]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/│ source\s+│ relation\s+│ target\s+│ memories/);
    expect(table.stdout).toMatch(/│ Alice\s+│ co-occurs\s+│ Bob\s+│/);
    expect(table.stdout).not.toContain("Dana");
  });

  test("refuses a missing scope, --depth or --neighbors without --entity, bad numbers, and a data dir without a graph: exit 2, one line", async () => {
    const dir = await graphDir("errors");
    const plain = ["--data-dir", join(root, "plain")];
    const file = join(root, "plain.jsonl");
    writeFileSync(file, jsonl([{ role: "user", content: "Alice manages Bob", userId: "alice" }]));
    await cliJson(["import", file, ...plain]);
    for (const [args, message] of [
      [["graph", ...dir], /graph needs a scope/],
      [["graph", "--user", "alice", "--depth", "2", ...dir], /--depth and --neighbors need --entity/],
      [["graph", "--user", "alice", "--neighbors", ...dir], /--depth and --neighbors need --entity/],
      [["graph", "--user", "alice", "--entity", "Bob", "--depth", "6", ...dir], /--depth must be a whole number from 1 to 5/],
      [["graph", "--user", "alice", "--limit", "0", ...dir], /--limit must be a whole number from 1 to 1000/],
      [["graph", "--user", "alice", ...plain], /No graph in .*plain: .*engram import --graph/],
      [["graph", "--user", "alice", "--data-dir", join(root, "nowhere")], /there is no engram.db there/],
    ] as const) {
      const result = await runCli([...args]);
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(result.stderr).toMatch(message);
    }
  });
});

test("regression: CLI writes left the graph behind: engram delete in a data dir with a graph removes the memory's relations", async () => {
  const dir = await graphDir("delete");
  const { results } = await cliJson<{ results: { id: string; memory: string }[] }>(["list", "--user", "alice", ...dir]);
  const id = results.find((item) => item.memory === "Alice manages Bob")?.id as string;
  expect((await runCli(["delete", id, "--user", "alice", ...dir])).code).toBe(0);
  const left = await cliJson<{ relations: StoredRelation[] }>(["graph", "--user", "alice", ...dir]);
  expect(left.relations.map(triple)).toEqual(["Bob -co-occurs-> Carol"]);
  expect(await cliJson(["graph", "--user", "alice", "--entity", "Alice", "--neighbors", ...dir])).toEqual({ neighbors: [] });
});

describe("export and import carry the graph", () => {
  test("round trip: relation lines after the memories re-attach to the imported memories, labels kept, scope by scope", async () => {
    const from = await graphDir("source");
    const exported = join(root, "export.jsonl");
    expect(await cliJson(["export", "--all-scopes", "--output", exported, ...from])).toEqual({ exported: 3, relations: 3, file: exported });
    const lines = readFileSync(exported, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const memories = lines.filter((line) => "memory" in line);
    const relationLines = lines.filter((line) => "relation" in line);
    // Relations come after every memory line, each naming the exported memories of its own scope.
    expect(lines.slice(0, 3)).toEqual(memories);
    const idOf = (text: string) => memories.find((line) => line.memory === text)?.id;
    expect(relationLines).toContainEqual({
      source: "Alice",
      relation: "co-occurs",
      target: "Bob",
      memoryIds: [idOf("Alice manages Bob")],
      userId: "alice",
    });
    expect(relationLines).toContainEqual({
      source: "Bob",
      relation: "co-occurs",
      target: "Dana",
      memoryIds: [idOf("Bob works with Dana")],
      userId: "bob",
    });

    // A scope's export carries that scope's relations only.
    const bobOnly = (await runCli(["export", "--user", "bob", ...from])).stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(bobOnly.filter((line) => "relation" in line)).toEqual([
      { source: "Bob", relation: "co-occurs", target: "Dana", memoryIds: [idOf("Bob works with Dana")], userId: "bob" },
    ]);

    // A label only a model gives, as an app with an extraction model would have exported it.
    const labelled = lines.map((line) => (line.source === "Alice" && line.target === "Bob" ? { ...line, relation: "manages" } : line));
    const file = join(root, "labelled.jsonl");
    writeFileSync(file, jsonl(labelled));
    const to = ["--data-dir", join(root, "target")];
    expect(await cliJson(["import", file, ...to])).toMatchObject({ imported: 3, relations: 3, failed: 0 });
    const alice = await cliJson<{ relations: StoredRelation[] }>(["graph", "--user", "alice", ...to]);
    expect(alice.relations.map(triple).sort()).toEqual(["Alice -manages-> Bob", "Bob -co-occurs-> Carol"]);
    const bob = await cliJson<{ relations: StoredRelation[] }>(["graph", "--user", "bob", ...to]);
    expect(bob.relations.map(triple)).toEqual(["Bob -co-occurs-> Dana"]);
    // The relations name the imported memories (new ids), each of its own scope.
    const { results } = await cliJson<{ results: { id: string; memory: string }[] }>(["list", "--user", "alice", ...to]);
    const manages = alice.relations.find((relation) => relation.relation === "manages");
    expect(manages?.memoryIds).toEqual([results.find((item) => item.memory === "Alice manages Bob")?.id]);

    // Importing again changes nothing: the memories are not stored twice, nor their relations.
    await cliJson(["import", file, ...to]);
    const again = await cliJson<{ relations: StoredRelation[] }>(["graph", "--user", "alice", ...to]);
    expect(again.relations.map(triple).sort()).toEqual(["Alice -manages-> Bob", "Bob -co-occurs-> Carol"]);
  });

  test("a relation line naming another scope's memory is refused before anything is imported (alice's relation never lands in bob's scope)", async () => {
    const from = await graphDir("forged");
    const lines = (await runCli(["export", "--all-scopes", ...from])).stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const bobsMemory = lines.find((line) => line.memory === "Bob works with Dana")?.id;
    const forged = [...lines, { source: "Alice", relation: "manages", target: "Dana", memoryIds: [bobsMemory], userId: "alice" }];
    const file = join(root, "forged.jsonl");
    writeFileSync(file, jsonl(forged));
    const to = ["--data-dir", join(root, "forged-target")];
    const result = await runCli(["import", file, ...to]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(/forged.jsonl:\d+: memoryIds: ".*" is a memory of another scope than this relation's/);
    expect(existsSync(join(root, "forged-target", "engram.db"))).toBe(false);
    const unknown = join(root, "unknown.jsonl");
    writeFileSync(unknown, jsonl([...lines, { source: "A", relation: "r", target: "B", memoryIds: ["nope"], userId: "alice" }]));
    expect((await runCli(["import", unknown, ...to])).stderr).toMatch(/memoryIds: "nope" is not the id of a memory line above this one/);
  });
});
