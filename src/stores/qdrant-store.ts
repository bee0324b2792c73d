import type { QdrantClient, Schemas } from "@qdrant/js-client-rest";
import { z } from "zod";
import { ConfigError, EngramError, StoreError } from "../errors.js";
import { keywordTerms } from "../retrieval/keywords.js";
import { type Scope, scopeOf } from "../scope.js";
import { encodeCursor, invalidCursor, readCursor } from "../store-kit/cursor.js";
import { rankByBm25 } from "../store-kit/ranking.js";
import { countScopes } from "../store-kit/scopes.js";
import { assertNoConflict, checkedUpserts, idsToCheck } from "../store-kit/writes.js";
import { parseConfig } from "../validation.js";
import { prepareCollection } from "./qdrant-collection.js";
import {
  byAge,
  CHUNK,
  type Condition,
  chunks,
  conditions,
  createdAtMsOf,
  httpFailure,
  KEYWORD_CANDIDATES,
  type Payload,
  type Point,
  payloadOf,
  pointIdOf,
  toPayload,
  toRecord,
} from "./qdrant-points.js";
import type {
  KeywordSearchable,
  MemoryRecord,
  RecordStamp,
  RecordVersion,
  ScopeCount,
  ScopeEnumerable,
  ScoredRecord,
  StoreFilter,
  TimeOrdered,
  VectorStore,
  WriteBatch,
} from "./vector-store.js";

export { pointIdOf } from "./qdrant-points.js";

export interface QdrantStoreOptions {
  /** URL of the Qdrant REST API, e.g. "http://localhost:6333". Give this or `client`. */
  url?: string;
  /** API key (Qdrant Cloud, or a server with `service.api_key` set). */
  apiKey?: string;
  /** Collection of memories, created with the embedder's dimension on first use. @default "engram_memories" */
  collection?: string;
  /** A `QdrantClient` you configured yourself (timeouts, headers); `url` and `apiKey` are then not used. */
  client?: QdrantClient;
  /**
   * Exact search (a full scan of the scope's points) instead of the HNSW index. Qdrant already
   * scans small scopes through the payload index; set this when large scopes need exact recall.
   * @default false
   */
  exact?: boolean;
}

const optionsSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^https?:\/\//, "url must start with http:// or https://")
      .optional(),
    apiKey: z.string().min(1).optional(),
    collection: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,200}$/, "collection must be 1-200 letters, digits, _ or -")
      .optional(),
    client: z
      .custom<QdrantClient>(
        (value) => value != null && typeof value === "object" && typeof (value as QdrantClient).query === "function",
        "client must be a QdrantClient from @qdrant/js-client-rest >= 1.19",
      )
      .optional(),
    exact: z.boolean().optional(),
  })
  .refine((options) => (options.url === undefined) !== (options.client === undefined), { message: "pass exactly one of url or client" });

class QdrantStore implements VectorStore, KeywordSearchable, ScopeEnumerable, TimeOrdered {
  readonly #options: z.infer<typeof optionsSchema>;
  readonly #collection: string;
  #client: Promise<QdrantClient> | undefined;
  #dimension: number | undefined;

  constructor(options: z.infer<typeof optionsSchema>) {
    this.#options = options;
    this.#collection = options.collection ?? "engram_memories";
  }

