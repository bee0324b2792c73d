/**
 * Moves memories from one store to another, keeping their ids, vectors, scopes, metadata, dates
 * and history: e.g. from the embedded SQLite default to pgvector, Qdrant or Chroma when an app
 * outgrows one machine, or back. Both sides must use the same embedding model (vectors are copied,
 * not recomputed).
 *
 * Stores have no "every scope" query (there is no global namespace), so you name the scopes to
 * move: usually every user id of your app.
 *
 *   node --import tsx examples/migrate-store.ts <from> <to> alice bob carol
 *
 * where <from> and <to> are each a SQLite file (memories and history), a postgresql:// URL
 * (pgvector and PostgreSQL history) or a Chroma http(s):// URL (memories only: history is moved
 * when both sides keep it, so with Chroma it stays in the history store you already use).
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

/** A store (and its history, where it keeps one) named on the command line. */
async function openSide(target: string): Promise<{ store: VectorStore; history?: HistoryLog }> {
  if (target.startsWith("postgresql://") || target.startsWith("postgres://")) {
    const { pgvectorStore } = await import("../src/stores/pgvector-store.js");
    const { postgresHistory } = await import("../src/history/postgres-history.js");
    return { store: pgvectorStore({ connectionString: target }), history: postgresHistory({ connectionString: target }) };
  }
  if (target.startsWith("http://") || target.startsWith("https://")) {
    const { chromaStore } = await import("../src/stores/chroma-store.js");
    return { store: chromaStore({ url: target }) };
  }
  const { sqliteStore, sqliteHistory } = await import("../src/index.js");
  return { store: sqliteStore({ path: target }), history: sqliteHistory({ path: target }) };
}

if (import.meta.main) {
  const [source, target, ...userIds] = process.argv.slice(2);
  if (!source || !target || userIds.length === 0) {
    console.error(
      "usage: migrate-store.ts <from> <to> <userId>… (each side a SQLite file, a postgresql:// URL or a Chroma http(s):// URL)",
    );
    process.exit(2);
  }
  const { localEmbedder } = await import("../src/index.js");
  const embedder = localEmbedder();
  const [probe] = await embedder.embed(["dimension probe"]);
  const moved = await migrateMemories({
    from: await openSide(source),
    to: await openSide(target),
    scopes: userIds.map((userId) => ({ userId })),
    dimension: probe?.length ?? 512,
    modelId: embedder.modelId,
    onProgress: (count) => process.stderr.write(`${count} memories moved\r`),
  });
  console.log(`\n${moved} memories moved`);
  process.exit(0);
}
