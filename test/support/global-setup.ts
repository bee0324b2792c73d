import type { TestProject } from "vitest/node";
import { startPgliteServer } from "./pglite-server.js";
import { startPostgres } from "./postgres-cluster.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** postgresql:// URL of a pglite server with pgvector, shared by the run: tests use their own tables. */
    pgliteUrl: string;
    /** postgresql:// URL of a throwaway PostgreSQL cluster: tests create their own databases. */
    postgresUrl: string;
  }
}

/** Starts the database servers the store tests talk to, once per run, and stops them afterwards. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [pglite, postgres] = await Promise.allSettled([startPgliteServer(), startPostgres()]);
  const stop = async () => {
    await Promise.allSettled([
      pglite.status === "fulfilled" ? pglite.value.stop() : undefined,
      postgres.status === "fulfilled" ? postgres.value.stop() : undefined,
    ]);
  };
  if (pglite.status === "rejected" || postgres.status === "rejected") {
    await stop();
    throw pglite.status === "rejected" ? pglite.reason : (postgres as PromiseRejectedResult).reason;
  }
  project.provide("pgliteUrl", pglite.value.url);
  project.provide("postgresUrl", postgres.value.url);
  return stop;
}
