import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, inject, test } from "vitest";
import { MemoryNotFoundError } from "../../src/errors.js";
import { postgresHistory } from "../../src/history/postgres-history.js";
import { Memory, type MemoryOptions } from "../../src/memory.js";
import type { Scope } from "../../src/scope.js";
import { pgvectorStore } from "../../src/stores/pgvector-store.js";
import { scriptedLanguageModel } from "../../src/testing/scripted-language-model.js";
import { createDatabase, withClient } from "../support/databases.js";
import { controllableEmbedder } from "../support/faults.js";
import { faultSeed, recordFaults, scaled, scaledTimeout, seededChoices } from "./counts.js";

// Random interleavings of writes and purges across two Memory instances on one memory (two app
// servers): a direct update on either instance, through the purge's lock key or another one, or a
// write-behind turn whose model decides to update the memory, is paused while its new text is
// embedded; the memory is purged (by id or with its whole scope) before, while or after the write
// is let go. Whatever the order, a purged memory never comes back: not through get, getAll or
// search, not in history, and (SQLite) not in the database files.

const directory = mkdtempSync(join(tmpdir(), "engram-purge-fuzz-"));
const tables: string[] = [];
afterAll(async () => {
  rmSync(directory, { recursive: true, force: true });
  if (tables.length) {
    await withClient(inject("pgliteUrl"), (client) =>
      client.query(`DROP TABLE IF EXISTS ${tables.flatMap((t) => [t, `${t}_meta`, `${t}_tombstones`]).join(", ")}`),
    );
  }
});

interface Backend {
  name: string;
  races: number;
  shared(): Promise<{ options: Partial<MemoryOptions>; dataDir?: string }>;
}

const backends: Backend[] = [
  {
    name: "SQLite",
    races: 50,
    async shared() {
      const dataDir = join(directory, "sqlite");
      return { options: { dataDir }, dataDir };
    },
  },
  {
    name: "PostgreSQL",
    races: 25,
    async shared() {
      const table = `purge_fuzz_${process.pid}`;
      tables.push(table);
      const historyUrl = await createDatabase(inject("postgresUrl"), "purge_fuzz");
      return {
        options: {
          vectorStore: pgvectorStore({ connectionString: inject("pgliteUrl"), table }),
          historyStore: postgresHistory({ connectionString: historyUrl }),
        },
      };
    },
  },
];

type Writer = "update on the purging instance, another lock key" | "update on the other instance" | "write-behind update";
type Purge = "delete by id" | "delete by id through a narrower scope" | "deleteAll of the user";
type Release = "before the purge" | "as the purge starts" | "after the purge";
const writers: Writer[] = ["update on the purging instance, another lock key", "update on the other instance", "write-behind update"];
const purges: Purge[] = ["delete by id", "delete by id through a narrower scope", "deleteAll of the user"];
const releases: Release[] = ["before the purge", "as the purge starts", "after the purge"];
// A purge on the instance that is writing, under the same lock key, waits for the write by design:
// it cannot run while the write is paused, so that write cannot be released after it.
const interleavings = writers.flatMap((writer) =>
  purges.flatMap((purge) =>
    releases
      .filter(
        (release) =>
          !(writer === "update on the purging instance, another lock key" && purge !== "delete by id" && release === "after the purge"),
      )
      .map((release) => ({ writer, purge, release })),
  ),
);

/** Which of a data dir's SQLite files hold `marker`. */
function filesHolding(dataDir: string, marker: string): string[] {
  const needle = Buffer.from(marker, "utf8");
  return readdirSync(dataDir).filter((file) => file.startsWith("engram.db") && readFileSync(join(dataDir, file)).includes(needle));
}

