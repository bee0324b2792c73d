import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startOpenAiStub } from "../../bench/support/openai-stub.js";
import packageJson from "../../package.json" with { type: "json" };
import { buildProgram } from "../../src/cli/main.js";
import type { MemoryItem } from "../../src/index.js";
import { assertBuilt, type CliResult, cliJson, runCli } from "./run-cli.js";

const root = mkdtempSync(join(tmpdir(), "engram-cli-"));
let dirs = 0;
const freshDir = () => join(root, `data-${dirs++}`);
const file = (name: string, text: string) => {
  const path = join(root, name);
  writeFileSync(path, text);
  return path;
};
const jsonl = (lines: unknown[]) => `${lines.map((line) => JSON.stringify(line)).join("\n")}\n`;

beforeAll(assertBuilt);
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A failed command: exit 2 (usage) or 1 (failure), nothing on stdout, exactly one line on stderr. */
function expectOneLineError(result: CliResult, code: number, message: RegExp): void {
  expect(result.code, result.stderr).toBe(code);
  expect(result.stdout).toBe("");
  const lines = result.stderr.trimEnd().split("\n");
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(message);
}

describe("help and version", () => {
  const commands = [
    "add",
    "search",
    "list",
    "get",
    "update",
    "delete",
    "forget",
    "consolidate",
    "history",
    "graph",
    "review",
    "sweep",
    "profile",
    "pending",
    "import",
    "export",
    "check",
    "stats",
    "mcp",
    "ui",
  ];

  test("the program has exactly the documented commands", () => {
    expect(buildProgram().commands.map((command) => command.name())).toEqual(commands);
  });

  test("--help works on the program and on every command, with exit 0", async () => {
    const top = await runCli(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain("Usage: engram [options] [command]");
    for (const name of commands) expect(top.stdout).toContain(`  ${name} `);
    const results = await Promise.all(commands.map((name) => runCli([name, "--help"])));
    results.forEach((result, i) => {
      expect(result.code, commands[i]).toBe(0);
      expect(result.stdout).toContain(`Usage: engram ${commands[i]} [options]`);
      expect(result.stdout).toContain("--data-dir");
    });
    expect(results[commands.indexOf("search")]?.stdout).toContain("--user <id>");
    expect(results[commands.indexOf("export")]?.stdout).toContain("--all-scopes");
  });

  test("--version prints the package version", async () => {
    const result = await runCli(["--version"]);
    expect(result).toMatchObject({ code: 0, stdout: `${packageJson.version}\n` });
  });

  test("an older Node.js gets one clear line and exit 1, not a crash", async () => {
    const result = await runCli(["--help"], {
      nodeOptions: ["--import", `data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.11.1"})`],
    });
    expectOneLineError(result, 1, /^engram needs Node\.js >= 22\.13 .*this is Node\.js v20\.11\.1\. Install Node\.js 22\.13 or newer/);
  });
});

describe("errors: one line on stderr, exit 2 for usage errors", () => {
  test.each([
    [["list"], /^engram: list needs a scope: pass --user, --agent and\/or --run/],
    [["search", "tea", "--user", "alice", "--bogus"], /unknown option '--bogus'/],
    [["search"], /missing required argument 'query'/],
    [["list", "--user", "alice", "--limit", "0"], /--limit must be a whole number from 1 to 1000/],
    [["search", "x", "--user", "alice", "--threshold", "2"], /--threshold must be a number from 0 to 1/],
    [["search", "x", "--user", "alice", "--filter", "oops"], /filters look like key=value/],
    [["add", "x", "--user", "alice", "--metadata", "[1]"], /--metadata must be a JSON object/],
    [["add", "x", "--user", "alice", "--infer"], /--infer needs an extraction model: set OPENAI_API_KEY .* or pass --base-url/],
    [["import", "missing.jsonl", "--user", "alice"], /No file missing.jsonl/],
    [["export"], /export needs a scope: .* or --all-scopes/],
    [["stats", "--all-scopes", "--user", "alice"], /either --all-scopes or --user/],
    [["list", "--user", " alice"], /whitespace/],
    [["nonsense"], /unknown command 'nonsense'/],
    [["mcp"], /mcp needs a scope: pass --user, --agent and\/or --run .* or --scope-from-arguments/],
    [["mcp", "--user", "alice", "--scope-from-arguments"], /either --scope-from-arguments or --user/],
    [["mcp", "--user", "alice", "--port", "9000"], /--port, --host and --token apply to --http only/],
    [["mcp", "--user", "alice", "--http", "--host", "0.0.0.0"], /reachable from other machines: pass --token/],
    [["mcp", "--user", "alice", "--http", "--token", "short"], /at least 16 characters/],
    [["ui", "--host", "0.0.0.0"], /inspector to 0.0.0.0 makes it reachable from other machines: pass --token/],
    [["ui", "--token", "short"], /at least 16 characters/],
    [["ui", "--user", " alice"], /whitespace/],
  ])("engram %j", async (args, message) => {
    const dataDir = freshDir();
    expectOneLineError(await runCli([...args, "--data-dir", dataDir]), 2, message);
  });

  test("a read on a data dir without memories says so, and creates nothing", async () => {
    const dataDir = freshDir();
    expectOneLineError(
      await runCli(["list", "--user", "alice", "--data-dir", dataDir]),
      2,
      /No memories in .*: there is no engram.db there/,
    );
    expect(existsSync(dataDir)).toBe(false);
  });

  test("with --json the one line is a JSON error with a stable code", async () => {
    const result = await runCli(["list", "--json"]);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stderr)).toEqual({ error: { code: "MISSING_SCOPE", message: expect.stringMatching(/list needs a scope/) } });
  });

  test.each([
    [["list", "--user", "alice", "--limit", "0"], /--limit must be a whole number from 1 to 1000/],
    [["list", "--user_id", "alice"], /unknown option '--user_id' \(Did you mean --user\?\)/],
    [["search", "--user", "alice"], /missing required argument 'query'/],
    [["nonsense"], /unknown command 'nonsense'/],
  ])(
    "regression: --json printed commander's usage errors as text: engram %j --json gives one JSON line and exit 2",
    async (args, message) => {
      const result = await runCli([...args, "--json", "--data-dir", freshDir()]);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(JSON.parse(result.stderr)).toEqual({ error: { code: "USAGE", message: expect.stringMatching(message) } });
    },
  );

  test("ENGRAM_DATA_DIR sets the data dir", async () => {
    const dataDir = freshDir();
    const result = await runCli(["stats", "--user", "alice"], { env: { ENGRAM_DATA_DIR: dataDir } });
    expectOneLineError(result, 2, new RegExp(`No memories in ${dataDir}`));
  });
});

