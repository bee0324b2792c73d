import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, describe, expect, test } from "vitest";
import { ConfigError, CorruptionError, EngramError, StoreError } from "../src/errors.js";
import { openSqlite } from "../src/internal/sqlite.js";
import { Memory } from "../src/memory.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";

const directory = mkdtempSync(join(tmpdir(), "engram-corruption-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let runs = 0;
const newDataDir = () => join(directory, `data-${runs++}`);
const newMemory = (dataDir: string) =>
  new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false }, onError: () => {} });
const digest = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** Overwrites leaf pages of a table with random bytes (the file must be closed and checkpointed). */
function damageLeafPages(file: string, table: string, pick: (pages: number[]) => number[]): number[] {
  const db = new DatabaseSync(file, { readOnly: true });
  const { page_size: pageSize } = db.prepare("PRAGMA page_size").get() as { page_size: number };
  const leaves = (
    db.prepare("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno").all(table) as {
      pageno: number;
    }[]
  ).map((row) => row.pageno);
  db.close();
  const damaged = pick(leaves);
  const fd = openSync(file, "r+");
  for (const page of damaged) writeSync(fd, randomBytes(pageSize), 0, pageSize, (page - 1) * pageSize);
  closeSync(fd);
  return damaged;
}

function expectCorruption(error: unknown, file: string): void {
  expect(CorruptionError.isInstance(error), String(error)).toBe(true);
  expect(StoreError.isInstance(error)).toBe(true);
  expect(ConfigError.isInstance(error)).toBe(false);
  const corruption = error as CorruptionError;
  expect(corruption.code).toBe("STORE_CORRUPT");
  expect(corruption.path).toBe(file);
  expect(corruption.message).toContain(file);
  expect(corruption.message).toMatch(/engram check/);
}

const caught = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

describe("a damaged database file", () => {
  test("regression: a file of garbage was reported as a ConfigError about directory permissions; every call gets a CorruptionError naming the file", async () => {
    const dataDir = newDataDir();
    mkdirSync(dataDir);
    const file = join(dataDir, "engram.db");
    writeFileSync(file, randomBytes(64 * 1024));
    const before = digest(file);
    const memory = newMemory(dataDir);
    const alice = { userId: "alice" };
    for (const call of [
      () => memory.add("I like tea", alice),
      () => memory.search("tea", alice),
      () => memory.getAll(alice),
      () => memory.get("some-id", alice),
      () => memory.enqueue("I like tea", alice),
      () => memory.pending(alice),
    ]) {
      expectCorruption(await caught(call()), file);
    }
    await memory.close();
    // Nothing was written over it.
    expect(digest(file)).toBe(before);
  });

  test("regression: with pages of the memories table overwritten, reads failed but add() still wrote; reads that hit them fail with CorruptionError and every write is refused afterwards", async () => {
    const dataDir = newDataDir();
    const file = join(dataDir, "engram.db");
    const memory = newMemory(dataDir);
    const alice = { userId: "alice" };
    const bob = { userId: "bob" };
    await memory.add(
      Array.from({ length: 60 }, (_, i) => ({ role: "user" as const, content: `alice's fact number ${i}` })),
      alice,
    );
    const bobs = await memory.add("bob plays chess", bob);
    await memory.close();
    // Alice's rows were written first: the first leaf pages of the table are hers.
    expect(damageLeafPages(file, "memories", (pages) => pages.slice(0, 3))).toHaveLength(3);
    const damaged = digest(file);

    const reopened = newMemory(dataDir);
    expectCorruption(await caught(reopened.getAll({ ...alice, limit: 1000 })), file);
    // Pages that are intact stay readable: what is left can be exported.
    expect((await reopened.getAll(bob)).results.map((item) => item.memory)).toEqual(["bob plays chess"]);
    const bobsId = bobs.results[0]?.id as string;
    for (const write of [
      () => reopened.add("bob moved to Oslo", bob),
      () => reopened.enqueue("bob moved to Oslo", bob),
      () => reopened.update(bobsId, "bob plays go", bob),
      () => reopened.delete(bobsId, bob),
      () => reopened.deleteAll({ ...alice, purge: true }),
    ]) {
      expectCorruption(await caught(write()), file);
    }
    expect((await reopened.getAll(bob)).results.map((item) => item.memory)).toEqual(["bob plays chess"]);
    await reopened.close();
    // Refused means refused: the file is exactly as damaged as it was.
    expect(digest(file)).toBe(damaged);

    // Another Memory on the same file in this process is refused writes too, before any read.
    const another = newMemory(dataDir);
    expectCorruption(await caught(another.add("bob moved to Oslo", bob)), file);
    await another.close();
    expect(digest(file)).toBe(damaged);
  });

  test("damage no read has reached yet is found by the check run at open, off the event loop, and writes are refused from then on", async () => {
    const dataDir = newDataDir();
    const file = join(dataDir, "engram.db");
    const memory = newMemory(dataDir);
    await memory.add(
      Array.from({ length: 30 }, (_, i) => ({ role: "user" as const, content: `carol's fact number ${i}` })),
      { userId: "carol" },
    );
    await memory.close();
    damageLeafPages(file, "memories", (pages) => pages.slice(0, 1));
    const handle = await openSqlite(file);
    try {
      expect(handle.damaged).toBe(false);
      const deadline = Date.now() + 10_000;
      while (!handle.damaged && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(handle.damaged).toBe(true);
      let refused: unknown;
      try {
        handle.guard("write", () => handle.db.exec("CREATE TABLE IF NOT EXISTS unrelated (x)"));
      } catch (error) {
        refused = error;
      }
      expectCorruption(refused, file);
    } finally {
      handle.release();
    }
  });
});

test("CorruptionError is a StoreError, also for isInstance across copies of the package", async () => {
  const error = new CorruptionError({ path: "/data/engram.db", detail: "database disk image is malformed" });
  expect(error).toBeInstanceOf(StoreError);
  expect(error.name).toBe("CorruptionError");
  expect(EngramError.isInstance(error) && StoreError.isInstance(error) && CorruptionError.isInstance(error)).toBe(true);
  expect(CorruptionError.isInstance(new StoreError({ message: "x" }))).toBe(false);
  // The same classes from another copy of the package (a second instance of the module): other
  // constructors, the same markers.
  const path = "../src/errors.js?another-copy";
  const copy = (await import(/* @vite-ignore */ path)) as typeof import("../src/errors.js");
  expect(copy.CorruptionError).not.toBe(CorruptionError);
  const foreign = new copy.CorruptionError({ path: "/data/engram.db", detail: "database disk image is malformed" });
  expect(foreign).not.toBeInstanceOf(StoreError);
  expect(CorruptionError.isInstance(foreign)).toBe(true);
  expect(StoreError.isInstance(foreign)).toBe(true);
  expect(EngramError.isInstance(foreign)).toBe(true);
  expect(foreign.isRetryable).toBe(false);
  expect(ConfigError.isInstance(foreign)).toBe(false);
});
