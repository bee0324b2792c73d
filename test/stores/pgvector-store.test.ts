import { inject } from "vitest";
import { pgvectorStore } from "../../src/stores/pgvector-store.js";
import { withClient } from "../support/databases.js";
import { testVectorStore } from "./vector-store-conformance.js";

// Real Postgres with the real pgvector extension (PGlite), over the wire protocol, one table per test.
const url = inject("pgliteUrl");
const tables: string[] = [];

testVectorStore({
  name: "pgvectorStore over the PostgreSQL wire protocol (PGlite + pgvector)",
  create: () => {
    const table = `conformance_${process.pid}_${tables.length}`;
    tables.push(table);
    return pgvectorStore({ connectionString: url, table });
  },
  cleanup: () =>
    withClient(url, async (client) => {
      for (const table of tables) await client.query(`DROP TABLE IF EXISTS ${table}, ${table}_meta`);
    }),
});
