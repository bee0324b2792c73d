import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterAll, expect, test } from "vitest";
import { openSqlite } from "../../src/internal/sqlite.js";

const dir = mkdtempSync(join(tmpdir(), "engram-sqlite-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Regression: journal_mode = WAL ran before busy_timeout was set, so opening a database another
// process was writing failed at once with "database is locked" instead of waiting its turn.
test("opening a database while another connection holds a write lock waits for it instead of failing", async () => {
  const path = join(dir, "locked.db");
  const holder = new Worker(
    `
    const { DatabaseSync } = require("node:sqlite");
    const { parentPort, workerData } = require("node:worker_threads");
    const db = new DatabaseSync(workerData);
    db.exec("CREATE TABLE t (x)");
    db.exec("BEGIN EXCLUSIVE");
    db.exec("INSERT INTO t VALUES (1)");
    parentPort.postMessage("locked");
    setTimeout(() => { db.exec("COMMIT"); db.close(); }, 400);
    `,
    { eval: true, workerData: path },
  );
  await new Promise<void>((resolve) => holder.once("message", () => resolve()));
  const handle = await openSqlite(path);
  try {
    // The row is committed only when the lock is released: seeing it means the open waited.
    expect(handle.db.prepare("SELECT x FROM t").all()).toEqual([{ x: 1 }]);
  } finally {
    handle.release();
    await holder.terminate();
  }
});

/** Which files of the database at `path` (the file, -wal, -shm) hold `marker`. */
function filesHolding(path: string, marker: string): string[] {
  const name = path.split("/").at(-1) as string;
  return readdirSync(dir)
    .filter((file) => file.startsWith(name))
    .filter((file) => readFileSync(join(dir, file)).includes(Buffer.from(marker)));
}

/** A connection in a worker thread that reads inside a transaction until told to end. */
function reader(path: string) {
  const worker = new Worker(
    `
    const { DatabaseSync } = require("node:sqlite");
    const { parentPort, workerData } = require("node:worker_threads");
    const db = new DatabaseSync(workerData);
    db.exec("BEGIN");
    db.prepare("SELECT count(*) FROM t").get();
    parentPort.postMessage("reading");
    parentPort.once("message", () => { db.exec("COMMIT"); db.close(); parentPort.postMessage("ended"); });
    `,
    { eval: true, workerData: path },
  );
  const next = () => new Promise<void>((resolve) => worker.once("message", () => resolve()));
  return {
    reading: next(),
    async end() {
      const ended = next();
      worker.postMessage("end");
      await ended;
      await worker.terminate();
    },
  };
}

test("a checkpoint that a reader holds up past its wait resolves, and erases the text in the background once the reader ends", async () => {
  const path = join(dir, "background.db");
  const handle = await openSqlite(path);
  try {
    handle.db.exec("CREATE TABLE t (x TEXT)");
    handle.db.exec("INSERT INTO t VALUES ('qxjzvbackground')");
    await handle.checkpoint();
    const holder = reader(path);
    await holder.reading;
    handle.db.exec("DELETE FROM t");
    const started = performance.now();
    await handle.checkpoint({ waitMs: 150 });
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(140);
    expect(waited).toBeLessThan(1_000);
    // The reader's snapshot still needs the old page: the text is still in the file.
    expect(filesHolding(path, "qxjzvbackground")).not.toEqual([]);
    // A checkpoint while that one is owed does not wait again: the background retries cover it.
    const again = performance.now();
    await handle.checkpoint({ waitMs: 5_000 });
    expect(performance.now() - again).toBeLessThan(100);
    await holder.end();
    const deadline = Date.now() + 5_000;
    while (filesHolding(path, "qxjzvbackground").length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(filesHolding(path, "qxjzvbackground")).toEqual([]);
    expect(handle.db.prepare("SELECT count(*) AS n FROM t").get()).toEqual({ n: 0 });
  } finally {
    handle.release();
  }
});

test("a checkpoint waiting for a reader leaves the connection usable: other statements run meanwhile, and the busy timeout is restored", async () => {
  const path = join(dir, "usable.db");
  const handle = await openSqlite(path);
  try {
    handle.db.exec("CREATE TABLE t (x TEXT)");
    handle.db.exec("INSERT INTO t VALUES ('kept')");
    const holder = reader(path);
    await holder.reading;
    handle.db.exec("INSERT INTO t VALUES ('more')");
    const checkpoint = handle.checkpoint();
    let settled = false;
    checkpoint.then(() => {
      settled = true;
    });
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(handle.db.prepare("SELECT count(*) AS n FROM t").get()).toEqual({ n: 2 });
      expect(handle.db.prepare("PRAGMA busy_timeout").get()).toEqual({ timeout: 10_000 });
    }
    expect(settled).toBe(false);
    await holder.end();
    await checkpoint;
    expect(handle.db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get()).toMatchObject({ busy: 0, log: 0 });
  } finally {
    handle.release();
  }
});
