import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { exitCodes } from "../../src/cli/main.js";
import type { MemoryItem } from "../../src/index.js";
import { assertBuilt, cliJson, runCli } from "./run-cli.js";

const root = mkdtempSync(join(tmpdir(), "engram-cli-corruption-"));
let dirs = 0;
const freshDir = () => join(root, `data-${dirs++}`);

beforeAll(assertBuilt);
afterAll(() => rmSync(root, { recursive: true, force: true }));

function garbageDataDir(): { dataDir: string; file: string } {
  const dataDir = freshDir();
  mkdirSync(dataDir);
  const file = resolve(dataDir, "engram.db");
  writeFileSync(file, randomBytes(64 * 1024));
  return { dataDir, file };
}

/** Overwrites the first `count` leaf pages of the memories table with random bytes. */
function damageFirstLeafPages(file: string, count: number): void {
  const db = new DatabaseSync(file, { readOnly: true });
  const { page_size: pageSize } = db.prepare("PRAGMA page_size").get() as { page_size: number };
  const pages = db
    .prepare("SELECT pageno FROM dbstat WHERE name = 'memories' AND pagetype = 'leaf' ORDER BY pageno LIMIT ?")
    .all(count) as { pageno: number }[];
  db.close();
  const fd = openSync(file, "r+");
  for (const { pageno } of pages) writeSync(fd, randomBytes(pageSize), 0, pageSize, (pageno - 1) * pageSize);
  closeSync(fd);
}

describe("a damaged database", () => {
  test("regression: a file of garbage was a usage error (exit 2) with advice about directory permissions; it is exit 3, naming the file and the way to recover", async () => {
    const { dataDir, file } = garbageDataDir();
    for (const args of [
      ["list", "--user", "alice"],
      ["add", "I like tea", "--user", "alice"],
      ["export", "--all-scopes"],
    ]) {
      const result = await runCli([...args, "--data-dir", dataDir]);
      expect(result.code, result.stderr).toBe(exitCodes.corrupt);
      expect(exitCodes.corrupt).toBe(3);
      expect(result.stdout).toBe("");
      const lines = result.stderr.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(file);
      expect(lines[0]).toMatch(/damaged .*engram check.*export.*restore a backup/);
      expect(lines[0]).not.toMatch(/writable/);
    }
    const json = await runCli(["list", "--user", "alice", "--json", "--data-dir", dataDir]);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stderr)).toEqual({ error: { code: "STORE_CORRUPT", message: expect.stringContaining(file) } });
  });

  test("engram check prints ok for a sound file (exit 0), and what is wrong with a damaged one (exit 3)", async () => {
    const dataDir = freshDir();
    const file = resolve(dataDir, "engram.db");
    expect((await runCli(["add", "alice likes tea", "--user", "alice", "--data-dir", dataDir])).code).toBe(0);
    const sound = await runCli(["check", "--data-dir", dataDir]);
    expect(sound).toMatchObject({ code: 0, stdout: `ok: ${file} passed the integrity check.\n`, stderr: "" });
    expect(await cliJson(["check", "--data-dir", dataDir])).toEqual({ file, ok: true, problems: [] });

    const garbage = garbageDataDir();
    const damaged = await runCli(["check", "--data-dir", garbage.dataDir]);
    expect(damaged.code).toBe(3);
    expect(damaged.stdout).toBe(`damaged: ${garbage.file}\n  file is not a database\n`);
    expect(damaged.stderr).toMatch(/^engram: recovery: stop every process using the file, keep a copy of it, export what is readable/);

    expect((await runCli(["check", "--data-dir", freshDir()])).code).toBe(exitCodes.usage);
  });

  test("export of a partly damaged file writes every readable scope, names the damaged ones, and exits 3", {
    timeout: 60_000,
  }, async () => {
    const dataDir = freshDir();
    const file = resolve(dataDir, "engram.db");
    const alice = Array.from({ length: 40 }, (_, i) => ({ role: "user", content: `alice's note number ${i}`, userId: "alice" }));
    const others = [
      { role: "user", content: "bob likes coffee", userId: "bob" },
      { role: "user", content: "carol's agent note", agentId: "helper" },
    ];
    // Two imports (one import writes several users at once): alice's rows are written first.
    for (const [name, lines] of [
      ["partly-damaged-alice.jsonl", alice],
      ["partly-damaged-others.jsonl", others],
    ] as const) {
      const source = join(root, name);
      writeFileSync(source, `${lines.map((line) => JSON.stringify(line)).join("\n")}\n`);
      expect(await cliJson(["import", source, "--data-dir", dataDir])).toMatchObject({ imported: lines.length });
    }
    // Alice's rows were written first: the first leaf pages of the table are hers.
    damageFirstLeafPages(file, 3);

    const checked = await runCli(["check", "--json", "--data-dir", dataDir]);
    expect(checked.code).toBe(3);
    expect(JSON.parse(checked.stdout)).toMatchObject({ file, ok: false, problems: expect.arrayContaining([expect.any(String)]) });

    const output = join(root, "salvage.jsonl");
    const result = await runCli(["export", "--all-scopes", "--output", output, "--json", "--data-dir", dataDir]);
    expect(result.code, result.stderr).toBe(3);
    const summary = JSON.parse(result.stdout) as { exported: number; unreadable: { userId?: string; read: number; total?: number }[] };
    expect(summary.unreadable).toEqual([{ userId: "alice", read: expect.any(Number), total: 40 }]);
    expect(summary.unreadable[0]?.read).toBeLessThan(40);
    expect(result.stderr).toMatch(/user "alice": \d+ of 40 memories read, the rest is on damaged pages and was skipped/);
    expect(result.stderr).toContain(`${file} is damaged: the export holds what was readable`);
    const exported = readFileSync(output, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as MemoryItem);
    expect(exported).toHaveLength(summary.exported);
    expect(exported.map((item) => item.memory)).toEqual(expect.arrayContaining(["bob likes coffee", "carol's agent note"]));
    expect(exported.filter((item) => item.userId === "alice")).toHaveLength(summary.unreadable[0]?.read ?? -1);
  });
});