describe("add --infer with a model from the environment or flags", () => {
  test("regression: --infer was always refused; with an OpenAI-compatible server (--base-url, --model) it extracts facts", async () => {
    const stub = await startOpenAiStub({ keepRequests: 10 });
    try {
      const d = ["--data-dir", freshDir()];
      const added = await cliJson<{ results: { event: string; memory: string }[] }>(
        ["add", "I live in Lisbon. I drink green tea every morning.", "--user", "alice", "--infer", "--base-url", stub.baseURL, ...d],
        { env: { OPENAI_MODEL: "local-model" } },
      );
      expect(added.results.map((r) => [r.event, r.memory])).toEqual([
        ["ADD", "I live in Lisbon."],
        ["ADD", "I drink green tea every morning."],
      ]);
      expect(stub.counters().llmRequests).toBe(1);
      expect(stub.requests().map((r) => [r.path, (r.body as { model?: string }).model])).toEqual([["/v1/chat/completions", "local-model"]]);
      // OPENAI_BASE_URL works as --base-url does; --model wins over OPENAI_MODEL.
      await cliJson(["add", "I work as a nurse at night.", "--user", "bob", "--infer", "--model", "flag-model", ...d], {
        env: { OPENAI_BASE_URL: stub.baseURL, OPENAI_MODEL: "env-model" },
      });
      expect(stub.requests().at(-1)?.body).toMatchObject({ model: "flag-model" });
      // Without --infer nothing calls the model.
      await cliJson(["add", "Stored as it is.", "--user", "alice", ...d], { env: { OPENAI_BASE_URL: stub.baseURL } });
      expect(stub.counters().llmRequests).toBe(2);
    } finally {
      await stub.close();
    }
  });
});

