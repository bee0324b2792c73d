import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

test("engram export carries each scope's current profile, engram import sets it in another data dir: round trip, scope by scope", async () => {
  const from = ["--data-dir", join(root, "export-from")];
  const to = ["--data-dir", join(root, "export-to")];
  await cliJson(["add", "ana likes tea", "--user", "ana", ...from]);
  await cliJson(["profile", "--user", "ana", "--set", "name: Ana", ...from]);
  await cliJson(["profile", "--user", "ana", "--field", "diet=vegetarian", ...from]);
  await cliJson(["profile", "--user", "ana", "--agent", "chef", "--set", "tone: formal", ...from]);
  // A profile without a single memory in its scope is exported too.
  await cliJson(["profile", "--user", "bob", "--set", "name: Bob", ...from]);
  await cliJson(["profile", "--agent", "coder", "--set", "style: terse", ...from]);
  // A cleared profile is not.
  await cliJson(["profile", "--user", "carol", "--set", "name: Carol", ...from]);
  await cliJson(["profile", "--user", "carol", "--clear", ...from]);

  const exportFile = join(root, "with-profiles.jsonl");
  expect(await cliJson(["export", "--all-scopes", "--output", exportFile, ...from])).toEqual({
    exported: 1,
    profiles: 4,
    file: exportFile,
  });
  const lines = readFileSync(exportFile, "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line));
  expect(
    lines
      .filter((line) => "profile" in line)
      .map(({ updatedAt: _, ...line }) => line)
      .sort((a, b) => a.profile.localeCompare(b.profile)),
  ).toEqual([
    { profile: "name: Ana\ndiet: vegetarian", userId: "ana" },
    { profile: "name: Bob", userId: "bob" },
    { profile: "style: terse", agentId: "coder" },
    { profile: "tone: formal", userId: "ana", agentId: "chef" },
  ]);

  // One user's export holds that user's profiles only.
  const ana = (await runCli(["export", "--user", "ana", ...from])).stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line));
  expect(
    ana
      .filter((line) => "profile" in line)
      .map((line) => line.profile)
      .sort(),
  ).toEqual(["name: Ana\ndiet: vegetarian", "tone: formal"]);

  expect(await cliJson(["import", exportFile, ...to])).toMatchObject({ turns: 1, imported: 1, profiles: 4 });
  const profileIn = async (...scope: string[]) =>
    (await cliJson<{ profile: Profile | null }>(["profile", ...scope, ...to])).profile?.text ?? null;
  expect(await profileIn("--user", "ana")).toBe("name: Ana\ndiet: vegetarian");
  expect(await profileIn("--user", "ana", "--agent", "chef")).toBe("tone: formal");
  expect(await profileIn("--user", "bob")).toBe("name: Bob");
  expect(await profileIn("--agent", "coder")).toBe("style: terse");
  expect(await profileIn("--user", "carol")).toBeNull();
  expect(await profileIn("--user", "ana", "--agent", "coder")).toBeNull();

  // Importing again changes nothing: the import is one change in the target's history, once.
  await cliJson(["import", exportFile, ...to]);
  const { history } = await cliJson<{ history: HistoryRecord[] }>(["profile", "--user", "ana", "--history", ...to]);
  expect(history).toMatchObject([{ event: "ADD", previousValue: null, newValue: "name: Ana\ndiet: vegetarian" }]);
});

test("engram import refuses a profile line over the budget or without a scope, naming the line, with exit 2", async () => {
  const dir = ["--data-dir", join(root, "import-bad")];
  const tooLong = join(root, "too-long.jsonl");
  writeFileSync(tooLong, `${JSON.stringify({ profile: `story: ${"long ".repeat(400)}`, userId: "ana" })}\n`);
  const refused = await runCli(["import", tooLong, ...dir]);
  expect(refused.code, refused.stderr).toBe(2);
  expect(refused.stderr).toMatch(/too-long\.jsonl:1: .*budget is 300/);

  const noScope = join(root, "no-scope.jsonl");
  writeFileSync(noScope, `${JSON.stringify({ profile: "name: Ana" })}\n`);
  const missing = await runCli(["import", noScope, ...dir]);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toMatch(/no-scope\.jsonl:1: no scope/);
  expect((await cliJson<{ profile: Profile | null }>(["profile", "--user", "ana", ...dir])).profile).toBeNull();
});
