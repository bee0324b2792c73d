import { describe, expect, inject, test } from "vitest";
import { ConfigError } from "../../src/errors.js";
import type { Outbox } from "../../src/history/outbox.js";
import { postgresHistory } from "../../src/history/postgres-history.js";
import { testHistoryLog, testOutbox } from "../../src/testing/conformance/index.js";
import { createDatabase } from "../support/databases.js";

// A real PostgreSQL 15 cluster (started by test/support/global-setup.ts), one new database per test.
const adminUrl = inject("postgresUrl");

const create = async (clock?: { now(): number }) =>
  postgresHistory({ connectionString: await createDatabase(adminUrl, "history_conformance"), now: clock?.now });

testHistoryLog({ name: "postgresHistory on PostgreSQL", create: () => create() });
testOutbox({ name: "postgresHistory on PostgreSQL", create });
// The database's own clock, as in production: the suite's clock cannot drive it, so only a claim's basics run on it.
describe("postgresHistory on the database clock", () => {
  test("claims, leases and retries follow now(): a fresh lease is live, a past retry time is due", async () => {
    const outbox = await create();
    await outbox.init();
    await outbox.enqueue({ id: "db-clock", messages: [{ role: "user", content: "hi" }], scope: { userId: "u1" }, options: {} });
    const [claimed] = await outbox.claim({ workerId: "w1", limit: 1, leaseMs: 60_000 });
    expect(claimed?.id).toBe("db-clock");
    expect(await outbox.claim({ workerId: "w2", limit: 1, leaseMs: 60_000 })).toEqual([]);
    expect(await outbox.fail("db-clock", "w1", { error: "boom", retryAt: new Date(Date.now() - 60_000) })).toBe(true);
    expect((await outbox.claim({ workerId: "w2", limit: 1, leaseMs: 60_000 }))[0]?.id).toBe("db-clock");
    expect(await outbox.renew("db-clock", "w2", 60_000)).toBe(true);
    expect(await outbox.retryFailed({ userId: "u1" })).toBe(0);
    await outbox.close();
  });
});

describe("postgresHistory", () => {
  test("workers on separate connections claiming at once: every turn once, never two of one user at a time", {
    timeout: 60_000,
  }, async () => {
    const database = await createDatabase(adminUrl, "history_workers");
    // Separate stores, each with its own pool: as separate processes would be.
    const stores = Array.from({ length: 4 }, () => postgresHistory({ connectionString: database }));
    await Promise.all(stores.map((store) => store.init()));
    const users = 5;
    const turns = 60;
    for (let i = 0; i < turns; i++) {
      await stores[i % stores.length]?.enqueue({
        id: `t${i}`,
        messages: [{ role: "user", content: `turn ${i}` }],
        scope: { userId: `u${i % users}` },
        options: {},
      });
    }
    const busy = new Set<string>();
    const done: string[] = [];
    let overlaps = 0;
    const worker = async (store: Outbox, name: string) => {
      for (let idle = 0; idle < 20; ) {
        const entries = await store.claim({ workerId: name, limit: 2, leaseMs: 10_000 });
        if (entries.length === 0) {
          idle++;
          await new Promise((resolve) => setTimeout(resolve, 10));
          continue;
        }
        idle = 0;
        await Promise.all(
          entries.map(async (entry) => {
            const key = entry.userId as string;
            if (busy.has(key)) overlaps++;
            busy.add(key);
            await new Promise((resolve) => setTimeout(resolve, 3));
            busy.delete(key);
            expect(await store.complete(entry.id, name)).toBe(true);
            done.push(entry.id);
          }),
        );
      }
    };
    await Promise.all(stores.flatMap((store, i) => [worker(store, `w${i}a`), worker(store, `w${i}b`)]));
    expect(overlaps).toBe(0);
    expect(done.sort()).toEqual(Array.from({ length: turns }, (_, i) => `t${i}`).sort());
    expect(await stores[0]?.pending()).toEqual([]);
    await Promise.all(stores.map((store) => store.close()));
  });

  test("bad options are a ConfigError that says what to pass", () => {
    for (const options of [
      {},
      { connectionString: "http://db" },
      { connectionString: adminUrl, tablePrefix: "Engram-" },
      { connectionString: adminUrl, unknown: 1 },
    ]) {
      expect(() => postgresHistory(options as never), JSON.stringify(options)).toThrow(ConfigError);
    }
  });
});
