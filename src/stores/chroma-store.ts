import type { ChromaClient, Collection, Metadata, Where } from "chromadb";
import { z } from "zod";
import { ConfigError, EngramError, StoreError } from "../errors.js";
import { keywordTerms } from "../retrieval/keywords.js";
import { type Scope, scopeOf } from "../scope.js";
import { encodeCursor, invalidCursor, readCursor } from "../store-kit/cursor.js";
import { assertSameEmbedding } from "../store-kit/embedding.js";
import { rankByBm25 } from "../store-kit/ranking.js";
import { countScopes } from "../store-kit/scopes.js";
import { assertNoConflict, checkedUpserts, idsToCheck } from "../store-kit/writes.js";
import { parseConfig } from "../validation.js";
import { byListKey, keywordPattern, type ListKey, listKeyOf, toMetadata, toRecord, vectorUri, whereOf } from "./chroma-records.js";
import type {
  KeywordSearchable,
  MemoryRecord,
  RecordVersion,
  ScopeCount,
  ScopeEnumerable,
  ScoredRecord,
  StoreFilter,
  VectorStore,
  WriteBatch,
} from "./vector-store.js";

export interface ChromaStoreOptions {
  /**
   * URL of the Chroma server, e.g. "http://localhost:8000" (scheme, host and port; the port
   * defaults to the scheme's, 80 or 443). Give this or `client`.
   */
  url?: string;
  /** A `ChromaClient` you configured yourself (auth headers, tenant, database); `url` is then not used. */
  client?: ChromaClient;
  /**
   * Collection of memories, created on first use. Chroma's rules: 3-500 letters, digits, `.`, `_`
   * or `-`, beginning and ending with a letter or digit. `<collection>_tombstones` sits next to it.
   * @default "engram_memories"
   */
  collection?: string;
}

const optionsSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^https?:\/\/[^/?#]+\/?$/, "url must be http(s)://host[:port], without a path")
      .optional(),
    client: z
      .custom<ChromaClient>(
        (value) => value != null && typeof value === "object" && typeof (value as ChromaClient).getOrCreateCollection === "function",
        "client must be a ChromaClient from chromadb >= 3",
      )
      .optional(),
    collection: z
      .string()
      .regex(
        /^[A-Za-z0-9](?:[A-Za-z0-9._-]{1,498})[A-Za-z0-9]$/,
        "collection must be 3-500 letters, digits, . _ or -, beginning and ending with a letter or digit",
      )
      .optional(),
  })
  .refine((options) => (options.url === undefined) !== (options.client === undefined), { message: "pass exactly one of url or client" });

type Handles = { memories: Collection; tombstones: Collection };

class ChromaStore implements VectorStore, KeywordSearchable, ScopeEnumerable {
  readonly #options: z.infer<typeof optionsSchema>;
  readonly #name: string;
  #client: Promise<ChromaClient> | undefined;
  #handles: Promise<Handles> | undefined;
  #dimension: number | undefined;

  constructor(options: z.infer<typeof optionsSchema>) {
    this.#options = options;
    this.#name = options.collection ?? "engram_memories";
  }

