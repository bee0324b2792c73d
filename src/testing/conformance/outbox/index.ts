import { afterAll, afterEach, describe } from "vitest";
import type { Outbox } from "../../../history/outbox.js";
import { describeClaims } from "./claims.js";
import { testClock, usesClock } from "./fixtures.js";
import { describeQueue } from "./queue.js";

export interface OutboxConformanceOptions {
  /** Shown in the test names, e.g. "postgresHistory". */
  name: string;
  /**
   * A new, EMPTY outbox (a fresh file, schema or database), reading the suite's clock: pass
   * `clock.now` to the outbox's clock option, so that leases and retry times follow the suite's
   * clock, which its tests move forward instead of sleeping. Called once per test; the suite inits
   * and closes it.
   */
  create: (clock: { now(): number }) => Promise<Outbox> | Outbox;
  /** Runs once after every test of the suite (e.g. removes temporary directories, drops databases). @default nothing */
  cleanup?: () => Promise<void> | void;
}

/**
 * The conformance suite of the `Outbox` contract: idempotent enqueue, claims oldest first under a
 * lease with one turn per lock key at a time (also between concurrent claims), retries and
 * failures, fencing by worker id, and erasure of queued text. Call it at the top level of a vitest
 * test file. Time is the suite's own clock, given to `create`: no test waits on the wall clock.
 *
 * @example
 * import { testOutbox } from "engram/test/conformance";
 *
 * testOutbox({ name: "myOutbox", create: ({ now }) => myOutbox({ url, schema: `s_${Date.now()}_${Math.random()}`, now }) });
 */
export function testOutbox({ name, create, cleanup }: OutboxConformanceOptions): void {
  describe(`Outbox conformance: ${name}`, () => {
    const open: Outbox[] = [];
    const clock = testClock();
    const fresh = async () => {
      const store = await create(clock);
      open.push(store);
      usesClock(store, clock);
      await store.init();
      await store.init();
      return store;
    };

    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((store) => store.close()));
    });
    afterAll(async () => {
      await cleanup?.();
    });

    describeClaims({ fresh, clock });
    describeQueue({ fresh, clock });
  });
}
