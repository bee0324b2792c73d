import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, inject, test } from "vitest";
import { MemoryNotFoundError } from "../../src/errors.js";
import { postgresHistory } from "../../src/history/postgres-history.js";
import { Memory, type MemoryOptions } from "../../src/memory.js";
import { pgvectorStore } from "../../src/stores/pgvector-store.js";
import { scriptedLanguageModel } from "../../src/testing/scripted-language-model.js";
import { createDatabase, withClient } from "../support/databases.js";
import { controllableEmbedder } from "../support/faults.js";
import { recordFaults } from "./counts.js";

// A purge is final: a write that was decided before the purge and lands after it (another app
// server, another lock key of the same process, the write-behind) is refused by the store, which
// re-checks in the write's own transaction that the memory is still the version it read and was
// never erased; history entries appended for an erased memory keep no text. Each interleaving is
// stepped through by hand: the writer is paused inside the embedder while the purge runs.

const directory = mkdtempSync(join(tmpdir(), "engram-purge-race-"));
const tables: string[] = [];
/** Interleavings stepped through, per backend. */
const races = new Map<string, number>();
afterAll(async () => {
  for (const [backend, count] of races) recordFaults(`purge races by hand: ${backend.split(" ")[0]}`, { races: count });
  rmSync(directory, { recursive: true, force: true });
  const url = inject("pgliteUrl");
  await withClient(url, (client) =>
    client.query(`DROP TABLE IF EXISTS ${tables.flatMap((t) => [t, `${t}_meta`, `${t}_tombstones`]).join(", ") || "none_at_all"}`),
  );
});

let runs = 0;

interface Backend {
  name: string;
  /** Options of two Memory instances sharing one memory (two app servers), and where its SQLite files are, if any. */
  shared(): Promise<{ options: () => Partial<MemoryOptions>; dataDir?: string }>;
}

const backends: Backend[] = [
  {
    name: "SQLite (one data dir)",
    async shared() {
      const dataDir = join(directory, `data-${runs++}`);
      return { options: () => ({ dataDir }), dataDir };
    },
  },
  {
    name: "PostgreSQL (pgvector + PostgreSQL history)",
    async shared() {
      const table = `race_${process.pid}_${runs++}`;
      tables.push(table);
      const historyUrl = await createDatabase(inject("postgresUrl"), "purge_race");
      return {
        options: () => ({
          vectorStore: pgvectorStore({ connectionString: inject("pgliteUrl"), table }),
          historyStore: postgresHistory({ connectionString: historyUrl }),
        }),
      };
    },
  },
];

/** Which of a data dir's SQLite files hold `marker` as UTF-8 bytes. */
function filesHolding(dataDir: string, marker: string): string[] {
  const needle = Buffer.from(marker, "utf8");
  return readdirSync(dataDir).filter((file) => file.startsWith("engram.db") && readFileSync(join(dataDir, file)).includes(needle));
}

const texts = (history: { previousValue: string | null; newValue: string | null }[]) =>
  history.flatMap((entry) => [entry.previousValue, entry.newValue]).filter((value) => value !== null);

