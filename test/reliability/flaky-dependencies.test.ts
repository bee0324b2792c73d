import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LanguageModelV4GenerateResult } from "@ai-sdk/provider";
import { MockLanguageModelV4 } from "ai/test";
import { afterAll, expect, test } from "vitest";
import { type EngramError, TimeoutError } from "../../src/errors.js";
import { Memory } from "../../src/memory.js";
import { controllableEmbedder } from "../support/faults.js";
import { faultSeed, recordFaults, repeats, scaled, scaledTimeout, seededChoices } from "./counts.js";

// Turns queued while the embedder and the extraction model, at random, hang (ignoring their abort
// signal) or fail for some of them: the healthy turns are written meanwhile, the others wait in
// the outbox and are retried; once the dependencies answer again, every turn is written once.

const directory = mkdtempSync(join(tmpdir(), "engram-flaky-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

type Fault = "none" | "embedder fails" | "embedder hangs" | "model fails" | "model hangs";

test("turns queued while the embedder and the model hang or fail at random are all written, once each, when they answer again", {
  timeout: scaledTimeout(120_000),
}, async () => {
  const seed = faultSeed();
  const random = seededChoices(seed);
  // One worker has a fixed capacity for retries: a longer run repeats the round instead of growing it.
  for (let round = 0; round < repeats(); round++) await outage(random, `seed ${seed}, round ${round}`, join(directory, `data-${round}`));
});

async function outage(random: ReturnType<typeof seededChoices>, where: string, dataDir: string): Promise<void> {
  const turns = Math.min(scaled(40), 40);
  const faults = Array.from({ length: turns }, () =>
    random.pick<Fault>([
      "none",
      "none",
      "none",
      "none",
      "embedder fails",
      "embedder hangs",
      "model fails",
      "model fails",
      "model hangs",
      "model hangs",
    ]),
  );
  const control = controllableEmbedder();
  const sickModel = new Map<string, "fails" | "hangs">();
  const usage = {
    inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: 5, text: 5, reasoning: undefined },
  };
  const llm = new MockLanguageModelV4({
    doGenerate: async (options): Promise<LanguageModelV4GenerateResult> => {
      // The turn's own marker: the one in its new message (existing memories of the user carry others).
      const marker = /(turn\d+z): something worth remembering/.exec(JSON.stringify(options.prompt))?.[1] ?? "";
      if (sickModel.get(marker) === "hangs") return new Promise(() => {});
      if (sickModel.get(marker) === "fails") throw new Error(`the model is down for ${marker}`);
      const text = JSON.stringify({ memory: [{ id: "new", event: "ADD", text: `the fact of ${marker}` }] });
      return { content: [{ type: "text", text }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] };
    },
  });
  for (const [i, fault] of faults.entries()) {
    const marker = `turn${i}z`;
    if (fault === "embedder fails") control.fail(marker);
    if (fault === "embedder hangs") control.hang(marker);
    if (fault === "model fails") sickModel.set(marker, "fails");
    if (fault === "model hangs") sickModel.set(marker, "hangs");
  }
  const reported: EngramError[] = [];
  const memory = new Memory({
    dataDir,
    embedder: control.embedder,
    llm,
    retry: { retries: 0 },
    llmRetry: { retries: 0, timeoutMs: 100 },
    timeouts: { embedMs: 100 },
    // A backoff longer than a hung attempt: the healthy turns get their turn between retries.
    writeBehind: { pollIntervalMs: 10, minDelayMs: 200, maxDelayMs: 1_000, maxAttempts: 100, concurrency: 2 },
    onError: (error) => reported.push(error),
  });
  const userOf = (i: number) => `user-${i % 4}`;
  /** Every stored fact, each checked to be in its turn's user's scope. */
  const storedFacts = async () => {
    const stored: string[] = [];
    for (let user = 0; user < 4; user++) {
      for (const item of (await memory.getAll({ userId: `user-${user}`, limit: 1000 })).results) {
        expect(userOf(Number(/turn(\d+)z/.exec(item.memory)?.[1])), item.memory).toBe(`user-${user}`);
        stored.push(item.memory);
      }
    }
    return stored;
  };
  try {
    for (let i = 0; i < turns; i++) await memory.enqueue(`turn${i}z: something worth remembering`, { userId: userOf(i) });
    // During the outage: the healthy turns are written, the others stay queued (never given up on).
    const healthy = faults.flatMap((fault, i) => (fault === "none" ? [`the fact of turn${i}z`] : []));
    const deadline = Date.now() + 30_000;
    while ((await storedFacts()).length < healthy.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await storedFacts()).sort(), where).toEqual(healthy.sort());
    const queued = await memory.pending({ allScopes: true });
    expect(queued.length).toBe(turns - healthy.length);
    expect(queued.filter((turn) => turn.status === "failed")).toEqual([]);

    control.heal();
    sickModel.clear();
    expect(await memory.flush({ timeoutMs: 30_000 })).toEqual({ processed: turns, failed: 0, waiting: 0 });

    const stored = await storedFacts();
    const expected = Array.from({ length: turns }, (_, i) => `the fact of turn${i}z`);
    const lost = expected.filter((text) => !stored.includes(text));
    const duplicated = expected.filter((text) => stored.filter((s) => s === text).length > 1);
    const timeouts = reported.filter((error) => TimeoutError.isInstance(error) || TimeoutError.isInstance((error as Error).cause)).length;
    recordFaults("hung and failing embedder and model", {
      turns,
      lost: lost.length,
      duplicated: duplicated.length,
      timeouts,
      operations: turns,
    });
    expect(lost).toEqual([]);
    expect(duplicated).toEqual([]);
    expect(stored).toHaveLength(turns);
    // The failures were seen, and retried: hangs as timeouts.
    if (faults.some((fault) => fault.endsWith("hangs"))) expect(timeouts).toBeGreaterThan(0);
    expect(await memory.pending({ allScopes: true })).toEqual([]);
  } finally {
    await memory.close();
  }
}
