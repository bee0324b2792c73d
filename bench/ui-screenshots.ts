// `npm run ui:screenshots`: the README's pictures of the memory inspector, taken in headless
// Chromium (Debian's `chromium`, or CHROMIUM_PATH) from a small demo-like data set. Writes
// docs/images/inspector-search.png and docs/images/inspector-history.png.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Memory } from "../src/index.js";
import { deterministicEmbedder } from "../src/testing/index.js";
import { createInspectorHandler } from "../src/ui/index.js";
import { launchChromium } from "../test/support/browser.js";

const out = join(import.meta.dirname, "../docs/images");
const dataDir = mkdtempSync(join(tmpdir(), "engram-screenshots-"));
const memory = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
const alice = { userId: "alice", runId: "session-1" };
await memory.add("I prefer Postgres for everything except analytics, where I use ClickHouse.", alice);
await memory.add("Also, I'm allergic to peanuts.", alice);
const { results } = await memory.add("We deploy on Fridays.", alice);
await memory.add("I'm vegetarian and I live in Berlin.", { userId: "bob", runId: "session-1" });
const moved = results[0]?.id as string;
await memory.update(moved, "We deploy on Tuesdays, never on Fridays.", alice);

const server = createServer(createInspectorHandler({ memory, scope: { userId: "alice" } }));
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const browser = await launchChromium();
try {
  mkdirSync(out, { recursive: true });
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 760 });
  await page.goto(`${base}/memories?q=${encodeURIComponent("Which database should I use for analytics?")}`, { waitUntil: "load" });
  await page.waitForSelector("html[data-charts-ready=true]");
  await page.screenshot({ path: join(out, "inspector-search.png") });
  await page.setViewport({ width: 1100, height: 560 });
  await page.goto(`${base}/memory/${moved}`, { waitUntil: "load" });
  await page.screenshot({ path: join(out, "inspector-history.png") });
  console.log(`Wrote ${join(out, "inspector-search.png")} and inspector-history.png`);
} finally {
  await browser.close();
  server.close();
  await memory.close();
  rmSync(dataDir, { recursive: true, force: true });
}