  /** Ids of erased memories, one point each (a 1-d placeholder vector, the id in the payload). */
  get #tombstones(): string {
    return `${this.#collection}_tombstones`;
  }

  #connect(): Promise<QdrantClient> {
    this.#client ??= (async () => {
      if (this.#options.client) return this.#options.client;
      const { QdrantClient } = await import("@qdrant/js-client-rest").catch((cause) => {
        throw new ConfigError({
          message: "qdrantStore needs the `@qdrant/js-client-rest` package (>= 1.19): npm install @qdrant/js-client-rest",
          cause,
        });
      });
      return new QdrantClient({ url: this.#options.url, apiKey: this.#options.apiKey });
    })();
    return this.#client;
  }

  async #call<T>(what: string, fn: (client: QdrantClient, collection: string) => Promise<T>): Promise<T> {
    const client = await this.#connect();
    try {
      return await fn(client, this.#collection);
    } catch (error) {
      if (EngramError.isInstance(error)) throw error;
      const { status, message } = httpFailure(error);
      throw new StoreError({ message: `Qdrant ${what} failed${status ? ` (HTTP ${status})` : ""}: ${message}`, cause: error });
    }
  }

  async init({ dimension, modelId }: { dimension: number; modelId?: string }): Promise<void> {
    await this.#call("init", (client, name) => prepareCollection(client, { name, tombstones: this.#tombstones, dimension, modelId }));
    this.#dimension = dimension;
  }

  async write(batch: WriteBatch): Promise<void> {
    const upserts = checkedUpserts(batch, this.#dimension);
    const operations: Schemas["UpdateOperation"][] = [
      ...chunks(upserts).map((part) => ({
        upsert: {
          points: part.map((record) => ({
            id: pointIdOf(record.id),
            vector: Array.from(record.vector as Float32Array),
            payload: toPayload(record),
          })),
        },
      })),
      ...chunks([...new Set(batch.delete ?? [])]).map((part) => ({ delete: { points: part.map(pointIdOf) } })),
    ];
    if (operations.length === 0) return;
    // Qdrant has no transactions: the preconditions are checked just before the write, not with it.
    const ids = idsToCheck(batch);
    if (ids.length > 0) {
      const [stored, erased] = await Promise.all([
        this.#call("write", (client, name) =>
          client.retrieve(name, { ids: ids.map(pointIdOf), with_payload: ["id", "hash", "updatedAt"], with_vector: false }),
        ),
        this.#erasedAmong(ids),
      ]);
      assertNoConflict(
        batch,
        new Map(
          stored.map((point) => {
            const payload = payloadOf(point);
            return [payload.id, { hash: payload.hash, updatedAt: payload.updatedAt } satisfies RecordVersion];
          }),
        ),
        erased,
      );
    }
    // One request, applied in order; Qdrant has no multi-operation transactions.
    await this.#call("write", (client, name) => client.batchUpdate(name, { operations, wait: true }));
    if (batch.erase) await this.#bury([...new Set(batch.delete ?? [])]);
  }

  async #erasedAmong(ids: readonly string[]): Promise<Set<string>> {
    const points = await this.#call("write", (client) =>
      client.retrieve(this.#tombstones, { ids: ids.map(pointIdOf), with_payload: ["id"], with_vector: false }),
    );
    return new Set(points.map((point) => (point.payload as { id: string }).id));
  }

  async #bury(ids: readonly string[]): Promise<void> {
    for (const part of chunks(ids)) {
      await this.#call("erase", (client) =>
        client.upsert(this.#tombstones, {
          points: part.map((id) => ({ id: pointIdOf(id), vector: [1], payload: { id } })),
          wait: true,
        }),
      );
    }
  }

  async search({ vector, filter, limit }: { vector: Float32Array; filter: StoreFilter; limit: number }): Promise<ScoredRecord[]> {
    const must = conditions(filter);
    const response = await this.#call("search", (client, name) =>
      client.query(name, {
        query: Array.from(vector),
        filter: { must },
        limit,
        with_payload: true,
        with_vector: false,
        ...(this.#options.exact ? { params: { exact: true } } : {}),
      }),
    );
    return response.points.map((point) => ({ record: toRecord(point), score: point.score }));
  }

  async keywordSearch({ text, filter, limit }: { text: string; filter: StoreFilter; limit: number }): Promise<ScoredRecord[]> {
    const must = conditions(filter);
    const terms = keywordTerms(text);
    if (terms.length === 0) return [];
    // The full-text index finds the scope's points holding any term; Qdrant does not rank them, so
    // they are ranked here by BM25, with document frequencies against the whole scope.
    const [candidates, scope] = await Promise.all([
      this.#scrollAll("keyword search", [...must, { key: "text", match: { text_any: terms.join(" ") } }], KEYWORD_CANDIDATES),
      this.#call("keyword search", (client, name) => client.count(name, { filter: { must }, exact: true })),
    ]);
    const best = rankByBm25(
      terms,
      candidates.map((point) => ({ id: payloadOf(point).id, text: payloadOf(point).text, point })),
      { documentCount: scope.count, limit },
    );
    if (best.length === 0) return [];
    const withVectors = await this.#call("keyword search", (client, name) =>
      client.retrieve(name, { ids: best.map((hit) => hit.candidate.point.id), with_payload: false, with_vector: true }),
    );
    const vectors = new Map(withVectors.map((point) => [String(point.id), point.vector]));
    return best.map(({ candidate: { point }, score }) => ({
      record: toRecord({ ...point, vector: vectors.get(String(point.id)) }, true),
      score,
    }));
  }

  async get(ids: readonly string[], filter: StoreFilter): Promise<MemoryRecord[]> {
    const must = conditions(filter);
    const wanted = new Set(ids);
    if (wanted.size === 0) return [];
    const { points } = await this.#call("get", (client, name) =>
      client.scroll(name, {
        filter: { must: [...must, { has_id: [...wanted].map(pointIdOf) }] },
        limit: wanted.size,
        with_payload: true,
        with_vector: true,
      }),
    );
    return points.filter((point) => wanted.has((point.payload as unknown as Payload).id)).map((point) => toRecord(point, true));
  }

  async list({ filter, limit, cursor }: { filter: StoreFilter; limit: number; cursor?: string }) {
    const must = conditions(filter);
    const after = readCursor(cursor, 3);
    if (after && Number.isNaN(Number(after[0]))) throw invalidCursor();
    // Qdrant orders by a number (createdAtMs) and breaks ties arbitrarily, so the records of one
    // millisecond are read together and ordered here; usually they are the few of one add call.
    const want = limit + 1;
    const page: Point[] = [];
    if (after) {
      const [ms, createdAt, id] = [Number(after[0]), after[1] as string, after[2] as string];
      const rest = (await this.#sameTime(must, ms)).filter((point) => {
        const { createdAt: time, id: other } = payloadOf(point);
        return time > createdAt || (time === createdAt && other > id);
      });
      page.push(...rest);
    }
    if (page.length < want) {
      const newer: Condition[] = after ? [{ key: "createdAtMs", range: { gt: Number(after[0]) } }] : [];
      const { points } = await this.#call("list", (client, name) =>
        client.scroll(name, {
          filter: { must: [...must, ...newer] },
          order_by: { key: "createdAtMs", direction: "asc" },
          limit: want - page.length,
          with_payload: true,
        }),
      );
      if (points.length === want - page.length && points.length > 0) {
        // The last millisecond may be cut short: read it whole.
        const lastMs = createdAtMsOf(points.at(-1) as Point);
        page.push(...points.filter((point) => createdAtMsOf(point) !== lastMs).sort(byAge));
        page.push(...(await this.#sameTime(must, lastMs)));
      } else {
        page.push(...[...points].sort(byAge));
      }
    }
    const records = page.slice(0, limit);
    const last = records.at(-1);
    return {
      records: records.map((point) => toRecord(point)),
      cursor:
        page.length > limit && last
          ? encodeCursor([String(createdAtMsOf(last)), payloadOf(last).createdAt, payloadOf(last).id])
          : undefined,
    };
  }

  /** Every record inside the filter created in one millisecond, in list order. */
  async #sameTime(must: Condition[], ms: number): Promise<Point[]> {
    const points = await this.#scrollAll("list", [...must, { key: "createdAtMs", range: { gte: ms, lte: ms } }], Number.POSITIVE_INFINITY);
    return points.sort(byAge);
  }

  async stamps(filter: StoreFilter): Promise<RecordStamp[]> {
    const must = conditions(filter);
    const points: Point[] = [];
    let offset: Schemas["ExtendedPointId"] | undefined;
    do {
      const page = await this.#call("stamps", (client, name) =>
        client.scroll(name, {
          filter: { must },
          limit: CHUNK,
          offset,
          with_payload: ["id", "hash", "createdAt", "createdAtMs", "updatedAt"],
          with_vector: false,
        }),
      );
      points.push(...page.points);
      offset = (page.next_page_offset ?? undefined) as Schemas["ExtendedPointId"] | undefined;
    } while (offset !== undefined);
    return points.sort(byAge).map((point) => {
      const { id, hash, createdAt, updatedAt } = payloadOf(point);
      return { id, hash, createdAt, updatedAt };
    });
  }

  async latest({ filter, limit }: { filter: StoreFilter; limit: number }): Promise<MemoryRecord[]> {
    const must = conditions(filter);
    const { points } = await this.#call("latest", (client, name) =>
      client.scroll(name, {
        filter: { must },
        order_by: { key: "createdAtMs", direction: "desc" },
        limit,
        with_payload: ["id"],
        with_vector: false,
      }),
    );
    if (points.length === 0) return [];
    // Qdrant breaks ties of one millisecond arbitrarily: the oldest millisecond taken is read whole.
    const oldest = Math.min(...points.map(createdAtMsOf));
    const newer = points.filter((point) => createdAtMsOf(point) !== oldest);
    const tied = await this.#sameTime(must, oldest);
    const ids = [...newer, ...tied].map((point) => payloadOf(point).id);
    const records = await this.get(ids, filter);
    const newestFirst = (a: MemoryRecord, b: MemoryRecord) =>
      Date.parse(b.createdAt) - Date.parse(a.createdAt) ||
      (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
    return records.sort(newestFirst).slice(0, limit);
  }

  async deleteMany(filter: StoreFilter): Promise<number> {
    const must = conditions(filter);
    let deleted = 0;
    for (;;) {
      const { points } = await this.#call("delete", (client, name) =>
        client.scroll(name, { filter: { must }, limit: CHUNK, with_payload: ["id"], with_vector: false }),
      );
      if (points.length === 0) return deleted;
      await this.#bury(points.map((point) => (point.payload as { id: string }).id));
      await this.#call("delete", (client, name) => client.delete(name, { points: points.map((point) => point.id), wait: true }));
      deleted += points.length;
    }
  }

  /** Reads the scope ids of every point (no texts, no vectors): an operator's full pass over the collection. */
  async scopes(): Promise<ScopeCount[]> {
    return countScopes(this.#everyScope());
  }

  async *#everyScope(): AsyncGenerator<Scope> {
    let offset: Schemas["ExtendedPointId"] | undefined;
    do {
      const page = await this.#call("scopes", (client, name) =>
        client.scroll(name, { limit: CHUNK, offset, with_payload: ["userId", "agentId", "runId"], with_vector: false }),
      );
      for (const point of page.points) yield scopeOf((point.payload ?? {}) as Scope);
      offset = (page.next_page_offset ?? undefined) as Schemas["ExtendedPointId"] | undefined;
    } while (offset !== undefined);
  }

  async reset(): Promise<void> {
    // The collection stays (with its indexes) and forgets its model; init makes it again for
    // another dimension while it is empty.
    await this.#call("reset", async (client, name) => {
      if ((await client.collectionExists(this.#tombstones)).exists) await client.delete(this.#tombstones, { filter: {}, wait: true });
      if (!(await client.collectionExists(name)).exists) return;
      await client.delete(name, { filter: {}, wait: true });
      await client.updateCollection(name, { metadata: { engramEmbeddingModel: null } });
    });
    this.#dimension = undefined;
  }

  async close(): Promise<void> {
    this.#client = undefined;
  }

  async #scrollAll(what: string, must: Condition[], max: number): Promise<Point[]> {
    const points: Point[] = [];
    let offset: Schemas["ExtendedPointId"] | undefined;
    do {
      const page = await this.#call(what, (client, name) =>
        client.scroll(name, { filter: { must }, limit: Math.min(CHUNK, max - points.length), offset, with_payload: true }),
      );
      points.push(...page.points);
      offset = (page.next_page_offset ?? undefined) as Schemas["ExtendedPointId"] | undefined;
    } while (offset !== undefined && points.length < max);
    return points;
  }
}

/**
 * Memories in a Qdrant collection (`@qdrant/js-client-rest` >= 1.19, loaded on first use), for a
 * cluster shared by many app servers.
 *
 * The collection is created with the embedder's dimension and cosine distance, with payload
 * indexes on `userId` (a tenant index), `agentId`, `runId`, `hash`, `createdAtMs` and a full-text
 * index on `text`. Scope filters run inside Qdrant. Point ids are UUIDs (see `pointIdOf`).
 * Keyword search takes up to 1,000 full-text matches of the scope and ranks them by BM25.
 *
 * @example
 * const memory = new Memory({
 *   vectorStore: qdrantStore({ url: "http://qdrant:6333", apiKey: process.env.QDRANT_API_KEY }),
 *   historyStore: postgresHistory({ connectionString: process.env.DATABASE_URL }),
 * });
 */
export function qdrantStore(options: QdrantStoreOptions): VectorStore & KeywordSearchable & ScopeEnumerable & TimeOrdered {
  return new QdrantStore(parseConfig(optionsSchema, options, "qdrantStore"));
}
