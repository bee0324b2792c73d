import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Memory, type MemoryItem, type ReviewItem } from "../../src/index.js";
import { assertBuilt, cliJson, runCli } from "./run-cli.js";

const root = mkdtempSync(join(tmpdir(), "engram-cli-lifecycle-"));
beforeAll(assertBuilt);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const DAY = 86_400_000;

/** Memories written two days ago (by a Memory whose clock says so) with a one-day ttl: expired now. */
async function writtenTwoDaysAgo(dataDir: string, adds: [text: string, scope: { userId: string; runId?: string }, ttl?: string][]) {
  const memory = new Memory({ dataDir, writeBehind: { enabled: false }, _internal: { now: () => Date.now() - 2 * DAY } });
  try {
    const ids: string[] = [];
    for (const [text, scope, ttl] of adds)
      ids.push((await memory.add(text, { ...scope, ...(ttl ? { ttl } : {}) })).results[0]?.id as string);
    return ids;
  } finally {
    await memory.close();
  }
}

test("engram sweep deletes expired memories of a scope or of every scope; engram add --ttl sets an expiry; bad input exits 2", {
  timeout: 180_000,
}, async () => {
  const dataDir = join(root, "sweep");
  const dir = ["--data-dir", dataDir];
  const [expired] = await writtenTwoDaysAgo(dataDir, [
    ["alice's expired note", { userId: "alice" }, "1d"],
    ["alice's lasting note", { userId: "alice" }],
    ["bob's expired note", { userId: "bob", runId: "r1" }, "1d"],
  ]);
  expect((await cliJson<{ results: MemoryItem[] }>(["list", "--user", "alice", ...dir])).results.map((item) => item.memory)).toEqual([
    "alice's lasting note",
  ]);
  expect(await cliJson(["sweep", "--user", "alice", ...dir])).toEqual({ deleted: 1, purged: false });
  const history = await cliJson<{ history: { event: string }[] }>(["history", expired as string, "--user", "alice", ...dir]);
  expect(JSON.stringify(history)).toContain("DELETE");
  const everywhere = await runCli(["sweep", "--all-scopes", "--purge", ...dir]);
  expect([everywhere.code, everywhere.stdout.trim()]).toEqual([
    0,
    "Deleted 1 expired memory of every scope, their text erased from history too.",
  ]);

  const added = await cliJson<{ results: { id: string }[] }>(["add", "parked on level 3", "--user", "carol", "--ttl", "12h", ...dir]);
  const item = await cliJson<MemoryItem>(["get", added.results[0]?.id as string, "--user", "carol", ...dir]);
  const lifetime = Date.parse(item.expiresAt as string) - Date.now();
  expect(lifetime).toBeGreaterThan(11 * 3_600_000);
  expect(lifetime).toBeLessThanOrEqual(12 * 3_600_000);

  // regression: an export line carrying expiresAt was refused by import ("Unknown key"); now the expiry comes along.
  const file = join(root, "carol.jsonl");
  await cliJson(["export", "--user", "carol", "-o", file, ...dir]);
  await cliJson(["import", file, "--data-dir", join(root, "imported")]);
  const imported = await cliJson<{ results: MemoryItem[] }>(["list", "--user", "carol", "--data-dir", join(root, "imported")]);
  expect(imported.results.map((entry) => [entry.memory, entry.expiresAt])).toEqual([["parked on level 3", item.expiresAt]]);

  for (const args of [["sweep"], ["sweep", "--user", "alice", "--all-scopes"], ["add", "x", "--user", "carol", "--ttl", "soon"]]) {
    const result = await runCli([...args, ...dir]);
    expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
  }
});

test("engram review lists the newest memories with their source and history; accept marks one, reject deletes it", {
  timeout: 180_000,
}, async () => {
  const dataDir = join(root, "review");
  const dir = ["--data-dir", dataDir];
  await writtenTwoDaysAgo(dataDir, [["an older fact", { userId: "alice" }]]);
  const [kept, wrong] = await Promise.all(
    ["I live in Porto", "I own three boats"].map(
      async (text) => (await cliJson<{ results: { id: string }[] }>(["add", text, "--user", "alice", ...dir])).results[0]?.id as string,
    ),
  );
  const listed = await cliJson<{ results: ReviewItem[] }>(["review", "--user", "alice", "--since", "1d", ...dir]);
  expect(listed.results.map((item) => item.id).sort()).toEqual([kept, wrong].sort());
  for (const item of listed.results) {
    expect(item.source).toEqual({ kind: "verbatim", role: "user" });
    expect(item.history.map((entry) => entry.event)).toEqual(["ADD"]);
  }
  expect((await cliJson<{ results: ReviewItem[] }>(["review", "--all-scopes", "--since", "7d", ...dir])).results).toHaveLength(3);

  const accepted = await cliJson<{ id: string; reviewed: boolean; reviewedAt: string }>([
    "review",
    "accept",
    kept as string,
    "--user",
    "alice",
    ...dir,
  ]);
  expect(accepted).toMatchObject({ id: kept, reviewed: true });
  expect(await cliJson(["review", "reject", wrong as string, "--user", "alice", ...dir])).toEqual({
    id: wrong,
    rejected: true,
    deleted: true,
    purged: false,
  });
  const after = await cliJson<{ results: ReviewItem[] }>(["review", "--user", "alice", "--since", "1d", ...dir]);
  expect(after.results.map((item) => [item.id, item.reviewedAt])).toEqual([[kept, accepted.reviewedAt]]);
  expect(
    (await cliJson<{ results: ReviewItem[] }>(["review", "--user", "alice", "--since", "1d", "--unreviewed", ...dir])).results,
  ).toEqual([]);
  const table = await runCli(["review", "--user", "alice", "--since", "1d", ...dir]);
  expect(table.code).toBe(0);
  expect(table.stdout).toContain("I live in Porto");
  expect(table.stdout).toContain("stored as said");

  for (const args of [
    ["review"],
    ["review", "accept", kept as string],
    ["review", "accept", "--user", "alice"],
    ["review", "accept", kept as string, "--all-scopes"],
    ["review", "approve", kept as string, "--user", "alice"],
    ["review", "--user", "alice", "--since", "last week"],
    ["review", "reject", kept as string, "--user", "bob"],
  ]) {
    const result = await runCli([...args, ...dir]);
    expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
  }
});