  /** Ids of erased memories, one record each (the id, a 1-d placeholder embedding). */
  get #tombstones(): string {
    return `${this.#name}_tombstones`;
  }

  #connect(): Promise<ChromaClient> {
    this.#client ??= (async () => {
      if (this.#options.client) return this.#options.client;
      const { ChromaClient } = await import("chromadb").catch((cause) => {
        throw new ConfigError({ message: "chromaStore needs the `chromadb` package (>= 3.5): npm install chromadb", cause });
      });
      const url = new URL(this.#options.url as string);
      const ssl = url.protocol === "https:";
      return new ChromaClient({ host: url.hostname, port: Number(url.port || (ssl ? 443 : 80)), ssl });
    })();
    return this.#client;
  }

  async #call<T>(what: string, fn: (client: ChromaClient) => Promise<T>): Promise<T> {
    const client = await this.#connect();
    try {
      return await fn(client);
    } catch (error) {
      if (EngramError.isInstance(error)) throw error;
      const message = error instanceof Error ? error.message : String(error);
      const hint = isNotFound(error) ? ` (the collection "${this.#name}" or "${this.#tombstones}" does not exist: init creates them)` : "";
      throw new StoreError({ message: `Chroma ${what} failed: ${message}${hint}`, cause: error });
    }
  }

  /** The two collections: those init prepared, or the existing ones when a call comes first. */
  #collections(): Promise<Handles> {
    this.#handles ??= this.#call("open", async (client) => ({
      memories: await client.getCollection({ name: this.#name }),
      tombstones: await client.getCollection({ name: this.#tombstones }),
    })).catch((error) => {
      this.#handles = undefined;
      throw error;
    });
    return this.#handles;
  }

  /** Runs `fn` on the collections; when they were made again meanwhile (a reset elsewhere), on the new ones. */
  async #use<T>(what: string, fn: (handles: Handles) => Promise<T>): Promise<T> {
    const current = this.#collections();
    const handles = await current;
    try {
      return await this.#call(what, () => fn(handles));
    } catch (error) {
      if (!isNotFound((error as Error).cause)) throw error;
      if (this.#handles === current) this.#handles = undefined;
      const fresh = await this.#collections();
      return this.#call(what, () => fn(fresh));
    }
  }

  async #maxBatch(): Promise<number> {
    const size = await this.#call("write", (client) => client.getMaxBatchSize());
    return size > 0 ? size : 1000;
  }

  async init({ dimension, modelId }: { dimension: number; modelId?: string }): Promise<void> {
    const handles = await this.#call("init", async (client) => {
      const open = (name: string, metadata?: Metadata) =>
        // Engram embeds: no embedding function. Cosine distance, as every store searches by.
        client.getOrCreateCollection({ name, embeddingFunction: null, configuration: { hnsw: { space: "cosine" } }, metadata });
      const made = { engramDimension: dimension, ...(modelId !== undefined && { engramEmbeddingModel: modelId }) };
      let memories = await open(this.#name, made);
      let stored = await this.#embeddingOf(memories);
      if (stored.dimension !== undefined && stored.dimension !== dimension && (await memories.count()) === 0) {
        // Empty (e.g. emptied by hand): Chroma keeps a collection's first dimension, so make it again.
        await client.deleteCollection({ name: this.#name });
        memories = await open(this.#name, made);
        stored = await this.#embeddingOf(memories);
      }
      const legacy = memories.metadata?.["hnsw:space"];
      const space =
        memories.configuration?.hnsw?.space ?? memories.configuration?.spann?.space ?? (typeof legacy === "string" ? legacy : "l2");
      if (space !== "cosine") {
        throw new ConfigError({
          message: `The Chroma collection "${this.#name}" uses ${space} distance; Engram searches by cosine similarity. Use another collection, or create this one with configuration { hnsw: { space: "cosine" } }.`,
        });
      }
      assertSameEmbedding(
        stored,
        { dimension, modelId },
        { holder: `The Chroma collection "${this.#name}"`, elsewhere: "another collection" },
      );
      if (stored.dimension === undefined || (stored.modelId === undefined && modelId !== undefined)) {
        await memories.modify({ metadata: { ...memories.metadata, ...made } });
      }
      return { memories, tombstones: await open(this.#tombstones) };
    });
    this.#handles = Promise.resolve(handles);
    this.#dimension = dimension;
  }

  /** The dimension and model a collection is made for: from its metadata, or a stored embedding's length. */
  async #embeddingOf(collection: Collection): Promise<{ dimension?: number; modelId?: string }> {
    const metadata = collection.metadata ?? {};
    const modelId = typeof metadata.engramEmbeddingModel === "string" ? metadata.engramEmbeddingModel : undefined;
    if (typeof metadata.engramDimension === "number") return { dimension: metadata.engramDimension, modelId };
    const sample = await collection.get({ limit: 1, include: ["embeddings"] });
    const embedding = sample.embeddings[0];
    return { dimension: embedding ? embedding.length : undefined, modelId };
  }

  async write(batch: WriteBatch): Promise<void> {
    const upserts = checkedUpserts(batch, this.#dimension);
    const deletes = [...new Set(batch.delete ?? [])];
    if (upserts.length === 0 && deletes.length === 0) return;
    const size = await this.#maxBatch();
    // Chroma has no transactions: the preconditions are checked just before the write, not with it.
    const ids = idsToCheck(batch);
    const stored = new Map<string, Metadata | null>();
    if (ids.length > 0) {
      const [found, erased] = await Promise.all([this.#getByIds("write", ids, { include: ["metadatas"] }), this.#erasedAmong(ids)]);
      found.ids.forEach((id, i) => {
        stored.set(id, found.metadatas[i] ?? null);
      });
      const versions = new Map<string, RecordVersion>();
      for (const [id, metadata] of stored) versions.set(id, { hash: String(metadata?.hash), updatedAt: String(metadata?.updatedAt) });
      assertNoConflict(batch, versions, erased);
    }
    // A purge is final from the moment its tombstones exist, even if the deletes below fail.
    if (batch.erase) await this.#bury(deletes);
    for (const part of chunks(upserts, size)) {
      await this.#use("write", ({ memories }) =>
        memories.upsert({
          ids: part.map((record) => record.id),
          embeddings: part.map((record) => Array.from(record.vector)),
          documents: part.map((record) => record.text),
          metadatas: part.map((record) => toMetadata(record, stored.get(record.id))),
          uris: part.map((record) => vectorUri(record.vector)),
        }),
      );
    }
    for (const part of chunks(deletes, size)) await this.#use("write", ({ memories }) => memories.delete({ ids: part }));
  }

  async #erasedAmong(ids: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const part of chunks(ids, await this.#maxBatch())) {
      const page = await this.#use("write", ({ tombstones }) => tombstones.get({ ids: part, include: [] }));
      for (const id of page.ids) found.add(id);
    }
    return found;
  }

  async #bury(ids: readonly string[]): Promise<void> {
    for (const part of chunks(ids, await this.#maxBatch())) {
      await this.#use("erase", ({ tombstones }) => tombstones.upsert({ ids: part, embeddings: part.map(() => [1]) }));
    }
  }

  /** Records among `ids` (inside `where` when given), read in batches Chroma accepts. */
  async #getByIds(
    what: string,
    ids: readonly string[],
    { where, include }: { where?: Where; include: ("documents" | "metadatas" | "uris")[] },
  ): Promise<{ ids: string[]; documents: (string | null)[]; metadatas: (Metadata | null)[]; uris: (string | null)[] }> {
    const out = {
      ids: [] as string[],
      documents: [] as (string | null)[],
      metadatas: [] as (Metadata | null)[],
      uris: [] as (string | null)[],
    };
    for (const part of chunks(ids, await this.#maxBatch())) {
      const page = await this.#use(what, ({ memories }) => memories.get({ ids: part, ...(where && { where }), include }));
      out.ids.push(...page.ids);
      out.documents.push(...page.documents);
      out.metadatas.push(...(page.metadatas as (Metadata | null)[]));
      out.uris.push(...page.uris);
    }
    return out;
  }

  async search({ vector, filter, limit }: { vector: Float32Array; filter: StoreFilter; limit: number }): Promise<ScoredRecord[]> {
    const where = whereOf(filter);
    const result = await this.#use("search", ({ memories }) =>
      memories.query({ queryEmbeddings: [Array.from(vector)], nResults: limit, where, include: ["documents", "metadatas", "distances"] }),
    );
    const ids = result.ids[0] ?? [];
    return ids.map((id, i) => ({
      record: toRecord(id, result.documents[0]?.[i], result.metadatas[0]?.[i] as Metadata | null),
      // Chroma's cosine distance is 1 − cosine similarity.
      score: 1 - (result.distances[0]?.[i] ?? 1),
    }));
  }

  async keywordSearch({ text, filter, limit }: { text: string; filter: StoreFilter; limit: number }): Promise<ScoredRecord[]> {
    const where = whereOf(filter);
    const terms = keywordTerms(text);
    if (terms.length === 0) return [];
    // Chroma has no BM25: a regex finds the scope's texts holding a word of one of the query's
    // stems, and they are ranked here by BM25, with document frequencies against the whole scope.
    const [candidates, scope] = await Promise.all([
      this.#use("keyword search", ({ memories }) =>
        memories.get({ where, whereDocument: { $regex: keywordPattern(terms) }, include: ["documents"] }),
      ),
      this.#use("keyword search", ({ memories }) => memories.get({ where, include: [] })),
    ]);
    const best = rankByBm25(
      terms,
      candidates.ids.map((id, i) => ({ id, text: candidates.documents[i] ?? "" })),
      { documentCount: scope.ids.length, limit },
    );
    if (best.length === 0) return [];
    const found = await this.#getByIds(
      "keyword search",
      best.map((hit) => hit.candidate.id),
      { include: ["documents", "metadatas", "uris"] },
    );
    const records = new Map(found.ids.map((id, i) => [id, toRecord(id, found.documents[i], found.metadatas[i], found.uris[i])]));
    return best.flatMap(({ candidate, score }) => {
      const record = records.get(candidate.id);
      return record ? [{ record, score }] : [];
    });
  }

  async get(ids: readonly string[], filter: StoreFilter): Promise<MemoryRecord[]> {
    const where = whereOf(filter);
    const wanted = [...new Set(ids)];
    if (wanted.length === 0) return [];
    const found = await this.#getByIds("get", wanted, { where, include: ["documents", "metadatas", "uris"] });
    return found.ids.map((id, i) => toRecord(id, found.documents[i], found.metadatas[i], found.uris[i]));
  }

  async list({ filter, limit, cursor }: { filter: StoreFilter; limit: number; cursor?: string }) {
    const where = whereOf(filter);
    const after = readCursor(cursor, 3);
    const afterKey: ListKey | undefined = after && [Number(after[0]), after[1] as string, after[2] as string];
    if (afterKey && !Number.isSafeInteger(afterKey[0])) throw invalidCursor();
    // Chroma cannot order what it reads: the rest of the scope is read, and ordered here.
    const rest = await this.#use("list", ({ memories }) =>
      memories.get({
        where: afterKey ? whereOf(filter, { createdAtMs: { $gte: afterKey[0] } }) : where,
        include: ["documents", "metadatas"],
      }),
    );
    const rows = rest.ids
      .map((id, i) => ({ key: listKeyOf(id, rest.metadatas[i] as Metadata | null), i }))
      .filter(({ key }) => !afterKey || byListKey(key, afterKey) > 0)
      .sort((a, b) => byListKey(a.key, b.key));
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      records: page.map(({ i }) => toRecord(rest.ids[i] as string, rest.documents[i], rest.metadatas[i] as Metadata | null)),
      cursor: rows.length > limit && last ? encodeCursor([String(last.key[0]), last.key[1], last.key[2]]) : undefined,
    };
  }

  async deleteMany(filter: StoreFilter): Promise<number> {
    const where = whereOf(filter);
    const size = await this.#maxBatch();
    let deleted = 0;
    for (;;) {
      const { ids } = await this.#use("delete", ({ memories }) => memories.get({ where, limit: size, include: [] }));
      if (ids.length === 0) return deleted;
      await this.#bury(ids);
      await this.#use("delete", ({ memories }) => memories.delete({ ids }));
      deleted += ids.length;
    }
  }

  /** Reads the scope ids of every record (no texts, no vectors): an operator's full pass over the collection. */
  async scopes(): Promise<ScopeCount[]> {
    return countScopes(this.#everyScope());
  }

  async *#everyScope(): AsyncGenerator<Scope> {
    const size = await this.#maxBatch();
    for (let offset = 0; ; offset += size) {
      const page = await this.#use("scopes", ({ memories }) => memories.get({ limit: size, offset, include: ["metadatas"] }));
      for (const [i, id] of page.ids.entries()) yield scopeOf(toRecord(id, "", page.metadatas[i] as Metadata | null));
      if (page.ids.length < size) return;
    }
  }

  async reset(): Promise<void> {
    // Both collections go, with their files and their write-ahead log, and come back empty, made
    // for no dimension yet: init then prepares them for any embedder.
    await this.#call("reset", async (client) => {
      for (const name of [this.#name, this.#tombstones]) {
        await client.deleteCollection({ name }).catch((error: unknown) => {
          if (!isNotFound(error)) throw error;
        });
      }
      const create = (name: string) =>
        client.getOrCreateCollection({ name, embeddingFunction: null, configuration: { hnsw: { space: "cosine" } } });
      this.#handles = Promise.resolve({ memories: await create(this.#name), tombstones: await create(this.#tombstones) });
    });
    this.#dimension = undefined;
  }

  async close(): Promise<void> {
    this.#handles = undefined;
    this.#client = undefined;
  }
}

const isNotFound = (error: unknown) => (error as Error | undefined)?.name === "ChromaNotFoundError";

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Memories in a Chroma collection (the `chromadb` client >= 3.5, loaded on first use), against a
 * Chroma 1.x server.
 *
 * The collection is created with cosine distance and no embedding function (Engram embeds), the
 * embedder's dimension and model in its metadata. Each memory is one Chroma record: its id, its
 * vector, its text as the document, and its scope, dates and metadata under reserved metadata keys.
 * Scope filters run inside Chroma (`where`). Keyword search finds the scope's texts holding a word
 * of the query (`whereDocument` `$regex`) and ranks them by BM25. Chroma has no transactions: a
 * write's preconditions are checked just before it.
 *
 * @example
 * const memory = new Memory({
 *   vectorStore: chromaStore({ url: "http://chroma:8000" }),
 *   historyStore: postgresHistory({ connectionString: process.env.DATABASE_URL }),
 * });
 */
export function chromaStore(options: ChromaStoreOptions): VectorStore & KeywordSearchable & ScopeEnumerable {
  return new ChromaStore(parseConfig(optionsSchema, options, "chromaStore"));
}
