import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import type { Browser, Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Memory, type Scope } from "../../src/index.js";
import { deterministicEmbedder } from "../../src/testing/index.js";
import { createInspectorHandler } from "../../src/ui/index.js";
import { loopbackHostNames } from "../../src/ui/inspector-security.js";
import { launchChromium } from "../support/browser.js";

// The inspector in a real browser (headless Chromium driven by puppeteer-core): what a person sees
// and clicks. Seeded through the public API, served by createInspectorHandler on 127.0.0.1.

const scriptText = '<script>window.__pwned = "script"</script><img src="x" onerror="window.__pwned = \'img\'">';
const results = join(import.meta.dirname, "../../bench/results");

let dataDir: string;
let memory: Memory;
let browser: Browser;
const servers: Server[] = [];
const ids: Record<string, string> = {};

async function serve(scope?: Scope): Promise<string> {
  const handler = createInspectorHandler({ memory, ...(scope ? { scope } : {}), allowedHosts: loopbackHostNames });
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function open(url: string): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  const response = await page.goto(url, { waitUntil: "load" });
  expect(response?.status(), url).toBe(200);
  return page;
}

const textOf = (page: Page, selector: string) => page.$eval(selector, (element) => element.textContent ?? "");

async function submit(page: Page, selector: string): Promise<void> {
  await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "engram-inspector-"));
  // A worker that gives up at once: a turn queued for extraction without a model fails, to be retried.
  const seeding = new Memory({
    dataDir,
    embedder: deterministicEmbedder(),
    writeBehind: { maxAttempts: 1, pollIntervalMs: 10 },
    onError: () => {},
  });
  const add = async (text: string, scope: Scope, metadata?: Record<string, string>) => {
    const { results: added } = await seeding.add(text, { ...scope, ...(metadata ? { metadata } : {}) });
    return added[0]?.id as string;
  };
  ids.postgres = await add("I prefer Postgres for databases", { userId: "alice" }, { source: "chat" });
  ids.dog = await add("My dog is called Rex", { userId: "alice" });
  ids.script = await add(scriptText, { userId: "alice" });
  ids.city = await add("I live in Porto", { userId: "alice" });
  ids.bob = await add("Bob's secret: the vault code is 4711", { userId: "bob" });
  await seeding.update(ids.city, "I live in Lisbon", { userId: "alice" });
  await seeding.enqueue("Remember that I like hiking", { userId: "alice", infer: true });
  await seeding.flush({ timeoutMs: 10_000 });
  const [failed] = await seeding.pending({ userId: "alice" });
  expect(failed?.status).toBe("failed");
  await seeding.close();
  // The inspector's own Memory processes no turns: a retried turn stays visible as pending.
  memory = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
  browser = await launchChromium();
  mkdirSync(results, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const server of servers) server.close();
  await memory?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("the operator view", () => {
  test("lists every scope with its count, and a scope's memories with text, metadata, source and dates", async () => {
    const base = await serve();
    const page = await open(`${base}/`);
    const rows = await page.$$eval("[data-testid=scopes] tbody tr", (trs) =>
      trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent?.trim())),
    );
    expect(rows).toEqual([
      ["alice", "", "", "4"],
      ["bob", "", "", "1"],
    ]);
    await submit(page, "[data-testid=scopes] a[href*='user=alice']");
    expect(await textOf(page, "[data-testid=scope]")).toBe("user alice");
    const memories = await page.$$eval("[data-testid=memory]", (trs) =>
      trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent?.trim())),
    );
    expect(memories.map((row) => row[0])).toEqual([
      "I prefer Postgres for databases",
      "My dog is called Rex",
      scriptText,
      "I live in Lisbon",
    ]);
    expect(memories[0]?.[1]).toBe('{"source":"chat"}');
    expect(memories[0]?.[2]).toBe("chat");
    expect(memories[0]?.[3]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    await page.close();
  });

  test("a stored <script> and an onerror handler render as text in the browser: nothing runs", async () => {
    const base = await serve();
    const page = await open(`${base}/memories?user=alice`);
    const cell = await page.$eval(`[data-id="${ids.script}"] td a`, (a) => ({ text: a.textContent, children: a.children.length }));
    expect(cell).toEqual({ text: scriptText, children: 0 });
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: string }).__pwned)).toBeUndefined();
    expect(await page.$$eval("img", (images) => images.length)).toBe(0);
    const detail = await open(`${base}/memory/${ids.script}?user=alice`);
    expect(await textOf(detail, "[data-testid=memory-text]")).toBe(scriptText);
    expect(await detail.$eval("textarea[name=text]", (area) => (area as unknown as { value: string }).value)).toBe(scriptText);
    expect(await detail.evaluate(() => (globalThis as unknown as { __pwned?: string }).__pwned)).toBeUndefined();
    await page.close();
    await detail.close();
  });

  test("the plots are drawn by the bundled Chart.js: changes per day by event and the length distribution", async () => {
    const base = await serve();
    const page = await open(`${base}/memories?user=alice`);
    await page.waitForSelector("html[data-charts-ready=true]");
    expect(await page.evaluate(() => typeof (globalThis as unknown as { Chart?: unknown }).Chart)).toBe("function");
    // Four ADDs and one UPDATE in alice's scope; four memories by length.
    expect(await page.$eval("[data-testid=per-day]", (canvas) => canvas.getAttribute("data-drawn"))).toBe("5");
    expect(await page.$eval("[data-testid=lengths]", (canvas) => canvas.getAttribute("data-drawn"))).toBe("4");
    expect(await page.$eval("[data-testid=per-day]", (canvas) => Number(canvas.getAttribute("width")))).toBeGreaterThan(0);
    await page.screenshot({ path: join(results, "inspector-memories.png"), fullPage: true });
    await page.close();
  });

  test("a search shows each result's score parts and the memory block as the model gets it, with its o200k token count", async () => {
    const base = await serve();
    const page = await open(`${base}/memories?user=alice`);
    await page.type("[data-testid=query]", "Postgres databases");
    await submit(page, "form.search button");
    const rows = await page.$$eval("[data-testid=result]", (trs) =>
      trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent?.trim())),
    );
    expect(rows[0]?.[0]).toBe("I prefer Postgres for databases");
    const headers = await page.$$eval(".scores th", (ths) => ths.map((th) => th.textContent));
    expect(headers).toEqual([
      "memory",
      "score",
      "vector",
      "keyword",
      "window",
      "neighbours",
      "session",
      "entity",
      "speaker",
      "date",
      "logit",
      "probability",
    ]);
    const score = Number(rows[0]?.[1]);
    expect(score).toBeGreaterThan(0);
    expect(Number(rows[0]?.[11])).toBeCloseTo(score, 3);
    expect(Number(rows[0]?.[2])).toBeGreaterThan(0);
    const block = await textOf(page, "[data-testid=block]");
    expect(block).toMatch(/^<engram-memories label="Relevant memories about this user" nonce="[0-9a-f]+">\n/);
    expect(block).toContain('"I prefer Postgres for databases"');
    expect(Number(await textOf(page, "[data-testid=block-tokens]"))).toBe(countTokens(block));
    await page.waitForSelector("html[data-charts-ready=true]");
    expect(await page.$eval("[data-testid=score-distribution]", (canvas) => canvas.getAttribute("data-drawn"))).toBe(String(rows.length));
    await page.screenshot({ path: join(results, "inspector-search.png"), fullPage: true });
    await page.close();
  });

  test("a memory's history is a timeline of ADD and UPDATE with the previous and new text; an edit adds to it", async () => {
    const base = await serve();
    const page = await open(`${base}/memories?user=alice`);
    await submit(page, `[data-id="${ids.city}"] td a`);
    const timeline = () =>
      page.$$eval("[data-testid=history-entry]", (items) => items.map((item) => item.textContent?.replace(/\s+/g, " ").trim()));
    expect(await timeline()).toEqual([
      expect.stringMatching(/^ADD .* after: I live in Porto$/),
      expect.stringMatching(/^UPDATE .* before: I live in Porto after: I live in Lisbon$/),
    ]);
    await page.screenshot({ path: join(results, "inspector-history.png"), fullPage: true });
    await page.$eval("textarea[name=text]", (area) => {
      (area as unknown as { value: string }).value = "I live in Lisbon, near the river";
    });
    await submit(page, "[data-testid=edit-form] button");
    expect(await textOf(page, ".notice")).toBe("Saved.");
    expect(await textOf(page, "[data-testid=memory-text]")).toBe("I live in Lisbon, near the river");
    expect((await timeline()).at(-1)).toMatch(/^UPDATE .* before: I live in Lisbon after: I live in Lisbon, near the river$/);
    expect((await memory.get(ids.city as string, { userId: "alice" }))?.memory).toBe("I live in Lisbon, near the river");
    await page.close();
  });

  test("delete keeps the history readable; purge asks for confirmation, then erases the text everywhere", async () => {
    const base = await serve();
    const page = await open(`${base}/memory/${ids.dog}?user=alice`);
    await submit(page, "[data-testid=delete]");
    expect(await textOf(page, "h1")).toBe("Deleted memory");
    const events = await page.$$eval("[data-testid=history-entry] .event", (spans) => spans.map((span) => span.textContent));
    expect(events).toEqual(["ADD", "DELETE"]);
    expect(await memory.get(ids.dog as string, { userId: "alice" })).toBeNull();

    await submit(page, "[data-testid=purge]");
    expect(await textOf(page, "h1")).toBe("Purge this memory?");
    expect(await textOf(page, ".memory-text")).toBe("My dog is called Rex");
    // Nothing is purged before the confirmation.
    expect((await memory.history(ids.dog as string, { userId: "alice" }))[0]?.newValue).toBe("My dog is called Rex");
    await submit(page, "[data-testid=confirm-purge]");
    expect(await textOf(page, ".notice")).toMatch(/^Purged/);
    expect(await page.$$eval("[data-testid=memory] td:first-child", (cells) => cells.map((cell) => cell.textContent))).not.toContain(
      "My dog is called Rex",
    );
    const history = await memory.history(ids.dog as string, { userId: "alice" });
    expect(history.map((entry) => [entry.previousValue, entry.newValue])).toEqual([
      [null, null],
      [null, null],
    ]);
    expect(await page.content()).not.toContain("Rex");
    // The deleted memory's changes still count in the plot: its DELETE is there.
    const perDay = JSON.parse((await page.$eval("[data-testid=per-day]", (canvas) => canvas.getAttribute("data-chart"))) as string) as {
      datasets: { label: string; data: number[] }[];
    };
    const total = (label: string) => perDay.datasets.find((dataset) => dataset.label === label)?.data.reduce((sum, n) => sum + n, 0);
    expect([total("ADD"), total("UPDATE"), total("DELETE")]).toEqual([4, 2, 1]);
    await page.close();
  });

  test("the outbox shows a failed turn with its error; retry puts it back in the queue", async () => {
    const base = await serve();
    const page = await open(`${base}/outbox`);
    const row = () =>
      page.$eval("[data-testid=turn]", (tr) => ({
        status: tr.getAttribute("data-status"),
        text: tr.textContent?.replace(/\s+/g, " "),
      }));
    const before = await row();
    expect(before.status).toBe("failed");
    expect(before.text).toContain("Remember that I like hiking");
    expect(before.text).toMatch(/ConfigError: This turn was queued for extraction, but this Memory has no llm/);
    await page.screenshot({ path: join(results, "inspector-outbox.png"), fullPage: true });
    await submit(page, "[data-testid=retry]");
    expect(await textOf(page, ".notice")).toMatch(/^Requeued/);
    expect((await row()).status).toBe("pending");
    expect(await page.$("[data-testid=retry]")).toBeNull();
    expect((await memory.pending({ userId: "alice" })).map((turn) => turn.status)).toEqual(["pending"]);
    await page.close();
  });
});