describe("memory commands", () => {
  test("add, search, list, get, update, history and delete, with JSON and table output", async () => {
    const d = ["--data-dir", freshDir()];
    const added = await cliJson<{ results: { id: string; event: string }[] }>([
      "add",
      "I prefer Postgres for everything except analytics",
      "--timestamp",
      "2026-01-01T00:00:00Z",
      "--user",
      "alice",
      "--metadata",
      '{"topic":"databases"}',
      ...d,
    ]);
    expect(added.results).toEqual([{ id: expect.any(String), event: "ADD", memory: "I prefer Postgres for everything except analytics" }]);
    const id = added.results[0]!.id;
    const fromStdin = await cliJson<{ results: { event: string; memory: string }[] }>(["add", "-", "--user", "alice", ...d], {
      input: "My dog is called Rex\n",
    });
    expect(fromStdin.results).toMatchObject([{ event: "ADD", memory: "My dog is called Rex" }]);
    const human = await runCli(["add", "Bob", "likes", "tea", "-u", "bob", ...d]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/│ event\s+│ id\s+│ memory/);
    expect(human.stdout).toMatch(/│ ADD\s+│ [0-9a-f-]{36} │ Bob likes tea/);

    const found = await cliJson<{ results: MemoryItem[] }>([
      "search",
      "which database do I like?",
      "--user",
      "alice",
      "--limit",
      "1",
      "--threshold",
      "0",
      ...d,
    ]);
    expect(found.results.map((item) => [item.id, item.userId])).toEqual([[id, "alice"]]);
    expect(found.results[0]?.score).toBeGreaterThan(0);

    const listed = await cliJson<{ results: MemoryItem[] }>(["list", "--user", "alice", ...d]);
    expect(listed.results.map((item) => item.memory)).toEqual([
      "I prefer Postgres for everything except analytics",
      "My dog is called Rex",
    ]);
    const filtered = await cliJson<{ results: MemoryItem[] }>(["list", "--user", "alice", "--filter", "topic=databases", ...d]);
    expect(filtered.results.map((item) => item.id)).toEqual([id]);
    const table = await runCli(["list", "--user", "alice", ...d]);
    expect(table.stdout).toMatch(/│ id\s+│ memory\s+│ scope\s+│ created \(UTC\)/);
    expect(table.stdout).toContain("My dog is called Rex");

    expect(await cliJson(["get", id, "--user", "alice", ...d])).toMatchObject({ id, userId: "alice", metadata: { topic: "databases" } });
    const otherScope = await runCli(["get", id, "--user", "bob", ...d, "--json"]);
    expect(otherScope.code).toBe(2);
    expect(JSON.parse(otherScope.stderr).error.code).toBe("MEMORY_NOT_FOUND");

    expect(await cliJson(["update", id, "I prefer SQLite now", "--user", "alice", ...d])).toMatchObject({
      id,
      memory: "I prefer SQLite now",
    });
    const { history } = await cliJson<{ history: { event: string; previousValue: string | null; newValue: string | null }[] }>([
      "history",
      id,
      "--user",
      "alice",
      ...d,
    ]);
    expect(history.map((entry) => [entry.event, entry.previousValue, entry.newValue])).toEqual([
      ["ADD", null, "I prefer Postgres for everything except analytics"],
      ["UPDATE", "I prefer Postgres for everything except analytics", "I prefer SQLite now"],
    ]);

    expect(await cliJson(["delete", id, "--user", "alice", ...d])).toEqual({ id, deleted: true, purged: false });
    expectOneLineError(await runCli(["get", id, "--user", "alice", ...d]), 2, /No memory/);
    expectOneLineError(await runCli(["delete", id, "--user", "alice", ...d]), 2, /No memory/);
  });

  test("forget asks first, refuses without a terminal unless --yes, then erases only that scope", async () => {
    const d = ["--data-dir", freshDir()];
    const source = file(
      "forget.jsonl",
      jsonl([
        { role: "user", content: "alice fact one", userId: "alice" },
        { role: "user", content: "alice fact two", userId: "alice", agentId: "coder" },
        { role: "user", content: "bob fact", userId: "bob" },
      ]),
    );
    await cliJson(["import", source, ...d]);
    const [first] = (await cliJson<{ results: MemoryItem[] }>(["list", "--user", "alice", ...d])).results;

    expectOneLineError(await runCli(["forget", "--user", "alice", ...d]), 2, /asks for confirmation .* pass --yes/);
    expect((await cliJson<{ memories: number }>(["stats", "--all-scopes", ...d])).memories).toBe(3);

    expect(await cliJson(["forget", "--user", "alice", "--yes", ...d])).toEqual({ userId: "alice", deleted: 2, purged: true });
    const stats = await cliJson<{ memories: number; scopes: unknown[] }>(["stats", "--all-scopes", ...d]);
    expect(stats).toMatchObject({ memories: 1, scopes: [{ userId: "bob", count: 1 }] });
    const { history } = await cliJson<{ history: { previousValue: string | null; newValue: string | null }[] }>([
      "history",
      first!.id,
      "--user",
      "alice",
      ...d,
    ]);
    expect(history.every((entry) => entry.previousValue === null && entry.newValue === null)).toBe(true);
    const human = await runCli(["forget", "-u", "bob", "-y", ...d]);
    expect(human).toMatchObject({ code: 0, stdout: 'Forgot user "bob": 1 memory deleted, history text and queued turns erased.\n' });
  });

  test("export writes every scope as JSONL that import reads back into another data dir; stats and pending report", async () => {
    const from = ["--data-dir", freshDir()];
    const to = ["--data-dir", freshDir()];
    const source = file(
      "export-source.jsonl",
      jsonl([
        { role: "user", content: "alice likes tea", userId: "alice", timestamp: "2024-01-02T03:04:05.000Z", metadata: { topic: "drinks" } },
        { role: "assistant", content: "coder uses tabs", userId: "alice", agentId: "coder" },
        { role: "user", content: "the agent's own note", agentId: "coder" },
        { role: "user", content: "a run note", runId: "r1" },
        { role: "user", content: "bob likes coffee", userId: "bob" },
      ]),
    );
    expect(await cliJson(["import", source, ...from])).toMatchObject({
      format: "jsonl",
      turns: 5,
      imported: 5,
      resumed: 0,
      failed: 0,
      scopes: 5,
    });

    expectOneLineError(await runCli(["export", ...from]), 2, /needs a scope/);
    const alice = await runCli(["export", "--user", "alice", ...from]);
    expect(
      alice.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).memory),
    ).toEqual(["alice likes tea", "coder uses tabs"]);

    const exportFile = join(root, "all.jsonl");
    expect(await cliJson(["export", "--all-scopes", "--output", exportFile, ...from])).toEqual({ exported: 5, file: exportFile });
    const lines = readFileSync(exportFile, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as MemoryItem);
    const essence = (items: MemoryItem[]) =>
      items
        .map(({ memory, userId, agentId, runId, metadata, createdAt }) => ({ memory, userId, agentId, runId, metadata, createdAt }))
        .sort((a, b) => a.memory.localeCompare(b.memory));
    expect(essence(lines)).toEqual([
      { memory: "a run note", userId: undefined, agentId: undefined, runId: "r1", metadata: {}, createdAt: expect.any(String) },
      {
        memory: "alice likes tea",
        userId: "alice",
        agentId: undefined,
        runId: undefined,
        metadata: { topic: "drinks" },
        createdAt: "2024-01-02T03:04:05.000Z",
      },
      { memory: "bob likes coffee", userId: "bob", agentId: undefined, runId: undefined, metadata: {}, createdAt: expect.any(String) },
      { memory: "coder uses tabs", userId: "alice", agentId: "coder", runId: undefined, metadata: {}, createdAt: expect.any(String) },
      {
        memory: "the agent's own note",
        userId: undefined,
        agentId: "coder",
        runId: undefined,
        metadata: {},
        createdAt: expect.any(String),
      },
    ]);

    expect(await cliJson(["import", exportFile, ...to])).toMatchObject({ turns: 5, imported: 5 });
    const copied = (await runCli(["export", "--all-scopes", ...to])).stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as MemoryItem);
    expect(essence(copied)).toEqual(essence(lines));

    const stats = await cliJson<{ memories: number; scopes: unknown[]; outbox: unknown; databaseBytes: number }>([
      "stats",
      "--all-scopes",
      ...to,
    ]);
    expect(stats).toMatchObject({ memories: 5, outbox: { pending: 0, processing: 0, failed: 0 } });
    expect(stats.scopes).toHaveLength(5);
    expect(stats.databaseBytes).toBeGreaterThan(0);
    expect(await cliJson(["stats", "--user", "alice", ...to])).toMatchObject({ memories: 2, scopes: [{ userId: "alice", count: 2 }] });
    expect(await cliJson(["pending", "--all-scopes", ...to])).toEqual({ pending: [] });
    expect(await cliJson(["pending", "--retry", "--all-scopes", ...to])).toEqual({ requeued: 0 });
    expect((await runCli(["pending", "--user", "alice", ...to])).stdout).toBe("Nothing pending.\n");
  });

  test("import reads a LoCoMo-schema file: one scope per conversation, turns dated by session", async () => {
    const d = ["--data-dir", freshDir()];
    const source = file(
      "locomo.json",
      JSON.stringify([
        {
          sample_id: "conv-1",
          conversation: {
            speaker_a: "Ann",
            speaker_b: "Ben",
            session_1: [
              { speaker: "Ann", dia_id: "D1:1", text: "I adopted a cat called Miso" },
              { speaker: "Ben", dia_id: "D1:2", text: "What a lovely name" },
            ],
            session_1_date_time: "29.12.2023, 22:42:04",
            session_2: [{ speaker: "Ann", dia_id: "D2:1", text: "Miso broke a vase" }],
            session_2_date_time: "1:56 pm on 8 May, 2024",
          },
          qa: [],
        },
        {
          sample_id: "conv-2",
          conversation: {
            speaker_a: "Cy",
            speaker_b: "Di",
            session_1: [{ speaker: "Cy", dia_id: "D1:1", text: "I run marathons" }],
            session_1_date_time: "1.1.2024, 08:00:00",
          },
        },
      ]),
    );
    expect(await cliJson(["import", source, "--agent", "bench", ...d])).toMatchObject({
      format: "locomo",
      turns: 4,
      imported: 4,
      scopes: 2,
    });
    const { results } = await cliJson<{ results: MemoryItem[] }>(["list", "--user", "conv-1", ...d]);
    // Turns of one session share its date, so list order within a session is by id: compare sorted.
    expect(results.map((item) => [item.memory, item.createdAt, item.agentId, item.metadata]).sort()).toEqual([
      ["Ann: I adopted a cat called Miso", "2023-12-29T22:42:04.000Z", "bench", { session: 1 }],
      ["Ann: Miso broke a vase", "2024-05-08T13:56:00.000Z", "bench", { session: 2 }],
      ["Ben: What a lovely name", "2023-12-29T22:42:04.001Z", "bench", { session: 1 }],
    ]);
    expect((await cliJson<{ results: MemoryItem[] }>(["list", "--user", "conv-2", ...d])).results).toHaveLength(1);
  });

  test("import names the lines of a batch the store refuses (a text over the length limit)", async () => {
    const dataDir = freshDir();
    const source = file(
      "long.jsonl",
      jsonl([
        { role: "user", content: "short", userId: "a" },
        { role: "user", content: "x".repeat(40_000), userId: "a" },
      ]),
    );
    expectOneLineError(await runCli(["import", source, "--data-dir", dataDir]), 2, /long\.jsonl:1 to long\.jsonl:2: .*(long|characters)/);
    const stored = existsSync(join(dataDir, "engram.db"))
      ? (await cliJson<{ memories: number }>(["stats", "--all-scopes", "--data-dir", dataDir])).memories
      : 0;
    expect(stored).toBe(0);
  });

  test("import of a file with a bad line names the line and stores nothing", async () => {
    const dataDir = freshDir();
    const source = file(
      "bad.jsonl",
      `${JSON.stringify({ role: "user", content: "fine", userId: "a" })}\n{"role":"user","content":"x","user_id":"b"}\n`,
    );
    expectOneLineError(await runCli(["import", source, "--data-dir", dataDir]), 2, /bad\.jsonl:2: .*did you mean "userId"/);
    expect(existsSync(dataDir)).toBe(false);
  });
});
