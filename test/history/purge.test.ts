import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, describe, expect, test } from "vitest";
import { MemoryNotFoundError } from "../../src/errors.js";
import { loadNodeSqlite } from "../../src/internal/node-sqlite.js";
import { Memory } from "../../src/memory.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";

// History keeps every previous value; `purge: true` erases a text for good, down to the bytes of
// the database file and its write-ahead log. The markers are single unusual words, so that the
// keyword index (which stores lower-cased word tokens) would show them too.

const directory = mkdtempSync(join(tmpdir(), "engram-purge-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let runs = 0;

function newDataDir(): string {
  return join(directory, `data-${runs++}`);
}

/** Which of the database's files (engram.db, engram.db-wal, engram.db-shm) hold `marker`, as UTF-8 bytes. */
function filesHolding(dataDir: string, marker: string): string[] {
  const needle = Buffer.from(marker, "utf8");
  return readdirSync(dataDir)
    .filter((file) => file.startsWith("engram.db"))
    .filter((file) => readFileSync(join(dataDir, file)).includes(needle));
}

function events(history: { event: string; previousValue: string | null; newValue: string | null }[]) {
  return history.map(({ event, previousValue, newValue }) => [event, previousValue, newValue]);
}

const newMemory = (dataDir: string, enabled = false) =>
  new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled, pollIntervalMs: 60_000 }, onError: () => {} });

describe("history", () => {
  test("keeps the previous value of every UPDATE and DELETE, readable by the memory's own scope after the delete", async () => {
    const dataDir = newDataDir();
    const memory = newMemory(dataDir);
    const scope = { userId: "alice", agentId: "coder", runId: "r1" };
    const {
      results: [added],
    } = await memory.add("I use vim", scope);
    const id = added?.id as string;
    await memory.update(id, "I use emacs", scope);
    await memory.update(id, "I use emacs", scope); // unchanged text: no entry
    await memory.update(id, "I use helix", { userId: "alice" });
    await memory.delete(id, { userId: "alice", agentId: "coder" });
    const expected = [
      ["ADD", null, "I use vim"],
      ["UPDATE", "I use vim", "I use emacs"],
      ["UPDATE", "I use emacs", "I use helix"],
      ["DELETE", "I use helix", null],
    ];
    // Any scope that contains the memory reads its history; createdAt is ISO 8601, oldest first.
    for (const reader of [scope, { userId: "alice" }, { agentId: "coder" }, { runId: "r1" }, { userId: "alice", runId: "r1" }]) {
      const history = await memory.history(id, reader);
      expect(events(history), JSON.stringify(reader)).toEqual(expected);
      expect(history.every((entry) => entry.memoryId === id && !Number.isNaN(Date.parse(entry.createdAt)))).toBe(true);
    }
    for (const stranger of [{ userId: "bob" }, { userId: "alice", agentId: "writer" }, { runId: "r2" }]) {
      await expect(memory.history(id, stranger)).rejects.toSatisfy((error) => MemoryNotFoundError.isInstance(error));
    }
    // The deleted memory itself is gone.
    expect(await memory.get(id, scope)).toBeNull();
    await expect(memory.update(id, "again", scope)).rejects.toSatisfy((error) => MemoryNotFoundError.isInstance(error));
    await memory.close();
  });

  test("deleteAll keeps every deleted memory's text in its history", async () => {
    const memory = newMemory(newDataDir());
    const { results } = await memory.add(
      ["first", "second", "third"].map((content) => ({ role: "user" as const, content })),
      { userId: "alice" },
    );
    expect(await memory.deleteAll({ userId: "alice" })).toEqual({ deleted: 3 });
    for (const { id, memory: text } of results) {
      expect(events(await memory.history(id, { userId: "alice" }))).toEqual([
        ["ADD", null, text],
        ["DELETE", text, null],
      ]);
    }
    await memory.close();
  });

  test("without purge, a deleted text stays in the database file (the byte check below can see it)", async () => {
    const dataDir = newDataDir();
    const memory = newMemory(dataDir);
    const {
      results: [added],
    } = await memory.add("my locker word is qxjzvkeptword", { userId: "alice" });
    await memory.delete(added?.id as string, { userId: "alice" });
    await memory.close();
    expect(filesHolding(dataDir, "qxjzvkeptword")).not.toEqual([]);
  });
});

