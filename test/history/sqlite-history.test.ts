import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sqliteHistory } from "../../src/history/sqlite-history.js";
import { testHistoryStore } from "./history-store-conformance.js";

const directory = mkdtempSync(join(tmpdir(), "engram-sqlite-history-"));
let files = 0;

testHistoryStore({
  name: "sqliteHistory",
  create: () => sqliteHistory({ path: join(directory, `history-${files++}.db`) }),
  cleanup: () => rmSync(directory, { recursive: true, force: true }),
});
