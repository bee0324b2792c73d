import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";

// Runs each example offline, as `npm run example:*` does, against the built package (npm test
// builds first), so the examples cannot rot.
const root = resolve(import.meta.dirname, "..");
const run = promisify(execFile);

async function runExample(name: string): Promise<string> {
  expect(existsSync(resolve(root, "dist/index.js")), "build first: npm run build").toBe(true);
  const { OPENAI_API_KEY: _key, OPENAI_BASE_URL: _url, ...env } = process.env;
  const { stdout, stderr } = await run(process.execPath, ["--disable-warning=ExperimentalWarning", `examples/${name}/index.ts`], {
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

describe.each(["ai-sdk", "mastra", "openai-agents"])("examples/%s", (name) => {
  test("remembers each user across two sessions, offline, never mixes them up; the agent edits the profile with a tool", {
    timeout: 150_000,
  }, async () => {
    const output = await runExample(name);
    expect(output).toContain("offline: scripted reply model");
    const dinner = "Where should I go for dinner tonight?";
    const alice = replyTo(output, "alice", dinner, "session 2");
    const bob = replyTo(output, "bob", dinner, "session 2");
    expect(alice).toMatch(/^bot: {3}\(scripted reply\) From what you told me before: .*vegetarian.*Lisbon/);
    expect(bob).toMatch(/sushi.*Berlin/);
    expect(bob).not.toMatch(/vegetarian|Lisbon/);
    expect(output).toContain("a search in bob's scope finds 0 of them");
    // The agent changed alice's profile with its tool, and the next call had the profile in its block.
    expect(replyTo(output, "alice", "Call me Ali from now on.", "session 3")).toContain("I have updated your profile");
    expect(output).toContain(`(alice's profile is now "name: Ali"`);
    expect(replyTo(output, "alice", "What should I cook tonight?", "session 3")).toMatch(/^bot: {3}\(scripted reply\) Hello Ali\./);
  });
});

test("the demo runs offline and keeps bob out of alice's memories", { timeout: 150_000 }, async () => {
  const output = await runExample("demo");
  expect(output).toContain("offline: local embeddings, scripted reply model");
  expect(output).toContain("Isolation check: bob's search for alice's facts finds 0 of them.");
});
