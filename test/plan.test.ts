import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { deserialisePlan, type Plan, serialisePlan } from "../src/plan.js";
import type { MemoryRecord } from "../src/stores/vector-store.js";

/** The bytes of a vector: equal bytes are equal floats, NaN payloads and -0 included. */
const bytes = (vector: Float32Array | undefined) => [...new Uint8Array((vector as Float32Array).buffer)];

const fromBits = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);

// 1/3, -0, the smallest subnormal, the largest finite float, +Infinity, a NaN with a payload.
const awkward = () => fromBits([0x3eaaaaab, 0x80000000, 0x00000001, 0x7f7fffff, 0x7f800000, 0x7fc00001]);

function record(id: string, text: string, vector?: Float32Array): MemoryRecord {
  const at = "2025-01-02T03:04:05.678Z";
  const base: MemoryRecord = {
    id,
    text,
    hash: `hash-${id}`,
    userId: "alice",
    runId: "r-1",
    metadata: { tag: "x" },
    createdAt: at,
    updatedAt: at,
  };
  return vector ? { ...base, vector } : base;
}

/** A plan with one of each change: an ADD, an UPDATE (previous record kept for the revert), a DELETE. */
function samplePlan(): Plan {
  const added = record("m-new", "keeps bees", awkward());
  const previous = record("m-old", "keeps wasps", fromBits([0x3f800000, 0xc0000000]));
  const updated = { ...record("m-old", "keeps bees and wasps", fromBits([0x40400000, 0x00000000])), updatedAt: "2025-02-01T00:00:00.000Z" };
  const removed = record("m-gone", "hates honey", fromBits([0xbf800000, 0x3f000000]));
  const at = "2025-02-01T00:00:00.000Z";
  return {
    results: [
      { id: "m-new", memory: "keeps bees", event: "ADD" },
      { id: "m-old", memory: "keeps bees and wasps", event: "UPDATE", previousMemory: "keeps wasps" },
      { id: "m-gone", memory: "hates honey", event: "DELETE", previousMemory: "hates honey" },
    ],
    upsert: [added, updated],
    delete: ["m-gone"],
    expect: [
      { id: "m-new", version: null },
      { id: "m-old", version: { hash: previous.hash, updatedAt: previous.updatedAt } },
      { id: "m-gone", version: { hash: removed.hash, updatedAt: removed.updatedAt } },
    ],
    history: [
      {
        id: "h-1",
        memoryId: "m-new",
        event: "ADD",
        previousValue: null,
        newValue: "keeps bees",
        userId: "alice",
        runId: "r-1",
        createdAt: at,
      },
      {
        id: "h-2",
        memoryId: "m-old",
        event: "UPDATE",
        previousValue: "keeps wasps",
        newValue: "keeps bees and wasps",
        userId: "alice",
        createdAt: at,
      },
      { id: "h-3", memoryId: "m-gone", event: "DELETE", previousValue: "hates honey", newValue: null, userId: "alice", createdAt: at },
    ],
    revert: {
      upsert: [previous, removed],
      delete: ["m-new"],
      expect: [
        { id: "m-new", version: { hash: added.hash, updatedAt: added.updatedAt } },
        { id: "m-old", version: { hash: updated.hash, updatedAt: updated.updatedAt } },
        { id: "m-gone", version: null },
      ],
    },
    usage: { llmCalls: 1, inputTokens: 120, outputTokens: 30, embeddingCalls: 1 },
    warnings: ["One decision named an unknown id and was ignored."],
  };
}

const withoutVectors = (records: MemoryRecord[]) => records.map(({ vector: _vector, ...rest }) => rest);

describe("saved plans", () => {
  test("serialisePlan → deserialisePlan gives the same plan: every field, expectations and revert included", () => {
    const plan = samplePlan();
    const read = deserialisePlan(serialisePlan(plan));
    expect(withoutVectors(read.upsert)).toEqual(withoutVectors(plan.upsert));
    expect(withoutVectors(read.revert.upsert)).toEqual(withoutVectors(plan.revert.upsert));
    const { upsert: _u, revert: readRevert, ...readRest } = read;
    const { upsert: _p, revert: planRevert, ...planRest } = plan;
    expect(readRest).toEqual(planRest);
    expect({ ...readRevert, upsert: [] }).toEqual({ ...planRevert, upsert: [] });
  });

  test("vectors come back bit for bit: -0, subnormals, the largest float, Infinity and a NaN payload survive", () => {
    const plan = samplePlan();
    const read = deserialisePlan(serialisePlan(plan));
    for (const [i, original] of plan.upsert.entries()) {
      expect(read.upsert[i]?.vector).toBeInstanceOf(Float32Array);
      expect(bytes(read.upsert[i]?.vector)).toEqual(bytes(original.vector));
    }
    for (const [i, original] of plan.revert.upsert.entries()) expect(bytes(read.revert.upsert[i]?.vector)).toEqual(bytes(original.vector));
    expect(Object.is(read.upsert[0]?.vector?.[1], -0)).toBe(true);
    expect(new Uint32Array((read.upsert[0] as MemoryRecord & { vector: Float32Array }).vector.buffer)[5]).toBe(0x7fc00001);
  });

  test("a record saved without a vector is read back without one", () => {
    const plan = { ...samplePlan(), upsert: [record("m-plain", "no vector")] };
    const [read] = deserialisePlan(serialisePlan(plan)).upsert;
    expect(read).toEqual(record("m-plain", "no vector"));
    expect(Object.hasOwn(read as object, "vector")).toBe(false);
  });

  test("fuzz: any 32-bit patterns as a vector survive a saved plan unchanged", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 64 }), (bits) => {
        const vector = fromBits(bits);
        const plan = { ...samplePlan(), upsert: [record("m", "t", vector)] };
        expect(bytes(deserialisePlan(serialisePlan(plan)).upsert[0]?.vector)).toEqual(bytes(vector));
      }),
      { numRuns: 300 },
    );
  });

  test("a version-1 plan (saved before plans carried expectations) is read with none, vectors decoded", () => {
    // As version 1 wrote it: no `expect`, in the plan or in its revert. The vector [1, -2] is the
    // little-endian bytes 00 00 80 3f 00 00 00 c0, base64 "AACAPwAAAMA=".
    const text = JSON.stringify({
      version: 1,
      results: [{ id: "m-1", memory: "keeps bees", event: "ADD" }],
      upsert: [{ ...record("m-1", "keeps bees"), vector: "AACAPwAAAMA=" }],
      delete: [],
      history: [
        {
          id: "h-1",
          memoryId: "m-1",
          event: "ADD",
          previousValue: null,
          newValue: "keeps bees",
          userId: "alice",
          createdAt: "2024-06-01T00:00:00.000Z",
        },
      ],
      revert: { upsert: [], delete: ["m-1"] },
      usage: { llmCalls: 0, inputTokens: 0, outputTokens: 0, embeddingCalls: 1 },
      warnings: [],
    });
    const plan = deserialisePlan(text);
    expect(plan.expect).toEqual([]);
    expect(plan.revert).toEqual({ upsert: [], delete: ["m-1"], expect: [] });
    expect(Array.from(plan.upsert[0]?.vector ?? [])).toEqual([1, -2]);
    expect(withoutVectors(plan.upsert)).toEqual([record("m-1", "keeps bees")]);
    expect(plan.history.map((entry) => entry.id)).toEqual(["h-1"]);
  });

  test("a plan of an unknown version is refused, naming the version", () => {
    const text = serialisePlan(samplePlan()).replace('"version":2', '"version":3');
    expect(() => deserialisePlan(text)).toThrow(/version 3/);
  });
});