describe.each(backends)("a purge is final on $name", (backend) => {
  async function setup(extra: Partial<MemoryOptions> = {}) {
    const { options, dataDir } = await backend.shared();
    const control = controllableEmbedder();
    const errors: unknown[] = [];
    const make = (more: Partial<MemoryOptions> = {}) =>
      new Memory({
        embedder: control.embedder,
        writeBehind: { enabled: false },
        onError: (error) => errors.push(error),
        ...options(),
        ...more,
      });
    const a = make(extra);
    const b = make();
    races.set(backend.name, (races.get(backend.name) ?? 0) + 1);
    return { a, b, control, dataDir, errors, close: () => Promise.all([a.close(), b.close()]) };
  }

  test("regression: a direct update() on another instance, paused while its text is embedded, no longer brings a purged memory back", async () => {
    const { a, b, control, dataDir, close } = await setup();
    const scope = { userId: "alice" };
    const [added] = (await a.add("My bank PIN is 4321 zanzibar", scope)).results;
    const id = added?.id as string;
    const paused = control.hold("PIN is 9999");
    const update = a.update(id, "My bank PIN is 9999 now", scope).catch((error: unknown) => error);
    await paused.reached;
    await b.delete(id, { ...scope, purge: true });
    paused.release();
    expect(MemoryNotFoundError.isInstance(await update)).toBe(true);
    expect(await a.get(id, scope)).toBeNull();
    expect((await b.getAll(scope)).results).toEqual([]);
    expect(texts(await b.history(id, scope))).toEqual([]);
    if (dataDir) expect(filesHolding(dataDir, "zanzibar")).toEqual([]);
    await close();
  });

  test("regression: the same instance, updating through a scope of another lock key ({ userId }) while a purge runs through { agentId }", async () => {
    const { a, control, dataDir, close } = await setup();
    const stored = { userId: "alice", agentId: "support-bot" };
    const [added] = (await a.add("Door code is 1234 quokka", stored)).results;
    const id = added?.id as string;
    const paused = control.hold("Door code is 5678");
    const update = a.update(id, "Door code is 5678", { userId: "alice" }).catch((error: unknown) => error);
    await paused.reached;
    await a.delete(id, { agentId: "support-bot", purge: true });
    paused.release();
    expect(MemoryNotFoundError.isInstance(await update)).toBe(true);
    expect(await a.get(id, stored)).toBeNull();
    expect(texts(await a.history(id, stored))).toEqual([]);
    if (dataDir) expect(filesHolding(dataDir, "quokka")).toEqual([]);
    await close();
  });

  test("regression: a write-behind UPDATE, paused while its new text is embedded, lands after the purge: refused, decided again, the purged text never returns", async () => {
    const llm = scriptedLanguageModel(() => ({ json: { memory: [{ id: "0", event: "UPDATE", text: "Bank PIN is 9999 wombat" }] } }));
    const { a, b, control, dataDir, errors, close } = await setup({
      llm,
      writeBehind: { pollIntervalMs: 20, minDelayMs: 1, maxDelayMs: 5 },
    });
    const scope = { userId: "alice" };
    const [added] = (await b.add("Bank PIN is 4321 platypus", scope)).results;
    const id = added?.id as string;
    const paused = control.hold("Bank PIN is 9999");
    await a.enqueue("Actually my PIN changed to 9999", scope);
    await paused.reached;
    await b.delete(id, { ...scope, purge: true });
    paused.release();
    expect(await a.flush({ timeoutMs: 10_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
    // Decided again against what is stored now: the memory it wanted to update is gone.
    expect(llm.prompts).toHaveLength(2);
    expect(llm.prompts[1]?.text).not.toContain("platypus");
    expect(await b.get(id, scope)).toBeNull();
    expect((await b.getAll(scope)).results.map((item) => item.memory)).toEqual([]);
    expect(texts(await b.history(id, scope))).toEqual([]);
    if (dataDir) expect(filesHolding(dataDir, "platypus")).toEqual([]);
    expect(errors).toEqual([]);
    await close();
  });

  test("regression: a memory deleted earlier can be purged on its own, scoped: its text leaves history and the files", async () => {
    const { a, b, dataDir, close } = await setup();
    const scope = { userId: "alice", agentId: "coder" };
    const [added] = (await a.add("Allergic to penicillin capybara", scope)).results;
    const id = added?.id as string;
    await a.delete(id, scope);
    expect(texts(await a.history(id, scope))).toEqual(["Allergic to penicillin capybara", "Allergic to penicillin capybara"]);
    // No oracle: another user's scope, and a scope that does not contain it, see nothing to purge.
    for (const other of [{ userId: "bob" }, { userId: "alice", agentId: "writer" }]) {
      const error = await b.delete(id, { ...other, purge: true }).catch((e: unknown) => e);
      expect(MemoryNotFoundError.isInstance(error), JSON.stringify(other)).toBe(true);
    }
    expect(texts(await a.history(id, scope))).toHaveLength(2);
    await b.delete(id, { userId: "alice", purge: true });
    expect(texts(await a.history(id, scope))).toEqual([]);
    expect((await a.history(id, scope)).map((entry) => entry.event)).toEqual(["ADD", "DELETE"]);
    if (dataDir) expect(filesHolding(dataDir, "capybara")).toEqual([]);
    // Nothing left to erase: the id is as unknown as any other.
    expect(MemoryNotFoundError.isInstance(await a.delete(id, { ...scope, purge: true }).catch((e: unknown) => e))).toBe(true);
    await close();
  });
});
