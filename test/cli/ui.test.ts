import { mkdtempSync, rmSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { assertBuilt, type CliProcess, cliJson, startCli } from "./run-cli.js";

// `engram ui` as users start it: the built CLI, a real port, SIGTERM to stop.

const dataDir = mkdtempSync(join(tmpdir(), "engram-ui-cli-"));
beforeAll(async () => {
  assertBuilt();
  await cliJson(["add", "Alice prefers Postgres", "--user", "alice", "--data-dir", dataDir]);
  await cliJson(["add", "Bob's vault code is 4711", "--user", "bob", "--data-dir", dataDir]);
}, 120_000);
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

async function started(server: CliProcess): Promise<string> {
  const deadline = Date.now() + 60_000;
  const printed = () => server.stderr().match(/engram inspector on (http:\/\/\S+) ; scope: (.*)\n/);
  while (!printed()) {
    if (server.child.exitCode !== null || Date.now() > deadline) throw new Error(`the inspector did not start: ${server.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return (printed() as RegExpMatchArray)[1] as string;
}

test("engram ui serves the operator view on 127.0.0.1, answers loopback names only, and stops cleanly on SIGTERM", {
  timeout: 120_000,
}, async () => {
  const server = startCli(["ui", "--port", "0", "--data-dir", dataDir]);
  try {
    const url = new URL(await started(server));
    expect(url.hostname).toBe("127.0.0.1");
    expect(server.stderr()).toContain("scope: every scope (operator view)");
    const page = await fetch(url);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("2 memories in 2 scopes");
    expect(html).toContain('href="/memories?user=bob"');
    // fetch() sends its own Host header: node:http sends the one a rebound DNS name would carry.
    const rebound = await new Promise<number | undefined>((resolve, reject) => {
      get({ host: "127.0.0.1", port: url.port, path: "/", headers: { host: `attacker.example:${url.port}` } }, (response) => {
        response.resume();
        resolve(response.statusCode);
      }).on("error", reject);
    });
    expect(rebound).toBe(403);
  } finally {
    server.child.kill("SIGTERM");
  }
  expect((await server.done).code).toBe(0);
});

test("engram ui --user alice --host 0.0.0.0 --token: every request needs the token, and only alice's scope is there", {
  timeout: 120_000,
}, async () => {
  const token = "ui-token-0123456789abcdef";
  const server = startCli(["ui", "--user", "alice", "--host", "0.0.0.0", "--port", "0", "--data-dir", dataDir], {
    env: { ENGRAM_UI_TOKEN: token },
  });
  try {
    const printed = new URL(await started(server));
    expect(printed.searchParams.get("token")).toBe(token);
    expect(server.stderr()).toContain('scope: user "alice"');
    const base = `http://127.0.0.1:${printed.port}`;
    expect((await fetch(`${base}/memories`)).status).toBe(401);
    const authorization = { authorization: `Bearer ${token}` };
    const page = await fetch(`${base}/memories`, { headers: authorization });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("Alice prefers Postgres");
    expect(html).not.toContain("4711");
    expect((await fetch(`${base}/memories?user=bob`, { headers: authorization })).status).toBe(404);
  } finally {
    server.child.kill("SIGTERM");
  }
  expect((await server.done).code).toBe(0);
});
