import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EngramError, MemoryNotFoundError } from "../../src/errors.js";
import { Memory } from "../../src/memory.js";
import { controllableEmbedder } from "../support/faults.js";
import { recordFaults } from "./counts.js";

// The data dir on a small tmpfs, filled to the last byte while memories are stored and turns are
// queued: calls that need space fail with a typed EngramError, nothing stored is lost or
// corrupted, and once space is freed the same Memory works again and writes the queued turns.
// Mounting needs root on Linux; elsewhere the test says why it could not run, and passes.

const mountPoint = mkdtempSync(join(tmpdir(), "engram-disk-full-"));
let mounted = false;
let notRun: string | undefined;

beforeAll(() => {
  if (process.platform !== "linux") notRun = `tmpfs mounts need Linux (this is ${process.platform})`;
  else if (process.getuid?.() !== 0) notRun = "mounting a tmpfs needs root";
  else {
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", mountPoint], { stdio: "pipe" });
      mounted = true;
    } catch (error) {
      notRun = `mount -t tmpfs failed: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
    }
  }
});

afterAll(() => {
  if (mounted) {
    try {
      execFileSync("umount", [mountPoint], { stdio: "pipe" });
    } catch {
      execFileSync("umount", ["-l", mountPoint], { stdio: "pipe" });
    }
  }
  rmSync(mountPoint, { recursive: true, force: true });
});

/** Writes a file until the file system has no space left; returns its path. */
function fill(directory: string): string {
  const path = join(directory, "ballast");
  const fd = openSync(path, "w");
  try {
    for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 9, 1]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

const isFull = (error: unknown) => EngramError.isInstance(error) && /full/i.test((error as Error).message);

test("a full disk: adds and enqueues fail with a typed error, nothing stored is lost, and once space is freed the same Memory works again and writes the queued turns", {
  timeout: 120_000,
}, async () => {
  if (!mounted) {
    console.log(`The disk-full test could not run: ${notRun}.`);
    recordFaults("disk full", { diskFull: `not run: ${notRun}` });
    return;
  }
  const dataDir = join(mountPoint, "data");
  const control = controllableEmbedder();
  const reported: EngramError[] = [];
  const memory = new Memory({
    dataDir,
    embedder: control.embedder,
    retry: { retries: 0 },
    writeBehind: { pollIntervalMs: 20, leaseMs: 200, minDelayMs: 20, maxDelayMs: 100, maxAttempts: 100 },
    onError: (error) => reported.push(error),
  });
  let operations = 0;
  let fullErrors = 0;
  try {
    const stored = new Map<string, { userId: string; text: string }>();
    for (let i = 0; i < 30; i++) {
      const userId = `user-${i % 3}`;
      const text = `kept ${i}: ${userId} stored this before the disk filled, marker keep${i}x`;
      const [added] = (await memory.add(text, { userId })).results;
      stored.set(added?.id as string, { userId, text });
      operations++;
    }
    // Turns queued now wait: their embedding fails until the disk is full, then their writes fail.
    control.fail("queued turn");
    const queued: string[] = [];
    for (let i = 0; i < 5; i++) {
      const text = `queued turn ${i} of user-0, marker queue${i}x`;
      await memory.enqueue(text, { userId: "user-0" });
      queued.push(text);
      operations++;
    }

    const ballast = fill(mountPoint);
    control.heal();

    // Every call that needs space fails with a typed error that says the disk is full.
    const refused: string[] = [];
    for (let i = 0; i < 200 && refused.length < 6; i++) {
      operations++;
      const text = `refused ${i}: ${"x".repeat(2_000)} marker refused${i}x`;
      const call = i % 3 === 2 ? memory.enqueue(text, { userId: "user-1" }) : memory.add(text, { userId: "user-1" });
      const outcome = await call.then(
        () => "stored",
        (error: unknown) => error,
      );
      if (outcome === "stored") continue;
      expect(isFull(outcome), `call ${i} failed with ${String(outcome)}`).toBe(true);
      refused.push(text);
      fullErrors++;
    }
    expect(refused.length, "no call failed: the disk did not fill").toBeGreaterThan(0);
    const [someId, some] = [...stored][0] as [string, { userId: string; text: string }];
    const update = await memory.update(someId, `${some.text} (changed on a full disk)`, { userId: some.userId }).then(
      () => "stored",
      (error: unknown) => error,
    );
    operations++;
    if (update !== "stored") {
      expect(isFull(update), String(update)).toBe(true);
      fullErrors++;
    } else stored.set(someId, { ...some, text: `${some.text} (changed on a full disk)` });

    // Reads work on the full disk, and nothing stored before is lost.
    for (const userId of ["user-0", "user-1", "user-2"]) {
      operations += 2;
      const { results } = await memory.getAll({ userId, limit: 1000 });
      const expected = [...stored].filter(([, memory]) => memory.userId === userId).map(([id, memory]) => [id, memory.text]);
      expect(
        results
          .filter((item) => item.memory.startsWith("kept"))
          .map((item) => [item.id, item.memory])
          .sort(),
      ).toEqual(expected.sort());
      expect((await memory.search("keep0x", { userId, limit: 100, threshold: 0 })).results.length).toBeGreaterThan(0);
    }
    // The write-behind meets the full disk too: its attempts fail, and the turns stay queued.
    const waitUntil = Date.now() + 10_000;
    while (!reported.some((error) => isFull(error)) && Date.now() < waitUntil) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(
      reported.some((error) => isFull(error)),
      "the write-behind met the full disk",
    ).toBe(true);
    expect((await memory.pending({ userId: "user-0" })).length).toBe(queued.length);

    // Space freed: the same Memory writes again, and the queued turns are written, once each.
    rmSync(ballast);
    operations += 2;
    expect((await memory.add("written after space was freed", { userId: "user-2" })).results[0]?.event).toBe("ADD");
    await memory.enqueue("queued after space was freed", { userId: "user-2" });
    queued.push("queued after space was freed");
    const deadline = Date.now() + 30_000;
    while ((await memory.pending({ allScopes: true })).length > 0) {
      if (Date.now() > deadline) throw new Error(`turns still queued: ${JSON.stringify(await memory.pending({ allScopes: true }))}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const all = [
      ...(await memory.getAll({ userId: "user-0", limit: 1000 })).results,
      ...(await memory.getAll({ userId: "user-2", limit: 1000 })).results,
    ];
    for (const text of queued)
      expect(
        all.filter((item) => item.memory === text),
        text,
      ).toHaveLength(1);
    for (const [id, { userId, text }] of stored) {
      expect((await memory.get(id, { userId }))?.memory, id).toBe(text);
      // Whole: its history holds how it was added.
      expect((await memory.history(id, { userId }))[0]?.newValue?.startsWith(`kept`), id).toBe(true);
    }
    // What was refused left nothing behind, not even half.
    for (const text of refused) {
      const { results } = await memory.getAll({ userId: "user-1", limit: 1000 });
      expect(results.some((item) => item.memory === text)).toBe(false);
    }
    for (const item of (await memory.getAll({ userId: "user-1", limit: 1000 })).results) {
      const history = await memory
        .history(item.id, { userId: "user-1" })
        .catch((error: unknown) => (MemoryNotFoundError.isInstance(error) ? [] : Promise.reject(error)));
      expect(
        history.map((entry) => entry.event),
        `history of ${item.memory.slice(0, 20)}`,
      ).toContain("ADD");
    }
  } finally {
    await memory.close();
    recordFaults("disk full", { operations, diskFullErrors: fullErrors });
  }
  const db = new DatabaseSync(join(dataDir, "engram.db"), { readOnly: true });
  try {
    expect(db.prepare("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
  } finally {
    db.close();
  }
});
