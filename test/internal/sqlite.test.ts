import { mkdtempSync, rmSync } from "node:fs";
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
