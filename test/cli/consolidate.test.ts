import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { ConsolidateResult } from "../../src/index.js";
import { assertBuilt, cliJson, runCli } from "./run-cli.js";

const root = mkdtempSync(join(tmpdir(), "engram-cli-consolidate-"));
beforeAll(assertBuilt);
afterAll(() => rmSync(root, { recursive: true, force: true }));

test("engram consolidate --dry-run prints the clusters and changes nothing; without it merges them", { timeout: 120_000 }, async () => {
  const d = ["--data-dir", join(root, "data")];
  const texts = ["My sister Anna lives in Lisbon", "my sister Anna lives in Lisbon.", "I work as a nurse at night"];
  for (const [i, text] of texts.entries()) {
    await cliJson(["add", text, "--user", "alice", "--timestamp", `2026-01-0${i + 1}T00:00:00Z`, ...d]);
  }
  const human = await runCli(["consolidate", "--dry-run", "--user", "alice", ...d]);
  expect(human.code, human.stderr).toBe(0);
  expect(human.stdout).toContain("cluster 1 → ");
  expect(human.stdout).toMatch(/3 memories, 1 cluster of near-duplicates: 1 would be merged .*Nothing was changed\./);

  const dry = await cliJson<ConsolidateResult>(["consolidate", "--dry-run", "--user", "alice", ...d]);
  expect(dry.clusters.map((cluster) => cluster.members.map((member) => member.memory))).toEqual([texts.slice(0, 2)]);
  expect((await cliJson<{ results: unknown[] }>(["list", "--user", "alice", ...d])).results).toHaveLength(3);

  const done = await cliJson<ConsolidateResult>(["consolidate", "--user", "alice", ...d]);
  expect(done).toMatchObject({ memories: 3, merged: 1, dryRun: false });
  expect((await cliJson<{ results: unknown[] }>(["list", "--user", "alice", ...d])).results).toHaveLength(2);

  const missing = await runCli(["consolidate", "--dry-run", ...d]);
  expect(missing.code).toBe(2);
  const bad = await runCli(["consolidate", "--user", "alice", "--similarity", "2", ...d]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain("--similarity must be a number from 0 to 1");
});
