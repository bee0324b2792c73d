import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sqliteStore } from "../../src/stores/sqlite-store.js";
import { testVectorStore } from "./vector-store-conformance.js";

const directory = mkdtempSync(join(tmpdir(), "engram-sqlite-store-"));
let files = 0;

testVectorStore({
  name: "sqliteStore",
  create: () => sqliteStore({ path: join(directory, `store-${files++}.db`) }),
  cleanup: () => rmSync(directory, { recursive: true, force: true }),
});
