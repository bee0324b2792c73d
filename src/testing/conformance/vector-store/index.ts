import { afterAll, afterEach, describe } from "vitest";
import type { VectorStore } from "../../../stores/vector-store.js";
import { describeExpiry } from "./expiry.js";
import { DIMENSION, MODEL_ID } from "./fixtures.js";
import { describeKeywordSearch } from "./keyword-search.js";
import { describeQueries } from "./queries.js";
import { describeReads } from "./reads.js";
import { describeTimeOrdered } from "./time-ordered.js";
import { describeWrites } from "./writes.js";

export interface VectorStoreConformanceOptions {
  /** Shown in the test names, e.g. "sqliteStore". */
  name: string;
  /** A new, EMPTY store (a fresh file, table or collection). Called once per test; the suite inits and closes it. */
  create: () => Promise<VectorStore> | VectorStore;
  /** Runs once after every test of the suite (e.g. removes temporary directories, drops databases). @default nothing */
  cleanup?: () => Promise<void> | void;
  /**
   * For stores whose `write` is one transaction: makes the database itself refuse, from now on,
   * every insert, update and delete of the record with this id (a trigger, a check constraint).
   * The suite then writes batches whose earlier rows are written before the database refuses that
   * one, and checks that none of them stayed. A store without transactions leaves it out (it only
   * promises that a batch is validated before anything is sent), and the suite has no such test.
   */
  failMidWrite?: (store: VectorStore, id: string) => Promise<void> | void;
  /**
   * Whether a write's preconditions (`expect`, tombstones) are checked in the same transaction as
   * the write. Stores without transactions check just before writing and set it to false: of
   * concurrent writes expecting one version, they only promise that at least one lands. @default true
   */
  atomicPreconditions?: boolean;
}

/**
 * The conformance suite of the `VectorStore` contract, with the `KeywordSearchable` and
 * `TimeOrdered` capabilities when the store has them: scope isolation on every call, exact cosine search, paging, filters,
 * preconditions and tombstones, and expiry (with a fake clock) through Engram's reads and sweep. Call it at the top level of a vitest test file; every built-in
 * store passes it.
 *
 * @example
 * import { testVectorStore } from "engram/test/conformance";
 *
 * testVectorStore({ name: "myStore", create: () => myStore({ url, table: `t_${Date.now()}_${Math.random()}` }) });
 */
export function testVectorStore({ name, create, cleanup, failMidWrite, atomicPreconditions = true }: VectorStoreConformanceOptions): void {
  describe(`VectorStore conformance: ${name}`, () => {
    const open: VectorStore[] = [];
    const unopened = async () => {
      const store = await create();
      open.push(store);
      return store;
    };
    const fresh = async () => {
      const store = await unopened();
      await store.init({ dimension: DIMENSION, modelId: MODEL_ID });
      return store;
    };

    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((store) => store.close()));
    });
    afterAll(async () => {
      await cleanup?.();
    });

    const context = { fresh, unopened, failMidWrite, atomicPreconditions };
    describeWrites(context);
    describeReads(context);
    describeQueries(context);
    describeKeywordSearch(context);
    describeTimeOrdered(context);
    describeExpiry(context);
  });
}