describe("purge: the text is erased from the memory, its history, pending turns and the database files", () => {
  test("delete with purge (regression: pending turns repeating an earlier version of the text were kept)", async () => {
    const dataDir = newDataDir();
    const scope = { userId: "alice", agentId: "coder" };
    const original = "my locker code is qxjzvwombat";
    const changed = "my locker code is qxjzvwombat and qxjzvotter";

    // A turn that went through the outbox and was processed: its outbox row and plan held the text.
    const worker = newMemory(dataDir, true);
    await worker.enqueue(original, scope);
    expect(await worker.flush({ timeoutMs: 10_000 })).toEqual({ processed: 1, failed: 0, waiting: 0 });
    await worker.close();

    const memory = newMemory(dataDir);
    const [item] = (await memory.getAll(scope)).results;
    const id = item?.id as string;
    await memory.update(id, changed, scope);
    // Turns still waiting that repeat the old and the new text, and unrelated turns that stay.
    await memory.enqueue(`note this: ${original}!`, scope);
    await memory.enqueue(`and this: ${changed}`, { ...scope, runId: "r1" });
    await memory.enqueue("an unrelated pending turn", scope);
    await memory.add("an unrelated memory that stays", scope);
    expect(filesHolding(dataDir, "qxjzvwombat")).not.toEqual([]);

    await memory.delete(id, { ...scope, purge: true });

    expect(await memory.get(id, scope)).toBeNull();
    expect(events(await memory.history(id, scope))).toEqual([
      ["ADD", null, null],
      ["UPDATE", null, null],
      ["DELETE", null, null],
    ]);
    expect((await memory.pending(scope)).map((turn) => turn.messages[0]?.content)).toEqual(["an unrelated pending turn"]);
    expect((await memory.search("qxjzvwombat", { ...scope, threshold: 0 })).results.map((r) => r.memory)).toEqual([
      "an unrelated memory that stays",
    ]);
    // Read while the Memory is still open (its log as it is now), and again after closing.
    for (const marker of ["qxjzvwombat", "qxjzvotter"]) expect(filesHolding(dataDir, marker), marker).toEqual([]);
    await memory.close();
    for (const marker of ["qxjzvwombat", "qxjzvotter"]) expect(filesHolding(dataDir, marker), marker).toEqual([]);
    expect(filesHolding(dataDir, "unrelated")).not.toEqual([]);
    expect(existsSync(join(dataDir, "engram.db"))).toBe(true);
  });

  test("deleteAll with purge", async () => {
    const dataDir = newDataDir();
    const memory = newMemory(dataDir);
    const alice = { userId: "alice" };
    const { results } = await memory.add(
      ["qxjzvfirst secret", "qxjzvsecond secret"].map((content) => ({ role: "user" as const, content })),
      { ...alice, agentId: "coder" },
    );
    await memory.update(results[0]?.id as string, "qxjzvfirst secret, changed", alice);
    await memory.add("qxjzvthird in a run", { ...alice, runId: "r1" });
    await memory.enqueue("qxjzvqueued turn", { ...alice, agentId: "writer" });
    // Bob's memories and turns are not alice's to erase.
    await memory.add("bob keeps qxjzvbobword", { userId: "bob" });
    await memory.enqueue("bob's queued qxjzvbobturn", { userId: "bob" });

    expect(await memory.deleteAll({ ...alice, purge: true })).toEqual({ deleted: 3 });

    expect((await memory.getAll(alice)).results).toEqual([]);
    expect(await memory.pending(alice)).toEqual([]);
    for (const { id } of results) {
      const history = await memory.history(id, alice);
      expect(history.every((entry) => entry.previousValue === null && entry.newValue === null)).toBe(true);
      expect(history.at(-1)?.event).toBe("DELETE");
    }
    for (const marker of ["qxjzvfirst", "qxjzvsecond", "qxjzvthird", "qxjzvqueued"])
      expect(filesHolding(dataDir, marker), marker).toEqual([]);
    expect((await memory.getAll({ userId: "bob" })).results).toHaveLength(1);
    expect(await memory.pending({ userId: "bob" })).toHaveLength(1);
    await memory.close();
    for (const marker of ["qxjzvfirst", "qxjzvsecond", "qxjzvthird", "qxjzvqueued"])
      expect(filesHolding(dataDir, marker), marker).toEqual([]);
    expect(filesHolding(dataDir, "qxjzvbobword")).not.toEqual([]);
    expect(filesHolding(dataDir, "qxjzvbobturn")).not.toEqual([]);
  });

  test("delete with purge erases the memory's vector and its compact int8 copy (the partitioned vector index) from the files", async () => {
    const dataDir = newDataDir();
    const memory = newMemory(dataDir);
    const scope = { userId: "alice" };
    const text = "qxjzvvector the walrus keeps its vaccination card in the blue kettle by the harbour";
    const [vector] = await deterministicEmbedder().embed([text]);
    const full = Buffer.from((vector as Float32Array).buffer);
    const { DatabaseSync } = loadNodeSqlite();
    const db = new DatabaseSync(":memory:", { allowExtension: true });
    (await import("sqlite-vec")).load(db);
    const compact = Buffer.from((db.prepare("SELECT vec_quantize_int8(vec_normalize(?), 'unit') AS q").get(full) as { q: Uint8Array }).q);
    db.close();
    const holding = (needle: Buffer) =>
      readdirSync(dataDir).filter((file) => file.startsWith("engram.db") && readFileSync(join(dataDir, file)).includes(needle));
    const {
      results: [added],
    } = await memory.add(text, scope);
    await memory.add("an unrelated memory that stays", scope);
    // The byte check can see both copies while the memory exists.
    expect(holding(full)).not.toEqual([]);
    expect(holding(compact)).not.toEqual([]);

    await memory.delete(added?.id as string, { ...scope, purge: true });
    expect(holding(full)).toEqual([]);
    expect(holding(compact)).toEqual([]);
    await memory.close();
    expect(holding(full)).toEqual([]);
    expect(holding(compact)).toEqual([]);
  });

  test("regression: a purge while another process held a read snapshot stalled the event loop for seconds; unrelated searches now answer at once", {
    timeout: 20_000,
  }, async () => {
    const dataDir = newDataDir();
    const memory = newMemory(dataDir);
    const {
      results: [added],
    } = await memory.add("my pin is qxjzvstallword", { userId: "alice" });
    const {
      results: [bobs],
    } = await memory.add("bob plays chess on sundays", { userId: "bob" });
    const holdMs = 2_000;
    const reader = holdReadSnapshot(join(dataDir, "engram.db"), holdMs);
    await reader.reading;

    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const started = performance.now();
    let purgedAfter: number | undefined;
    const purge = memory.delete(added?.id as string, { userId: "alice", purge: true }).then(() => {
      purgedAfter = performance.now() - started;
    });
    // Bob's calls go on while the purge waits for the reader.
    const calls: number[] = [];
    while (purgedAfter === undefined) {
      const before = performance.now();
      const { results } = await memory.search("chess", { userId: "bob", threshold: 0 });
      expect(results.map((item) => item.id)).toEqual([bobs?.id]);
      expect((await memory.get(bobs?.id as string, { userId: "bob" }))?.memory).toBe("bob plays chess on sundays");
      calls.push(performance.now() - before);
      await Promise.race([purge, new Promise((resolve) => setTimeout(resolve, 20))]);
    }
    delay.disable();
    await purge;
    // The purge did wait for the reader, and the calls made meanwhile did not.
    expect(purgedAfter).toBeGreaterThan(holdMs - 500);
    expect(calls.length).toBeGreaterThan(10);
    expect(Math.max(...calls)).toBeLessThan(500);
    expect(delay.max / 1e6).toBeLessThan(500);
    expect(filesHolding(dataDir, "qxjzvstallword")).toEqual([]);
    await reader.exited;
    await memory.close();
    expect(filesHolding(dataDir, "qxjzvstallword")).toEqual([]);
  });

  test("a purge while another process holds a read snapshot waits for it, then empties the write-ahead log", async () => {
    const dataDir = newDataDir();
    const memory = newMemory(dataDir);
    const {
      results: [added],
    } = await memory.add("my pin is qxjzvreaderword", { userId: "alice" });
    // Another process reads inside a transaction for 700 ms: its snapshot needs the log frames that hold the text.
    const reader = holdReadSnapshot(join(dataDir, "engram.db"), 700);
    await reader.reading;
    await memory.delete(added?.id as string, { userId: "alice", purge: true });
    expect(filesHolding(dataDir, "qxjzvreaderword")).toEqual([]);
    await reader.exited;
    await memory.close();
    expect(filesHolding(dataDir, "qxjzvreaderword")).toEqual([]);
  });
});

