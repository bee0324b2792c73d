import { QdrantClient } from "@qdrant/js-client-rest";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type QdrantStandIn, startQdrantStandIn } from "./qdrant-stand-in.js";

// The Qdrant REST stand-in is test infrastructure; these tests pin the Qdrant semantics it must
// reproduce, driven by the real client, so store tests against it mean something.
let standIn: QdrantStandIn;
let client: QdrantClient;
beforeAll(async () => {
  standIn = await startQdrantStandIn();
  client = new QdrantClient({ url: standIn.url });
});
afterAll(() => standIn.close());

const failure = async (promise: Promise<unknown>) => {
  const error = (await promise.then(
    () => undefined,
    (e: unknown) => e,
  )) as { status?: number; data?: { status?: { error?: string } } } | undefined;
  return { status: error?.status, message: error?.data?.status?.error };
};

test("the stand-in: point ids are unsigned integers or UUIDs (any text form, answered in canonical form)", async () => {
  await client.createCollection("ids", { vectors: { size: 2, distance: "Cosine" } });
  await client.upsert("ids", {
    points: [
      { id: 7, vector: [1, 0] },
      { id: "A1B2C3D4E5F60718293A4B5C6D7E8F90", vector: [0, 1] },
    ],
  });
  const { points } = await client.scroll("ids", { limit: 10 });
  expect(points.map((point) => point.id)).toEqual([7, "a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90"]);
  for (const id of ["memory-1", -1, 1.5]) {
    const { status, message } = await failure(client.upsert("ids", { points: [{ id: id as number, vector: [1, 0] }] }));
    expect(status).toBe(400);
    expect(message).toContain("is not a valid point ID, valid values are either an unsigned integer or a UUID");
  }
});

test("the stand-in: vector dimension errors, 404 for a missing collection, 409 for an existing one", async () => {
  await client.createCollection("dims", { vectors: { size: 3, distance: "Cosine" } });
  expect(await failure(client.upsert("dims", { points: [{ id: 1, vector: [1, 2] }] }))).toEqual({
    status: 400,
    message: "Wrong input: Vector dimension error: expected dim: 3, got 2",
  });
  expect((await failure(client.query("dims", { query: [1, 2, 3, 4] }))).status).toBe(400);
  expect(await failure(client.getCollection("nowhere"))).toEqual({
    status: 404,
    message: "Not found: Collection `nowhere` doesn't exist!",
  });
  expect((await failure(client.createCollection("dims", { vectors: { size: 3, distance: "Cosine" } }))).status).toBe(409);
});

test("the stand-in: cosine vectors are normalised on insert unless already of length 1, and scores are cosine", async () => {
  await client.createCollection("cosine", { vectors: { size: 2, distance: "Cosine" } });
  await client.upsert("cosine", {
    points: [
      { id: 1, vector: [3, 4] },
      { id: 2, vector: [0, 1] },
    ],
  });
  const [long, unit] = await client.retrieve("cosine", { ids: [1, 2], with_vector: true });
  expect(long?.vector).toEqual([Math.fround(0.6), Math.fround(0.8)]);
  expect(unit?.vector).toEqual([0, 1]);
  const { points } = await client.query("cosine", { query: [30, 40], with_payload: false });
  expect(points.map((point) => [point.id, Number(point.score.toFixed(4))])).toEqual([
    [1, 1],
    [2, 0.8],
  ]);
});

test("the stand-in: must / should / must_not filters with match, range, is_null, has_id and quoted keys", async () => {
  await client.createCollection("filters", { vectors: { size: 2, distance: "Cosine" } });
  await client.upsert("filters", {
    points: [
      { id: 1, vector: [1, 0], payload: { user: "alice", n: 1, tags: ["a", "b"], meta: { "dotted.key": true } } },
      { id: 2, vector: [1, 0], payload: { user: "bob", n: 2.5, tags: ["c"], meta: { "dotted.key": false } } },
      { id: 3, vector: [1, 0], payload: { user: "alice", n: null } },
    ],
  });
  const ids = async (filter: Record<string, unknown>) => (await client.scroll("filters", { filter, limit: 10 })).points.map((p) => p.id);
  expect(await ids({ must: [{ key: "user", match: { value: "alice" } }] })).toEqual([1, 3]);
  expect(await ids({ must: [{ key: "tags", match: { value: "b" } }] })).toEqual([1]);
  expect(await ids({ must: [{ key: "n", range: { gte: 2, lte: 3 } }] })).toEqual([2]);
  expect(await ids({ must: [{ is_null: { key: "n" } }] })).toEqual([3]);
  expect(await ids({ must: [{ key: 'meta."dotted.key"', match: { value: true } }] })).toEqual([1]);
  expect(await ids({ should: [{ has_id: [2] }, { key: "n", match: { value: 1 } }] })).toEqual([1, 2]);
  expect(await ids({ must_not: [{ key: "user", match: { value: "alice" } }] })).toEqual([2]);
  expect(await client.count("filters", { filter: { must: [{ key: "user", match: { any: ["alice", "bob"] } }] } })).toEqual({ count: 3 });
});

test("the stand-in: scroll pages by point id with an inclusive offset; order_by needs a range index", async () => {
  await client.createCollection("paging", { vectors: { size: 2, distance: "Cosine" } });
  await client.upsert("paging", {
    points: [5, 3, 9, 1, 7].map((id) => ({ id, vector: [1, 0], payload: { at: 10 - id } })),
  });
  const first = await client.scroll("paging", { limit: 2 });
  expect(first.points.map((p) => p.id)).toEqual([1, 3]);
  expect(first.next_page_offset).toBe(5);
  const second = await client.scroll("paging", { limit: 10, offset: first.next_page_offset as number });
  expect(second.points.map((p) => p.id)).toEqual([5, 7, 9]);
  expect(second.next_page_offset).toBeNull();
  const ordered = client.scroll("paging", { limit: 10, order_by: { key: "at" } });
  expect((await failure(ordered)).message).toContain("No range index for `order_by` key");
  await client.createPayloadIndex("paging", {
    field_name: "at",
    field_schema: { type: "integer", range: true, lookup: false },
    wait: true,
  });
  expect((await client.scroll("paging", { limit: 10, order_by: { key: "at" } })).points.map((p) => p.id)).toEqual([9, 7, 5, 3, 1]);
});

test("the stand-in: match text uses the full-text index's tokens when there is one, substrings otherwise", async () => {
  await client.createCollection("text", { vectors: { size: 2, distance: "Cosine" } });
  await client.upsert("text", {
    points: [
      { id: 1, vector: [1, 0], payload: { body: "Postgres is my database", raw: "Postgres is my database" } },
      { id: 2, vector: [1, 0], payload: { body: "databases everywhere", raw: "databases everywhere" } },
    ],
  });
  const ids = async (filter: Record<string, unknown>) => (await client.scroll("text", { filter, limit: 10 })).points.map((p) => p.id);
  expect(await ids({ must: [{ key: "raw", match: { text: "database" } }] })).toEqual([1, 2]);
  await client.createPayloadIndex("text", {
    field_name: "body",
    field_schema: { type: "text", tokenizer: "word", lowercase: true },
    wait: true,
  });
  expect(await ids({ must: [{ key: "body", match: { text: "database" } }] })).toEqual([1]);
  expect(await ids({ must: [{ key: "body", match: { text: "postgres database" } }] })).toEqual([1]);
  expect(await ids({ must: [{ key: "body", match: { text_any: "nothing everywhere" } }] })).toEqual([2]);
});
