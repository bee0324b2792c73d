import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { sqliteHistory } from "../../src/history/sqlite-history.js";
import { testHistoryLog, testOutbox } from "../../src/testing/conformance/index.js";

const directory = mkdtempSync(join(tmpdir(), "engram-sqlite-history-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let files = 0;
const create = (clock?: { now(): number }) => sqliteHistory({ path: join(directory, `history-${files++}.db`), now: clock?.now });

testHistoryLog({ name: "sqliteHistory", create: () => create() });
testOutbox({ name: "sqliteHistory", create });