/** Another process that reads `file` inside a transaction for `ms`: its snapshot pins the log frames it started with. */
function holdReadSnapshot(file: string, ms: number) {
  const reader = spawn(
    process.execPath,
    [
      "--disable-warning=ExperimentalWarning",
      "--input-type=module",
      "-e",
      `import { DatabaseSync } from "node:sqlite";
       const db = new DatabaseSync(${JSON.stringify(file)});
       db.exec("BEGIN");
       db.prepare("SELECT count(*) FROM memories").get();
       console.log("reading");
       setTimeout(() => { db.exec("COMMIT"); db.close(); }, ${ms});`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  return {
    reading: new Promise<void>((resolve) => reader.stdout.on("data", (chunk) => String(chunk).includes("reading") && resolve())),
    exited: new Promise((resolve) => reader.on("exit", resolve)),
  };
}

describe("purge with graph memory: the entities and relations only the purged memories named leave the database files", () => {
  const graphMemory = (dataDir: string) =>
    new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false }, onError: () => {}, graph: true });

  test("without purge, a deleted memory's relations stay in the graph's history (the byte check below can see them)", async () => {
    const dataDir = newDataDir();
    const memory = graphMemory(dataDir);
    const {
      results: [added],
    } = await memory.add("Qxjzvgraphkept met Anna", { userId: "alice" });
    await memory.delete(added?.id as string, { userId: "alice" });
    await memory.close();
    expect(filesHolding(dataDir, "Qxjzvgraphkept")).not.toEqual([]);
  });

  test("delete with purge erases the memory's entities, relations and graph history, every version of them; shared entities stay", async () => {
    const dataDir = newDataDir();
    const memory = graphMemory(dataDir);
    const scope = { userId: "alice" };
    const {
      results: [added],
    } = await memory.add("Qxjzvgraphone met Qxjzvgraphtwo in Lisbon", scope);
    const id = added?.id as string;
    await memory.update(id, "Qxjzvgraphone met Qxjzvgraphthree in Lisbon", scope);
    await memory.add("Lisbon hosts Qxjzvgraphkeep", scope);
    expect(filesHolding(dataDir, "Qxjzvgraphtwo")).not.toEqual([]);

    await memory.delete(id, { ...scope, purge: true });

    expect(await memory.graph.relations(scope)).toEqual([
      { source: "Lisbon", relation: "co-occurs", target: "Qxjzvgraphkeep", memoryIds: [expect.any(String)] },
    ]);
    expect(await memory.graph.history(scope, { memoryId: id })).toEqual([]);
    const markers = ["Qxjzvgraphone", "Qxjzvgraphtwo", "Qxjzvgraphthree", "qxjzvgraphone", "qxjzvgraphtwo", "qxjzvgraphthree"];
    for (const marker of markers) expect(filesHolding(dataDir, marker), marker).toEqual([]);
    await memory.close();
    for (const marker of markers) expect(filesHolding(dataDir, marker), marker).toEqual([]);
    expect(filesHolding(dataDir, "Qxjzvgraphkeep")).not.toEqual([]);
  });

  test("deleteAll with purge erases the scope's graph, another user's stays", async () => {
    const dataDir = newDataDir();
    const memory = graphMemory(dataDir);
    const {
      results: [first],
    } = await memory.add("Qxjzvgraphalpha works with Qxjzvgraphbeta", { userId: "alice", agentId: "coder" });
    await memory.add("Qxjzvgraphgamma visited Oslo", { userId: "alice", runId: "r1" });
    // Deleted without purge first: its graph history held the names, the purge erases them too.
    await memory.delete(first?.id as string, { userId: "alice" });
    await memory.add("Qxjzvgraphbob visited Oslo", { userId: "bob" });
    expect(await memory.deleteAll({ userId: "alice", purge: true })).toEqual({ deleted: 1 });
    expect(await memory.graph.relations({ userId: "alice" })).toEqual([]);
    expect(await memory.graph.history({ userId: "alice" })).toEqual([]);
    expect(await memory.graph.relations({ userId: "bob" })).toHaveLength(1);
    await memory.close();
    for (const marker of ["Qxjzvgraphalpha", "Qxjzvgraphbeta", "Qxjzvgraphgamma", "qxjzvgraphalpha", "qxjzvgraphgamma"])
      expect(filesHolding(dataDir, marker), marker).toEqual([]);
    expect(filesHolding(dataDir, "Qxjzvgraphbob")).not.toEqual([]);
  });
});
