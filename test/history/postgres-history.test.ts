import { inject } from "vitest";
import { postgresHistory } from "../../src/history/postgres-history.js";
import { createDatabase } from "../support/databases.js";
import { testHistoryStore } from "./history-store-conformance.js";

// A real PostgreSQL 15 cluster (started by test/support/global-setup.ts), one new database per test.
const adminUrl = inject("postgresUrl");

testHistoryStore({
  name: "postgresHistory on PostgreSQL",
  create: async () => postgresHistory({ connectionString: await createDatabase(adminUrl, "history_conformance") }),
});
