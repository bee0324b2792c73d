/**
 * Moves memories from one store to another, keeping their ids, vectors, scopes, metadata, dates
 * and history: e.g. from the embedded SQLite default to pgvector or Qdrant when an app outgrows one
 * machine. Both sides must use the same embedding model (vectors are copied, not recomputed).
 *
 * Stores have no "every scope" query (there is no global namespace), so you name the scopes to
 * move: usually every user id of your app.
 *
 *   node --import tsx examples/migrate-store.ts ./.engram/engram.db postgresql://… alice bob carol
 *
 * Run it with the app stopped (or writing to the new store already); it can be run again: records
 * and history entries are upserted by id.
 */
import type { HistoryLog } from "../src/history/history-log.js";
import type { Scope } from "../src/scope.js";
import type { VectorStore } from "../src/stores/vector-store.js";

export interface MigrationOptions {
  from: { store: VectorStore; history?: HistoryLog };
  to: { store: VectorStore; history?: HistoryLog };
  /** The scopes to move, e.g. `users.map((userId) => ({ userId }))`. */
  scopes: Scope[];
  /** The embedder's dimension and model id (as given to `init` by `Memory`). */
  dimension: number;
  modelId?: string;
  /** Records per page. @default 500 */
  pageSize?: number;
  onProgress?: (moved: number) => void;
}

/** Copies every record of the scopes (and, when both histories are given, their history). Returns how many records moved. */
export async function migrateMemories({
  from,
  to,
  scopes,
  dimension,
  modelId,
  pageSize = 500,
  onProgress,
}: MigrationOptions): Promise<number> {
  await from.store.init({ dimension, modelId });
  await to.store.init({ dimension, modelId });
  await from.history?.init();
  await to.history?.init();
  let moved = 0;
  for (const scope of scopes) {
    let cursor: string | undefined;
    do {
      const page = await from.store.list({ filter: { scope }, limit: pageSize, cursor });
      // list may leave vectors out; get returns them.
      const records = await from.store.get(
        page.records.map((record) => record.id),
        { scope },
      );
      await to.store.write({ upsert: records });
      if (from.history && to.history) {
        for (const record of records) await to.history.append(await from.history.list(record.id, scope));
      }
      moved += records.length;
      onProgress?.(moved);
      cursor = page.cursor;
    } while (cursor);
  }
  return moved;
}

if (import.meta.main) {
  const [source, target, ...userIds] = process.argv.slice(2);
  if (!source || !target || userIds.length === 0) {
    console.error("usage: migrate-store.ts <sqlite file> <postgresql:// URL> <userId>…");
    process.exit(2);
  }
  const { sqliteStore, sqliteHistory, localEmbedder } = await import("../src/index.js");
  const { pgvectorStore } = await import("../src/stores/pgvector-store.js");
  const { postgresHistory } = await import("../src/history/postgres-history.js");
  const embedder = localEmbedder();
  const [probe] = await embedder.embed(["dimension probe"]);
  const moved = await migrateMemories({
    from: { store: sqliteStore({ path: source }), history: sqliteHistory({ path: source }) },
    to: { store: pgvectorStore({ connectionString: target }), history: postgresHistory({ connectionString: target }) },
    scopes: userIds.map((userId) => ({ userId })),
    dimension: probe?.length ?? 512,
    modelId: embedder.modelId,
    onProgress: (count) => process.stderr.write(`${count} memories moved\r`),
  });
  console.log(`\n${moved} memories moved`);
  process.exit(0);
}
