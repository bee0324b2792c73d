import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { localEmbedder, Memory, sqliteStore } from "../../src/index.js";
import { cachedEmbedder } from "./cached-embedder.js";

/**
 * What the ranking scripts (train-ranker, ranker-trials, slot-trials) ingest a benchmark into: a
 * `Memory` over a fresh SQLite file in a temporary directory, the local model embedding (through
 * the vector cache file `embeddingCache` when given), no write-behind and no deadlines (an
 * ingestion on a busy machine must not time out). `dispose` closes it and deletes the directory.
 */
export function trialMemory(prefix: string, embeddingCache?: string) {
  const local = localEmbedder();
  const embedder = embeddingCache ? cachedEmbedder(local, resolve(embeddingCache)) : local;
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const store = sqliteStore({ path: join(dataDir, "engram.db") });
  const memory = new Memory({
    dataDir,
    embedder,
    vectorStore: store,
    writeBehind: { enabled: false },
    timeouts: { embedMs: Number.POSITIVE_INFINITY, storeMs: Number.POSITIVE_INFINITY },
  });
  return {
    embedder,
    store,
    memory,
    async dispose() {
      await memory.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
