import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";

// Runs each example offline, as `npm run example:*` does, against the built package (npm test
// builds first), so the examples cannot rot.
const root = resolve(import.meta.dirname, "..");
const run = promisify(execFile);

// The OpenAI SDK example starts the benchmark's stub server, which loads through tsx.
const nodeArgs: Record<string, string[]> = { openai: ["--import", "tsx"] };

async function runExample(name: string): Promise<string> {
  expect(existsSync(resolve(root, "dist/index.js")), "build first: npm run build").toBe(true);
  const { OPENAI_API_KEY: _key, OPENAI_BASE_URL: _url, ...env } = process.env;
  const args = ["--disable-warning=ExperimentalWarning", ...(nodeArgs[name] ?? []), `examples/${name}/index.ts`];
  const { stdout, stderr } = await run(process.execPath, args, {
    cwd: root,
    env,
    timeout: 120_000,
  });
  // No recall ran out of time or failed, the first one (which warmUp readies) included.
  expect(stderr).not.toContain("[engram]");
  return stdout;
}

/** The bot's reply to `user` saying `text` in the output. */
function replyTo(output: string, user: string, text: string, after = ""): string {
  const lines = output.slice(output.indexOf(after)).split("\n");
  const asked = lines.indexOf(`${user}: ${text}`);
  expect(asked, `${user}: ${text}`).toBeGreaterThanOrEqual(0);
  return lines[asked + 1] ?? "";
}

/** Session 2 of every framework example: each user's reply recalls their own facts and only theirs. */
function expectRemembersEachUser(output: string): void {
  expect(output).toContain("offline: scripted reply model");
  const dinner = "Where should I go for dinner tonight?";
  const alice = replyTo(output, "alice", dinner, "session 2");
  const bob = replyTo(output, "bob", dinner, "session 2");
  expect(alice).toMatch(/^bot: {3}\(scripted reply\) From what you told me before: .*vegetarian.*Lisbon/);
  expect(bob).toMatch(/sushi.*Berlin/);
  expect(bob).not.toMatch(/vegetarian|Lisbon/);
  expect(output).toContain("a search in bob's scope finds 0 of them");
}

describe.each(["ai-sdk", "mastra", "openai-agents"])("examples/%s", (name) => {
  test("remembers each user across two sessions, offline, never mixes them up; the agent edits the profile with a tool", {
    timeout: 150_000,
  }, async () => {
    const output = await runExample(name);
    expectRemembersEachUser(output);
    // The agent changed alice's profile with its tool, and the next call had the profile in its block.
    expect(replyTo(output, "alice", "Call me Ali from now on.", "session 3")).toContain("I have updated your profile");
    expect(output).toContain(`(alice's profile is now "name: Ali"`);
    expect(replyTo(output, "alice", "What should I cook tonight?", "session 3")).toMatch(/^bot: {3}\(scripted reply\) Hello Ali\./);
  });
});

test("examples/openai remembers each user across two sessions, offline, and never mixes them up", { timeout: 150_000 }, async () => {
  expectRemembersEachUser(await runExample("openai"));
});

test("the demo runs offline and keeps bob out of alice's memories", { timeout: 150_000 }, async () => {
  const output = await runExample("demo");
  expect(output).toContain("offline: local embeddings, scripted reply model");
  expect(output).toContain("Isolation check: bob's search for alice's facts finds 0 of them.");
});

test("examples/graph answers a traversal question from stored relations, offline, with one model call per add", {
  timeout: 150_000,
}, async () => {
  const output = await runExample("graph");
  expect(output).toContain("(4 model calls for 4 adds: one each, facts and relations together)");
  expect(output).toContain('  Dan (reports to Bob; memory: "Bob manages Dan, a designer")');
  expect(output).toContain('  Erin (reports to Carol; memory: "Carol manages Erin")');
  expect(output).not.toMatch(/Frank \(reports to/);
  expect(output).toContain("Neighbors of Dan: Bob, Lisbon");
  expect(output).toContain("Isolation check: another scope sees 0 of these relations.");
});

describe("npm run example:* and demo", () => {
  test("regression: each run rebuilt the package with declarations (about 40 s); they run from source, every engram import mapped", () => {
    const packageJson = JSON.parse(readFileSync(resolve(root, "package.json"), "utf8")) as { scripts: Record<string, string> };
    const scripts = Object.entries(packageJson.scripts).filter(([name]) => name === "demo" || name.startsWith("example:"));
    expect(scripts.map(([name]) => name).sort()).toEqual([
      "demo",
      "example:ai-sdk",
      "example:graph",
      "example:mastra",
      "example:openai",
      "example:openai-agents",
    ]);
    for (const [name, script] of scripts) {
      expect(script, name).not.toMatch(/tsup|npm run build/);
      expect(script, name).toMatch(/^TSX_TSCONFIG_PATH=examples\/tsconfig\.json node --import tsx examples\//);
    }
    const { compilerOptions } = JSON.parse(readFileSync(resolve(root, "examples/tsconfig.json"), "utf8")) as {
      compilerOptions: { paths: Record<string, string[]> };
    };
    const imported = new Set<string>();
    for (const entry of readdirSync(resolve(root, "examples"), { recursive: true, encoding: "utf8" })) {
      if (!entry.endsWith(".ts")) continue;
      for (const [, specifier] of readFileSync(resolve(root, "examples", entry), "utf8").matchAll(/from "(engram(?:\/[^"]+)?)"/g)) {
        imported.add(specifier as string);
      }
    }
    expect(imported.size).toBeGreaterThan(2);
    for (const specifier of imported) {
      const [target] = compilerOptions.paths[specifier] ?? [];
      expect(target, specifier).toBeDefined();
      expect(existsSync(resolve(root, "examples", target as string)), specifier).toBe(true);
    }
  });
});
