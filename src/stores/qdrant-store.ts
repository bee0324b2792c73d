import { createHash } from "node:crypto";
import type { QdrantClient, Schemas } from "@qdrant/js-client-rest";
import { z } from "zod";
import { ConfigError, EngramError, StoreError } from "../errors.js";
import { base64ToVector, vectorToBase64 } from "../internal/json.js";
import { keywordTerms } from "../retrieval/keywords.js";
import { type Scope, scopeOf } from "../scope.js";
import { encodeCursor, invalidCursor, readCursor } from "../store-kit/cursor.js";
import { assertSameEmbedding } from "../store-kit/embedding.js";
import { metadataConditions, scopeConditions } from "../store-kit/filter.js";
import { rankByBm25 } from "../store-kit/ranking.js";
import { countScopes } from "../store-kit/scopes.js";
import { assertNoConflict, checkedUpserts, idsToCheck } from "../store-kit/writes.js";
import { parseConfig } from "../validation.js";
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

type Condition = Schemas["Condition"];
type Payload = {
  id: string;
  text: string;
  hash: string;
  userId?: string;
  agentId?: string;
  runId?: string;
  metadata: Record<string, unknown>;
  /**
   * The scalar top-level metadata values, which filters compare. Qdrant would match a filter value
   * against any element of an array; the contract wants equality of the whole value.
   */
  filterable: Record<string, string | number | boolean | null>;
  createdAt: string;
  updatedAt: string;
  /** `createdAt` in epoch milliseconds: Qdrant orders by numbers, not by strings. */
  createdAtMs: number;
  /** The vector as written (base64 of its float32 bytes), kept only when Qdrant changes it by normalising. */
  vectorAsWritten?: string;
};
type Point = { id: string | number; payload?: Record<string, unknown> | null; vector?: unknown };

/** Points per request when writing or deleting; keeps request bodies well under Qdrant's 32 MB limit. */
const CHUNK = 256;
/** Most full-text candidates keyword search ranks (by BM25, in process) per query. */
const KEYWORD_CANDIDATES = 1000;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Qdrant accepts only unsigned integers and UUIDs as point ids. A record id that is a lower-case
 * UUID (every id Engram makes) is its own point id; any other id maps to a name-based UUID
 * (SHA-256, version 8), which can never equal a random (version 4) one. The record id itself is
 * kept in the payload.
 */
