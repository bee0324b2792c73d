/**
 * `engram/test/conformance`: the conformance suites every store of Engram passes, for proving your
 * own. They register vitest tests, so vitest (>= 4) must be installed; `engram/test` itself does
 * not need it.
 *
 * @example
 * import { testHistoryLog, testOutbox, testVectorStore } from "engram/test/conformance";
 */
export { type HistoryLogConformanceOptions, testHistoryLog } from "./history-log.js";
export { type OutboxConformanceOptions, testOutbox } from "./outbox/index.js";
export { testVectorStore, type VectorStoreConformanceOptions } from "./vector-store/index.js";