describe.each(backends)("random write and purge interleavings on $name", (backend) => {
  test(`${scaled(backend.races)} races: a purged memory never comes back, its text never reappears`, {
    timeout: scaledTimeout(300_000),
  }, async () => {
    const seed = faultSeed();
    const random = seededChoices(seed);
    const { options, dataDir } = await backend.shared();
    const control = controllableEmbedder();
    const errors: string[] = [];
    /** The race running, to name it in errors reported in the background. */
    let current = "";
    // The model updates the secret of the turn's user when it is shown it, and otherwise decides nothing.
    const llm = scriptedLanguageModel((prompt) => {
      const secret = /\{"id":"(\d+)","text":"secret of (race-\d+) is \d+ (purged\d+q)"\}/.exec(prompt.text);
      return { json: { memory: secret ? [{ id: secret[1], event: "UPDATE", text: `secret of ${secret[2]} changed ${secret[3]}` }] : [] } };
    });
    const a = new Memory({
      ...options,
      embedder: control.embedder,
      llm,
      writeBehind: { pollIntervalMs: 10, minDelayMs: 1, maxDelayMs: 5 },
      onError: (error) => errors.push(`${current}: ${error}`),
      timeouts: { embedMs: 5_000 },
    });
    const b = new Memory({
      ...options,
      embedder: control.embedder,
      writeBehind: { enabled: false },
      timeouts: { embedMs: 5_000 },
      onError: (error) => errors.push(`${current}: ${error}`),
    });
    const seen = new Set<string>();
    let operations = 0;
    // Every interleaving, in a random order, as many times as the races go round.
    const order = [...interleavings].sort(() => random.next() - 0.5);
    try {
      for (let race = 0; race < scaled(backend.races); race++) {
        const { writer, purge, release } = order[race % order.length] as (typeof interleavings)[number];
        const where = `race ${race} (seed ${seed}): ${writer}, ${purge}, released ${release}`;
        seen.add(`${writer} / ${purge} / ${release}`);
        current = where;
        const userId = `race-${race}`;
        const marker = `purged${race}q`;
        const stored: Scope = { userId, agentId: "support-bot" };
        const [added] = (await b.add(`secret of ${userId} is ${random.int(10_000)} ${marker}`, { ...stored, infer: false })).results;
        const id = added?.id as string;
        // A neighbour in the same scope that must survive the purge of the other memory by id.
        await b.add(`neighbour of ${userId} stays`, { ...stored, infer: false });
        operations += 2;

        const paused = control.hold(`changed ${marker}`);
        const newText = `secret of ${userId} changed ${marker}`;
        const write =
          writer === "write-behind update"
            ? a.enqueue("my secret changed", { userId, agentId: "support-bot" }).then(() => a.flush({ timeoutMs: 20_000 }))
            : (writer === "update on the other instance" ? a : b).update(
                id,
                newText,
                writer === "update on the other instance" ? stored : { userId },
              );
        const settled = write.then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
        await paused.reached;
        const purgeScope: Scope = purge === "delete by id through a narrower scope" ? stored : { agentId: "support-bot" };
        const erase = () =>
          purge === "deleteAll of the user"
            ? b.deleteAll({ userId, purge: true }).then(() => undefined)
            : b.delete(id, { ...purgeScope, purge: true });
        if (release === "before the purge") {
          paused.release();
          await settled;
          await erase();
        } else if (release === "as the purge starts") {
          const erasing = erase();
          paused.release();
          await erasing;
        } else {
          await erase();
          paused.release();
        }
        const outcome = await settled;
        operations += 2;
        if ("error" in outcome)
          expect(MemoryNotFoundError.isInstance(outcome.error), `${where}: the write failed with ${String(outcome.error)}`).toBe(true);
        if (writer === "write-behind update" && "value" in outcome)
          expect(outcome.value, where).toEqual({ processed: 1, failed: 0, waiting: 0 });

        // Gone through every read, on both instances.
        for (const memory of [a, b]) {
          expect(await memory.get(id, stored), where).toBeNull();
          const all = (await memory.getAll({ userId, limit: 100 })).results.map((item) => item.memory);
          expect(
            all.filter((text) => text.includes(marker)),
            where,
          ).toEqual([]);
          expect(all, where).toEqual(purge === "deleteAll of the user" ? [] : [`neighbour of ${userId} stays`]);
          const found = (await memory.search("secret changed", { userId, limit: 100, threshold: 0 })).results.map((item) => item.memory);
          expect(
            found.filter((text) => text.includes(marker)),
            where,
          ).toEqual([]);
          const history = await memory.history(id, stored).catch((error: unknown) => {
            if (MemoryNotFoundError.isInstance(error)) return [];
            throw error;
          });
          expect(JSON.stringify(history), where).not.toContain(marker);
          operations += 4;
        }
        expect(await a.pending({ userId }), where).toEqual([]);
        if (dataDir) expect(filesHolding(dataDir, marker), where).toEqual([]);
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
      recordFaults(`purge race fuzz: ${backend.name}`, { races: scaled(backend.races), operations });
    }
    expect(errors).toEqual([]);
    // The run covered interleavings of every kind.
    expect(seen.size).toBe(Math.min(interleavings.length, scaled(backend.races)));
  });
});
