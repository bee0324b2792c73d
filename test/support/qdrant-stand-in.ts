/**
 * A STAND-IN for a Qdrant server: an in-process HTTP server implementing the subset of Qdrant's
 * REST API that `qdrantStore` uses, with Qdrant's semantics as documented, so the store can be
 * tested through the real `@qdrant/js-client-rest` client where no Qdrant server can run.
 *
 * It is not Qdrant: no HNSW (every query is an exact scan), no persistence, no WAL, one shard.
 * What it does reproduce: point id rules (unsigned integers or UUIDs, UUIDs normalised to
 * lower-case hyphenated form), vector dimension errors, cosine vectors normalised on insert,
 * filters (must / should / must_not, match value / any / except / text / text_any, range,
 * is_null, is_empty, has_id, nested filters, quoted JSON path segments), payload indexes (a
 * full-text index changes how `match.text` tokenises; `order_by` needs a range index), scroll
 * paging by point id with an inclusive `offset` and `next_page_offset`, `order_by`, count, query
 * by vector with a filter, batch updates, collection metadata, and Qdrant's error envelope and
 * status codes (400 bad input, 404 missing collection, 409 existing collection).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tokenize } from "../../src/retrieval/keywords.js";

type PointId = number | string;
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Payload = Record<string, Json>;

interface StoredPoint {
  id: PointId;
  vector: Float32Array;
  payload: Payload;
  version: number;
}

interface Collection {
  size: number;
  distance: "Cosine" | "Dot" | "Euclid" | "Manhattan";
  metadata: Payload;
  indexes: Map<string, { data_type: string; params?: Record<string, Json> }>;
  /** Keyword payload indexes: field → value → keys of the points holding it (what Qdrant filters through first). */
  keywords: Map<string, Map<Json, Set<string>>>;
  points: Map<string, StoredPoint>;
  version: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const badInput = (message: string) => new HttpError(400, message);
const uuidForms = [
  /^([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})$/i,
  /^\{([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})\}$/i,
  /^urn:uuid:([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i,
];

/** Qdrant's ExtendedPointId: an unsigned 64-bit integer, or a UUID in any standard text form. */
function parsePointId(value: unknown): PointId {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === "string") {
    for (const form of uuidForms) {
      const match = form.exec(value);
      if (match) return match.slice(1).join("-").toLowerCase();
    }
  }
  throw badInput(
    `Format error in JSON body: value ${typeof value === "string" ? value : JSON.stringify(value)} is not a valid point ID, valid values are either an unsigned integer or a UUID`,
  );
}

const keyOf = (id: PointId) => (typeof id === "number" ? `n:${id}` : `u:${id}`);

/** Integer ids sort before UUIDs; UUIDs by their 128-bit value, which is their hex text order. */
function compareIds(a: PointId, b: PointId): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "number") return -1;
  if (typeof b === "number") return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** JSON path: `a.b`, `a."b.c"`, `a[]`. */
const parsedPaths = new Map<string, string[]>();

function parsePath(path: string): string[] {
  let segments = parsedPaths.get(path);
  if (!segments) {
    segments = parsePathText(path);
    parsedPaths.set(path, segments);
  }
  return segments;
}