export function pointIdOf(id: string): string {
  if (uuidPattern.test(id)) return id;
  const hex = createHash("sha256").update(id).digest("hex");
  const variant = ((Number.parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** A quoted JSON path segment: metadata keys may hold dots, which would otherwise mean nesting. */
const metadataPath = (key: string) => `filterable."${key}"`;

/**
 * Whether Qdrant stores this vector as it is under cosine distance: it normalises every vector
 * whose squared length is not within 1e-6 of 1 (or 0). A margin keeps borderline vectors on the
 * safe side: their exact copy is kept.
 */
function storedAsWritten(vector: Float32Array): boolean {
  let squared = 0;
  for (const value of vector) squared += value * value;
  return Math.abs(squared - 1) <= 1e-7;
}

function conditions(filter: StoreFilter): Condition[] {
  const must: Condition[] = scopeConditions(filter).map(([key, value]) => ({ key, match: { value } }));
  if (filter.hash !== undefined) must.push({ key: "hash", match: { value: filter.hash } });
  for (const [key, value] of metadataConditions(filter)) {
    if (value === null) must.push({ is_null: { key: metadataPath(key) } });
    // Qdrant matches integers, strings and booleans by value; a range of one point covers every number.
    else if (typeof value === "number") must.push({ key: metadataPath(key), range: { gte: value, lte: value } });
    else must.push({ key: metadataPath(key), match: { value } });
  }
  return must;
}

function toRecord(point: Point, withVector = false): MemoryRecord {
  const payload = point.payload as unknown as Payload;
  const vector = !withVector
    ? undefined
    : payload.vectorAsWritten !== undefined
      ? base64ToVector(payload.vectorAsWritten)
      : Array.isArray(point.vector)
        ? Float32Array.from(point.vector as number[])
        : undefined;
  return {
    id: payload.id,
    text: payload.text,
    hash: payload.hash,
    ...scopeOf(payload),
    metadata: payload.metadata ?? {},
    createdAt: payload.createdAt,
    updatedAt: payload.updatedAt,
    ...(vector && { vector }),
  };
}

function toPayload(record: MemoryRecord): Payload {
  const createdAtMs = Date.parse(record.createdAt);
  if (Number.isNaN(createdAtMs))
    throw new StoreError({ message: `Record ${record.id} has createdAt "${record.createdAt}", not an ISO 8601 date` });
  const filterable: Payload["filterable"] = {};
  for (const [key, value] of Object.entries(record.metadata)) {
    if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") filterable[key] = value;
  }
  const payload: Payload = {
    id: record.id,
    text: record.text,
    hash: record.hash,
    ...scopeOf(record),
    metadata: { ...record.metadata },
    filterable,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    createdAtMs,
  };
  const vector = record.vector as Float32Array;
  if (!storedAsWritten(vector)) payload.vectorAsWritten = vectorToBase64(vector);
  return payload;
}

const payloadOf = (point: Point) => point.payload as unknown as Payload;
const createdAtMsOf = (point: Point) => payloadOf(point).createdAtMs;
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** List order: createdAt (as a time, then as written), then record id, like the SQL stores. */
const byAge = (a: Point, b: Point) =>
  createdAtMsOf(a) - createdAtMsOf(b) ||
  compare(payloadOf(a).createdAt, payloadOf(b).createdAt) ||
  compare(payloadOf(a).id, payloadOf(b).id);

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

/** The status code and Qdrant's own error message of a failed request, when it was an HTTP error. */
function httpFailure(error: unknown): { status?: number; message: string } {
  const failure = error as { status?: number; data?: { status?: { error?: string } }; message?: string };
  return {
    status: typeof failure?.status === "number" ? failure.status : undefined,
    message: failure?.data?.status?.error ?? failure?.message ?? String(error),
  };
}

class QdrantStore implements VectorStore, KeywordSearchable, ScopeEnumerable {
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
    await this.#call("init", async (client, name) => {
      const create = async () => {
        try {
          await client.createCollection(name, {
            vectors: { size: dimension, distance: "Cosine" },
            metadata: modelId === undefined ? {} : { engramEmbeddingModel: modelId },
          });
        } catch (error) {
          // Another app server created it first: fine, it is checked below like any existing one.
          if (httpFailure(error).status !== 409) throw error;
        }
      };
      if (!(await client.collectionExists(name)).exists) await create();
      let info = await client.getCollection(name);
      let vectors = info.config.params.vectors as { size?: number } | undefined;
      if (vectors?.size !== dimension && (await client.count(name, { exact: true })).count === 0) {
        // Empty (e.g. after a reset): make it again for this embedder.
        await client.deleteCollection(name);
        await create();
        info = await client.getCollection(name);
        vectors = info.config.params.vectors as { size?: number } | undefined;
      }
      const storedModel = (info.config.metadata as Record<string, unknown> | null | undefined)?.engramEmbeddingModel ?? undefined;
      assertSameEmbedding(
        { dimension: vectors?.size ?? "named or unknown", modelId: typeof storedModel === "string" ? storedModel : undefined },
        { dimension, modelId },
        { holder: `The Qdrant collection "${name}"`, elsewhere: "another collection" },
      );
      if (storedModel === undefined && modelId !== undefined) {
        await client.updateCollection(name, { metadata: { engramEmbeddingModel: modelId } });
      }
      const indexes: [string, Schemas["PayloadFieldSchema"]][] = [
        // The tenant index keeps each user's points together on disk and in the HNSW graph.
        ["userId", { type: "keyword", is_tenant: true }],
        ["agentId", "keyword"],
        ["runId", "keyword"],
        ["hash", "keyword"],
        ["text", { type: "text", tokenizer: "word", lowercase: true, min_token_len: 2 }],
        ["createdAtMs", { type: "integer", lookup: false, range: true }],
      ];
      for (const [field_name, field_schema] of indexes) {
        if (info.payload_schema[field_name]) continue;
        await client.createPayloadIndex(name, { field_name, field_schema, wait: true });
      }
      if (!(await client.collectionExists(this.#tombstones)).exists) {
        try {
          await client.createCollection(this.#tombstones, { vectors: { size: 1, distance: "Dot" } });
        } catch (error) {
          if (httpFailure(error).status !== 409) throw error;
        }
      }
    });
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
export function qdrantStore(options: QdrantStoreOptions): VectorStore & KeywordSearchable & ScopeEnumerable {
  return new QdrantStore(parseConfig(optionsSchema, options, "qdrantStore"));
}
