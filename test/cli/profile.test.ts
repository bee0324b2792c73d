import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { HistoryRecord, Profile } from "../../src/index.js";
import { assertBuilt, cliJson, runCli } from "./run-cli.js";

const root = mkdtempSync(join(tmpdir(), "engram-cli-profile-"));
beforeAll(assertBuilt);
afterAll(() => rmSync(root, { recursive: true, force: true }));

test("engram profile shows, sets, changes fields, clears and lists the history of one scope's profile", async () => {
  const dir = ["--data-dir", join(root, "data")];
  await cliJson(["profile", "--user", "ana", "--set", "name: Ana", ...dir]);
  expect(await cliJson(["profile", "--user", "bob", ...dir])).toEqual({ profile: null });
  const changed = await cliJson<{ profile: Profile }>([
    "profile",
    "--user",
    "ana",
    "--field",
    "diet=vegetarian",
    "--field",
    "name=Ana María",
    ...dir,
  ]);
  expect(changed.profile.text).toBe("name: Ana María\ndiet: vegetarian");
  const shown = await runCli(["profile", "--user", "ana", ...dir]);
  expect(shown.code).toBe(0);
  expect(shown.stdout).toContain("name: Ana María\ndiet: vegetarian");
  // Another scope has its own (none).
  expect(await cliJson(["profile", "--user", "ana", "--agent", "chef", ...dir])).toEqual({ profile: null });
  expect(await cliJson(["profile", "--user", "ana", "--clear", ...dir])).toEqual({ profile: null });
  const { history } = await cliJson<{ history: HistoryRecord[] }>(["profile", "--user", "ana", "--history", ...dir]);
  expect(history.map((entry) => entry.event)).toEqual(["ADD", "UPDATE", "DELETE"]);
});

test("engram profile refuses a missing scope, two actions at once and a bad --field, with exit 2", async () => {
  const dir = ["--data-dir", join(root, "data-2")];
  for (const args of [
    ["profile"],
    ["profile", "--user", "ana", "--set", "x", "--clear"],
    ["profile", "--user", "ana", "--field", "name"],
  ]) {
    const result = await runCli([...args, ...dir]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
  }
});