function parsePathText(path: string): string[] {
  const segments: string[] = [];
  let rest = path;
  while (rest.length > 0) {
    let segment: string;
    if (rest.startsWith('"')) {
      const end = rest.indexOf('"', 1);
      if (end === -1) throw badInput(`Format error in JSON body: Invalid json path: '${path}'`);
      segment = rest.slice(1, end);
      rest = rest.slice(end + 1);
    } else {
      const match = /^[^."[\]]+/.exec(rest);
      if (!match) throw badInput(`Format error in JSON body: Invalid json path: '${path}'`);
      segment = match[0];
      rest = rest.slice(segment.length);
    }
    if (rest.startsWith("[]")) rest = rest.slice(2);
    segments.push(segment);
    if (rest.startsWith(".")) {
      rest = rest.slice(1);
      if (rest.length === 0) throw badInput(`Format error in JSON body: Invalid json path: '${path}'`);
    } else if (rest.length > 0) throw badInput(`Format error in JSON body: Invalid json path: '${path}'`);
  }
  if (segments.length === 0) throw badInput(`Format error in JSON body: Invalid json path: '${path}'`);
  return segments;
}

/** Values at a path, arrays flattened (a condition on an array field matches any element). */
function valuesAt(payload: Payload, path: string): Json[] {
  let current: Json[] = [payload];
  for (const segment of parsePath(path)) {
    const next: Json[] = [];
    for (const value of current) {
      const objects = Array.isArray(value) ? value : [value];
      for (const object of objects) {
        if (object !== null && typeof object === "object" && !Array.isArray(object) && segment in object) {
          next.push(object[segment] as Json);
        }
      }
    }
    current = next;
  }
  return current.flatMap((value) => (Array.isArray(value) ? value : [value]));
}

/** Qdrant's cosine preprocessing, in float32: vectors already of length 1 (within 1e-6) or 0 are kept as they are. */
function normalise(vector: Float32Array): Float32Array {
  let squared = 0;
  for (const value of vector) squared = Math.fround(squared + Math.fround(value * value));
  if (squared < 1.1920929e-7 || Math.abs(squared - 1) <= 1e-6) return vector;
  const length = Math.fround(Math.sqrt(squared));
  return vector.map((value) => value / length);
}

function score(collection: Collection, query: Float32Array, stored: Float32Array): number {
  let sum = 0;
  switch (collection.distance) {
    case "Cosine":
    case "Dot":
      for (let i = 0; i < query.length; i++) sum += (query[i] as number) * (stored[i] as number);
      return sum;
    case "Euclid":
      for (let i = 0; i < query.length; i++) sum += ((query[i] as number) - (stored[i] as number)) ** 2;
      return Math.sqrt(sum);
    case "Manhattan":
      for (let i = 0; i < query.length; i++) sum += Math.abs((query[i] as number) - (stored[i] as number));
      return sum;
  }
}

export interface QdrantStandIn {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  readonly url: string;
  /** Requests served, in order, with their JSON bodies, when started with `recordRequests`. */
  readonly requests: { method: string; path: string; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

export async function startQdrantStandIn({ recordRequests = false }: { recordRequests?: boolean } = {}): Promise<QdrantStandIn> {
  const collections = new Map<string, Collection>();
  const requests: QdrantStandIn["requests"] = [];

  const collection = (name: string): Collection => {
    const found = collections.get(name);
    if (!found) throw new HttpError(404, `Not found: Collection \`${name}\` doesn't exist!`);
    return found;
  };

  const readVector = (target: Collection, raw: unknown): Float32Array => {
    if (!Array.isArray(raw) || raw.some((value) => typeof value !== "number")) {
      throw badInput("Format error in JSON body: data did not match any variant of untagged enum VectorStruct");
    }
    if (raw.length !== target.size) throw badInput(`Wrong input: Vector dimension error: expected dim: ${target.size}, got ${raw.length}`);
    const vector = Float32Array.from(raw as number[]);
    return target.distance === "Cosine" ? normalise(vector) : vector;
  };

  const textTokens = (target: Collection, key: string, text: string): string[] | undefined => {
    const index = target.indexes.get(key);
    if (index?.data_type !== "text") return undefined;
    const minimum = Number(index.params?.min_token_len ?? 0);
    return tokenize(text).filter((token) => token.length >= minimum);
  };

  const matches = (target: Collection, point: StoredPoint, condition: Record<string, unknown>): boolean => {
    if ("must" in condition || "should" in condition || "must_not" in condition) return passes(target, point, condition);
    if ("has_id" in condition) {
      const ids = (condition.has_id as unknown[]).map(parsePointId).map(keyOf);
      return ids.includes(keyOf(point.id));
    }
    if ("is_null" in condition) {
      const { key } = condition.is_null as { key: string };
      const values = valuesAt(point.payload, key);
      return values.length > 0 && values.every((value) => value === null);
    }
    if ("is_empty" in condition) {
      const { key } = condition.is_empty as { key: string };
      return valuesAt(point.payload, key).every((value) => value === null);
    }
    const key = condition.key as string;
    if (typeof key !== "string") throw badInput("Format error in JSON body: data did not match any variant of untagged enum Condition");
    const values = valuesAt(point.payload, key);
    if (condition.match !== undefined) {
      const match = condition.match as Record<string, unknown>;
      if ("value" in match) {
        const wanted = match.value;
        if (typeof wanted === "number" && !Number.isInteger(wanted)) {
          throw badInput("Format error in JSON body: data did not match any variant of untagged enum ValueVariants");
        }
        return values.some((value) => value === wanted);
      }
      if ("any" in match) return values.some((value) => (match.any as Json[]).includes(value));
      if ("except" in match) return values.some((value) => !(match.except as Json[]).includes(value));
      if ("text" in match || "text_any" in match) {
        const query = String(match.text ?? match.text_any);
        const every = "text" in match;
        return values.some((value) => {
          if (typeof value !== "string") return false;
          const queryTokens = textTokens(target, key, query);
          if (queryTokens === undefined) {
            // Without a full-text index Qdrant falls back to substring matching.
            return every ? value.includes(query) : query.split(/\s+/).some((word) => word !== "" && value.includes(word));
          }
          const fieldTokens = new Set(textTokens(target, key, value));
          if (queryTokens.length === 0) return false;
          return every ? queryTokens.every((token) => fieldTokens.has(token)) : queryTokens.some((token) => fieldTokens.has(token));
        });
      }
      throw badInput("Format error in JSON body: data did not match any variant of untagged enum Match");
    }
    if (condition.range !== undefined) {
      const range = condition.range as { gt?: number; gte?: number; lt?: number; lte?: number };
      return values.some(
        (value) =>
          typeof value === "number" &&
          (range.gt === undefined || value > range.gt) &&
          (range.gte === undefined || value >= range.gte) &&
          (range.lt === undefined || value < range.lt) &&
          (range.lte === undefined || value <= range.lte),
      );
    }
    throw badInput("Format error in JSON body: data did not match any variant of untagged enum Condition");
  };

  const passes = (target: Collection, point: StoredPoint, filter: unknown): boolean => {
    if (filter == null) return true;
    const { must, should, must_not } = filter as Record<string, unknown>;
    const list = (value: unknown) => (value == null ? [] : Array.isArray(value) ? value : [value]) as Record<string, unknown>[];
    if (!list(must).every((condition) => matches(target, point, condition))) return false;
    const shoulds = list(should);
    if (shoulds.length > 0 && !shoulds.some((condition) => matches(target, point, condition))) return false;
    return !list(must_not).some((condition) => matches(target, point, condition));
  };

  const render = (point: StoredPoint, withPayload: unknown, withVector: unknown) => {
    const out: Record<string, unknown> = { id: point.id };
    if (withPayload === true) out.payload = point.payload;
    else if (Array.isArray(withPayload))
      out.payload = Object.fromEntries(withPayload.filter((key) => key in point.payload).map((key) => [key, point.payload[key]]));
    if (withVector === true) out.vector = Array.from(point.vector);
    return out;
  };

  const indexKeyword = (target: Collection, field: string, point: StoredPoint, add: boolean) => {
    const index = target.keywords.get(field);
    if (!index) return;
    for (const value of valuesAt(point.payload, field)) {
      if (typeof value !== "string") continue;
      let keys = index.get(value);
      if (!keys) {
        keys = new Set();
        index.set(value, keys);
      }
      if (add) keys.add(keyOf(point.id));
      else keys.delete(keyOf(point.id));
    }
  };

  const filtered = (target: Collection, filter: unknown) => {
    // Like Qdrant, narrow down through a keyword payload index when a `must` condition allows it.
    let candidates: Iterable<StoredPoint> = target.points.values();
    for (const condition of ((filter as { must?: unknown } | null)?.must ?? []) as Record<string, unknown>[]) {
      const index = typeof condition.key === "string" ? target.keywords.get(condition.key) : undefined;
      const value = (condition.match as { value?: unknown } | undefined)?.value;
      if (index && typeof value === "string") {
        candidates = [...(index.get(value) ?? [])].map((key) => target.points.get(key) as StoredPoint);
        break;
      }
    }
    return [...candidates].filter((point) => passes(target, point, filter)).sort((a, b) => compareIds(a.id, b.id));
  };

  const removePoint = (target: Collection, key: string) => {
    const point = target.points.get(key);
    if (!point) return;
    for (const field of target.keywords.keys()) indexKeyword(target, field, point, false);
    target.points.delete(key);
  };

  const upsert = (target: Collection, points: unknown) => {
    if (!Array.isArray(points))
      throw badInput("Format error in JSON body: data did not match any variant of untagged enum PointInsertOperations");
    // Validate everything first: a rejected request changes nothing.
    const parsed = points.map((raw: { id?: unknown; vector?: unknown; payload?: unknown }) => ({
      id: parsePointId(raw.id),
      vector: readVector(target, raw.vector),
      payload: (raw.payload ?? {}) as Payload,
    }));
    target.version++;
    for (const point of parsed) {
      removePoint(target, keyOf(point.id));
      const stored = { ...point, version: target.version };
      target.points.set(keyOf(point.id), stored);
      for (const field of target.keywords.keys()) indexKeyword(target, field, stored, true);
    }
  };

  const remove = (target: Collection, selector: { points?: unknown[]; filter?: unknown }) => {
    target.version++;
    if (selector.points) for (const id of selector.points.map(parsePointId)) removePoint(target, keyOf(id));
    else if (selector.filter) for (const point of filtered(target, selector.filter)) removePoint(target, keyOf(point.id));
    else throw badInput("Format error in JSON body: data did not match any variant of untagged enum PointsSelector");
  };

  const updateResult = (target: Collection) => ({ operation_id: target.version, status: "completed" });

  const routes: [string, RegExp, (match: string[], body: Record<string, unknown>) => unknown][] = [
    ["GET", /^\/$/, () => ({ title: "qdrant REST stand-in (a test double, not Qdrant)", version: "1.19.0" })],
    ["GET", /^\/collections\/([^/]+)\/exists$/, ([name]) => ({ exists: collections.has(name as string) })],
    [
      "PUT",
      /^\/collections\/([^/]+)$/,
      ([name], body) => {
        if (collections.has(name as string)) throw new HttpError(409, `Wrong input: Collection \`${name}\` already exists!`);
        const vectors = body.vectors as { size?: unknown; distance?: unknown } | undefined;
        if (!vectors || typeof vectors.size !== "number" || !Number.isInteger(vectors.size) || vectors.size < 1) {
          throw badInput("Format error in JSON body: vectors: a single unnamed vector { size, distance } is all this stand-in supports");
        }
        if (!["Cosine", "Dot", "Euclid", "Manhattan"].includes(String(vectors.distance))) {
          throw badInput(
            `Format error in JSON body: unknown variant \`${vectors.distance}\`, expected one of \`Cosine\`, \`Euclid\`, \`Dot\`, \`Manhattan\``,
          );
        }
        collections.set(name as string, {
          size: vectors.size,
          distance: vectors.distance as Collection["distance"],
          metadata: (body.metadata ?? {}) as Payload,
          indexes: new Map(),
          points: new Map(),
          keywords: new Map(),
          version: 0,
        });
        return true;
      },
    ],
    [
      "GET",
      /^\/collections\/([^/]+)$/,
      ([name]) => {
        const target = collection(name as string);
        return {
          status: "green",
          optimizer_status: "ok",
          points_count: target.points.size,
          indexed_vectors_count: 0,
          segments_count: 1,
          config: {
            params: { vectors: { size: target.size, distance: target.distance }, shard_number: 1, replication_factor: 1 },
            metadata: target.metadata,
          },
          payload_schema: Object.fromEntries(
            [...target.indexes].map(([field, index]) => [
              field,
              { ...index, points: [...target.points.values()].filter((point) => valuesAt(point.payload, field).length > 0).length },
            ]),
          ),
        };
      },
    ],
    [
      "PATCH",
      /^\/collections\/([^/]+)$/,
      ([name], body) => {
        const target = collection(name as string);
        for (const [key, value] of Object.entries((body.metadata ?? {}) as Payload)) {
          if (value === null) delete target.metadata[key];
          else target.metadata[key] = value;
        }
        return true;
      },
    ],
    ["DELETE", /^\/collections\/([^/]+)$/, ([name]) => collections.delete(name as string)],
    [
      "PUT",
      /^\/collections\/([^/]+)\/index$/,
      ([name], body) => {
        const target = collection(name as string);
        const field = body.field_name as string;
        parsePath(field);
        const schema = body.field_schema as string | { type: string } | undefined;
        const type = typeof schema === "string" ? schema : schema?.type;
        if (!type || !["keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid"].includes(type)) {
          throw badInput(`Format error in JSON body: unknown payload schema ${JSON.stringify(schema)}`);
        }
        const { type: _type, ...params } = typeof schema === "object" ? (schema as Record<string, Json>) : { type };
        target.indexes.set(field, { data_type: type, ...(Object.keys(params).length ? { params: { type, ...params } } : {}) });
        if (type === "keyword" && !target.keywords.has(field)) {
          target.keywords.set(field, new Map());
          for (const point of target.points.values()) indexKeyword(target, field, point, true);
        }
        target.version++;
        return updateResult(target);
      },
    ],
    [
      "PUT",
      /^\/collections\/([^/]+)\/points$/,
      ([name], body) => {
        const target = collection(name as string);
        upsert(target, body.points);
        return updateResult(target);
      },
    ],
    [
      "POST",
      /^\/collections\/([^/]+)\/points\/delete$/,
      ([name], body) => {
        const target = collection(name as string);
        remove(target, body as { points?: unknown[]; filter?: unknown });
        return updateResult(target);
      },
    ],
    [
      "POST",
      /^\/collections\/([^/]+)\/points\/batch$/,
      ([name], body) => {
        const target = collection(name as string);
        const operations = body.operations as Record<string, Record<string, unknown>>[];
        if (!Array.isArray(operations)) throw badInput("Format error in JSON body: missing field `operations`");
        return operations.map((operation) => {
          if (operation.upsert) upsert(target, operation.upsert.points);
          else if (operation.delete) remove(target, operation.delete as { points?: unknown[]; filter?: unknown });
          else throw badInput(`Format error in JSON body: operation ${Object.keys(operation)[0]} is not supported by this stand-in`);
          return updateResult(target);
        });
      },
    ],
    [
      "POST",
      /^\/collections\/([^/]+)\/points$/,
      ([name], body) => {
        const target = collection(name as string);
        const ids = (body.ids as unknown[]).map(parsePointId);
        return ids
          .map((id) => target.points.get(keyOf(id)))
          .filter((point): point is StoredPoint => point !== undefined)
          .map((point) => render(point, body.with_payload ?? true, body.with_vector ?? false));
      },
    ],
    [
      "POST",
      /^\/collections\/([^/]+)\/points\/scroll$/,
      ([name], body) => {
        const target = collection(name as string);
        const limit = (body.limit as number | undefined) ?? 10;
        const withPayload = body.with_payload ?? true;
        const withVector = body.with_vector ?? false;
        let points = filtered(target, body.filter);
        const orderBy = body.order_by as string | { key: string; direction?: "asc" | "desc"; start_from?: number } | undefined;
        if (orderBy !== undefined) {
          const { key, direction = "asc", start_from } = typeof orderBy === "string" ? { key: orderBy } : orderBy;
          const index = target.indexes.get(key);
          const rangeIndex =
            index && (["float", "datetime"].includes(index.data_type) || (index.data_type === "integer" && index.params?.range !== false));
          if (!rangeIndex) {
            throw badInput(`Bad request: No range index for \`order_by\` key: \`${key}\`. Please create one to use \`order_by\`.`);
          }
          if (body.offset != null) throw badInput("Bad request: Cannot use an `offset` when using `order_by`");
          const orderValue = (point: StoredPoint) =>
            valuesAt(point.payload, key).find((value): value is number => typeof value === "number");
          points = points
            .filter((point) => orderValue(point) !== undefined)
            .filter(
              (point) =>
                start_from === undefined ||
                (direction === "asc" ? (orderValue(point) as number) >= start_from : (orderValue(point) as number) <= start_from),
            )
            .sort((a, b) => (direction === "asc" ? 1 : -1) * ((orderValue(a) as number) - (orderValue(b) as number)));
          return {
            points: points.slice(0, limit).map((point) => ({ ...render(point, withPayload, withVector), order_value: orderValue(point) })),
            next_page_offset: null,
          };
        }
        if (body.offset != null) {
          const offset = parsePointId(body.offset);
          points = points.filter((point) => compareIds(point.id, offset) >= 0);
        }
        const next = points[limit];
        return {
          points: points.slice(0, limit).map((point) => render(point, withPayload, withVector)),
          next_page_offset: next ? next.id : null,
        };
      },
    ],
    [
      "POST",
      /^\/collections\/([^/]+)\/points\/count$/,
      ([name], body) => ({ count: filtered(collection(name as string), body.filter).length }),
    ],
    [
      "POST",
      /^\/collections\/([^/]+)\/points\/query$/,
      ([name], body) => {
        const target = collection(name as string);
        if (body.prefetch != null) throw badInput("Bad request: prefetch is not supported by this stand-in");
        const limit = (body.limit as number | undefined) ?? 10;
        const offset = (body.offset as number | undefined) ?? 0;
        const candidates = filtered(target, body.filter);
        const render2 = (point: StoredPoint, score: number) => ({
          ...render(point, body.with_payload ?? false, body.with_vector ?? false),
          version: point.version,
          score,
        });
        if (body.query == null) return { points: candidates.slice(offset, offset + limit).map((point) => render2(point, 0)) };
        const raw = Array.isArray(body.query) ? body.query : (body.query as { nearest?: unknown }).nearest;
        if (!Array.isArray(raw)) throw badInput("Bad request: only nearest-vector queries are supported by this stand-in");
        if (raw.length !== target.size)
          throw badInput(`Wrong input: Vector dimension error: expected dim: ${target.size}, got ${raw.length}`);
        const query = target.distance === "Cosine" ? normalise(Float32Array.from(raw as number[])) : Float32Array.from(raw as number[]);
        const higherIsBetter = target.distance === "Cosine" || target.distance === "Dot";
        const threshold = body.score_threshold as number | undefined;
        const scored = candidates
          .map((point) => ({ point, score: Math.fround(score(target, query, point.vector)) }))
          .filter((hit) => threshold === undefined || (higherIsBetter ? hit.score >= threshold : hit.score <= threshold))
          .sort((a, b) => (higherIsBetter ? b.score - a.score : a.score - b.score) || compareIds(a.point.id, b.point.id));
        return { points: scored.slice(offset, offset + limit).map(({ point, score: value }) => render2(point, value)) };
      },
    ],
  ];

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const started = performance.now();
    const send = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify({ ...(body as object), time: (performance.now() - started) / 1000 }));
    };
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString("utf8");
      let body: Record<string, unknown> = {};
      if (text) {
        try {
          body = JSON.parse(text);
        } catch (error) {
          throw badInput(`Format error in JSON body: ${(error as Error).message}`);
        }
      }
      const path = new URL(request.url ?? "/", "http://stand-in").pathname;
      for (const [method, pattern, route] of routes) {
        const match = pattern.exec(path);
        if (method !== request.method || !match) continue;
        if (recordRequests) requests.push({ method, path, body });
        const result = route(match.slice(1).map(decodeURIComponent), body);
        send(200, method === "GET" && pattern.source === "^\\/$" ? (result as object) : { result, status: "ok" });
        return;
      }
      throw new HttpError(404, `Not found: ${request.method} ${path} is not part of this stand-in`);
    } catch (error) {
      const status = error instanceof HttpError ? error.status : 500;
      send(status, { status: { error: (error as Error).message } });
    }
  };

  const server: Server = createServer((request, response) => void handle(request, response));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
