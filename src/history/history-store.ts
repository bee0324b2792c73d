import type { HistoryLog } from "./history-log.js";
import type { Outbox } from "./outbox.js";

/**
 * The change log and the outbox in one object, as `sqliteHistory`, `postgresHistory` and
 * `inMemoryHistory` are.
 * @deprecated The two are separate contracts now: use `HistoryLog & Outbox`, or the one you need.
 */
export type HistoryStore = HistoryLog & Outbox;
