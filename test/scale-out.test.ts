import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { expect, inject, test } from "vitest";
import type { AppServerConfiguration } from "./fixtures/app-server.js";
import { createDatabase, withClient } from "./support/databases.js";

const fixture = join(import.meta.dirname, "fixtures", "app-server.ts");

interface AppServer {
  child: ChildProcess;
  next(event: string): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** Starts one app server process; `next(event)` resolves with its next JSON line of that event. */
function startAppServer(configuration: AppServerConfiguration): AppServer {
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--import", "tsx", fixture], {
    env: { ...process.env, ENGRAM_APP_SERVER: JSON.stringify(configuration) },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let errors = "";
  child.stderr?.on("data", (chunk) => {
    errors += chunk;
  });
  const lines: Record<string, unknown>[] = [];
  const waiting: (() => void)[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    lines.push(JSON.parse(line));
    for (const wake of waiting.splice(0)) wake();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    exited,
    async next(event) {
      for (;;) {
        const index = lines.findIndex((line) => line.event === event);
        if (index !== -1) return lines.splice(index, 1)[0] as Record<string, unknown>;
        const code = await Promise.race([exited, new Promise<"line">((resolve) => waiting.push(() => resolve("line")))]);
        if (code !== "line" && !lines.some((line) => line.event === event)) {
          throw new Error(`${configuration.name} exited (${code}) before "${event}":\n${errors}`);
        }
      }
    },
  };
}

test("two app server processes share one memory: every turn processed exactly once, no duplicate memory, each user sees exactly their own", {
  timeout: 120_000,
}, async () => {
  const vectorUrl = inject("pgliteUrl");
  const historyUrl = await createDatabase(inject("postgresUrl"), "scale_out");
  const table = `scale_out_${process.pid}`;
  const users = Array.from({ length: 8 }, (_, i) => `user-${i}`);

  // Per user and server: 2 turns of its own; 2 texts that both servers enqueue twice each (one
  // memory must come of each text's 4 turns); 1 turn with an idempotency key both servers use.
  const turnsOf = (name: string): AppServerConfiguration["turns"] =>
    users.flatMap((userId) => [
      ...[0, 1].map((k) => ({ text: `${name} heard fact ${k} from ${userId}`, userId })),
      ...[0, 1, 0, 1].map((k) => ({ text: `shared fact ${k} of ${userId}`, userId })),
      { text: `the once-only turn of ${userId}`, userId, idempotencyKey: `once-${userId}` },
    ]);
  const names = ["alpha", "beta"];
  const servers = names.map((name) => startAppServer({ name, vectorUrl, table, historyUrl, users, turns: turnsOf(name) }));
  try {
    const flushed = await Promise.all(servers.map((server) => server.next("flushed")));
    for (const result of flushed) expect(result).toMatchObject({ failed: 0, waiting: 0 });
    // The shared idempotency keys were queued once in all.
    expect(flushed.reduce((sum, result) => sum + (result.queued as number), 0)).toBe(users.length * 13);

    for (const server of servers) server.child.stdin?.write("read\n");
    const reads = await Promise.all(servers.map((server) => server.next("read")));
    expect(await Promise.all(servers.map((server) => server.exited))).toEqual([0, 0]);

    // Exactly once: every outbox entry is done, and was completed by exactly one process.
    const completed = reads.map((read) => read.completed as string[]);
    for (const ids of completed) expect(ids.length).toBeGreaterThan(0);
    const all = completed.flat();
    expect(new Set(all).size).toBe(all.length);
    const outbox = await withClient(historyUrl, async (client) => (await client.query("SELECT id, status FROM engram_outbox")).rows);
    expect(outbox).toHaveLength(users.length * 13);
    expect(outbox.every((row) => row.status === "done")).toBe(true);
    expect(new Set(all)).toEqual(new Set(outbox.map((row) => row.id)));

    // Turns of one user never ran in both servers at once, though both servers worked on every user.
    type Interval = { userId: string; start: number; end: number };
    const [first, second] = reads.map((read) => (read.intervals as Interval[]).filter((interval) => interval.end > 0));
    const overlapping = (first ?? []).flatMap((a) =>
      (second ?? []).filter((b) => a.userId === b.userId && a.start < b.end && b.start < a.end).map((b) => [a, b]),
    );
    expect(overlapping).toEqual([]);
    const sharedUsers = users.filter((userId) => first?.some((a) => a.userId === userId) && second?.some((b) => b.userId === userId));
    expect(sharedUsers.length).toBeGreaterThan(0);

    // No memory duplicated: 7 distinct texts per user, each stored once, each with one ADD in its history.
    const expectedTexts = (userId: string) =>
      [
        ...names.flatMap((name) => [0, 1].map((k) => `${name} heard fact ${k} from ${userId}`)),
        `shared fact 0 of ${userId}`,
        `shared fact 1 of ${userId}`,
        `the once-only turn of ${userId}`,
      ].sort();
    const stored = await withClient(vectorUrl, async (client) => (await client.query(`SELECT id, user_id, text FROM ${table}`)).rows);
    expect(stored).toHaveLength(users.length * 7);
    const adds = await withClient(
      historyUrl,
      async (client) =>
        (await client.query("SELECT memory_id, count(*)::int AS n FROM engram_history WHERE event = 'ADD' GROUP BY memory_id")).rows,
    );
    expect(adds).toHaveLength(stored.length);
    expect(adds.every((row) => row.n === 1)).toBe(true);

    // Each user sees exactly their own memories, the same from either process.
    for (const read of reads) {
      const seen = read.seen as Record<string, { memory: string; userId: string }[]>;
      for (const userId of users) {
        expect(seen[userId]?.map((item) => item.memory).sort(), `${userId} via a server`).toEqual(expectedTexts(userId));
        expect(seen[userId]?.every((item) => item.userId === userId)).toBe(true);
      }
      expect(new Set(read.searched as string[])).toEqual(new Set([users[0]]));
    }
    expect(reads[0]?.seen).toEqual(reads[1]?.seen);
  } finally {
    for (const server of servers) if (server.child.exitCode === null) server.child.kill("SIGKILL");
    await withClient(vectorUrl, (client) => client.query(`DROP TABLE IF EXISTS ${table}, ${table}_meta`));
  }
});