describe("a scoped view (engram ui --user alice)", () => {
  test("shows alice only: another scope is unreachable by link, URL or form", async () => {
    const base = await serve({ userId: "alice" });
    const page = await open(`${base}/`);
    expect(page.url()).toBe(`${base}/memories`);
    expect(await page.content()).not.toContain("Bob");
    expect(
      await page.$$eval("a", (links) => links.map((link) => link.getAttribute("href")).filter((href) => href?.includes("user="))),
    ).toEqual([]);
    for (const path of [
      "/?user=bob",
      "/memories?user=bob",
      `/memory/${ids.bob}?user=bob`,
      `/memory/${ids.bob}`,
      "/outbox?user=bob",
      "/memories?user=alice&q=vault",
    ]) {
      const response = await page.goto(`${base}${path}`);
      expect(response?.status(), path).toBe(404);
      expect(await page.content(), path).not.toContain("4711");
    }
    // Searching for bob's words from alice's view finds nothing of his.
    const search = await page.goto(`${base}/memories?q=${encodeURIComponent("vault code 4711")}`);
    expect(search?.status()).toBe(200);
    expect(await page.$$eval("[data-testid=result]", (rows) => rows.length)).toBe(0);
    expect(await page.$eval("main", (main) => main.textContent)).not.toMatch(/secret/);
    // A form of this page, pointed at bob's memory: refused like an unknown id, and bob keeps it.
    await page.goto(`${base}/memory/${ids.postgres}`);
    const csrf = (await page.$eval("input[name=_csrf]", (input) => input.getAttribute("value"))) as string;
    const status = await page.evaluate(
      async (bobId, token) => {
        const response = await fetch(`/memory/${bobId}/delete`, { method: "POST", body: new URLSearchParams({ _csrf: token }) });
        return response.status;
      },
      ids.bob as string,
      csrf,
    );
    expect(status).toBe(404);
    expect(await memory.get(ids.bob as string, { userId: "bob" })).not.toBeNull();
    await page.close();
  });
});
