import { afterAll, afterEach, describe } from "vitest";
import type { Outbox } from "../../../history/outbox.js";
import { describeClaims } from "./claims.js";
import { describeQueue } from "./queue.js";

export interface OutboxConformanceOptions {
  /** Shown in the test names, e.g. "postgresHistory". */
  name: string;
  /** A new, EMPTY outbox (a fresh file, schema or database). Called once per test; the suite inits and closes it. */
  create: () => Promise<Outbox> | Outbox;
  /** Runs once after every test of the suite (e.g. removes temporary directories, drops databases). @default nothing */
  cleanup?: () => Promise<void> | void;
}

/**
 * The conformance suite of the `Outbox` contract: idempotent enqueue, claims oldest first under a
 * lease with one turn per lock key at a time (also between concurrent claims), retries and
 * failures, fencing by worker id, and erasure of queued text. Call it at the top level of a vitest
 * test file. Some tests wait for leases and retry times of 100-200 ms to pass.
 *
 * @example
 * import { testOutbox } from "engram/test/conformance";
 *
 * testOutbox({ name: "myOutbox", create: () => myOutbox({ url, schema: `s_${Date.now()}_${Math.random()}` }) });
 */
export function testOutbox({ name, create, cleanup }: OutboxConformanceOptions): void {
  describe(`Outbox conformance: ${name}`, () => {
    const open: Outbox[] = [];
    const fresh = async () => {
      const store = await create();
      open.push(store);
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

    describeClaims({ fresh });
    describeQueue({ fresh });
  });
}
