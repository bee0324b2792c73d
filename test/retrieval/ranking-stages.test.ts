import { describe, expect, it } from "vitest";
import type { MemoryRecord } from "../../src/index.js";
import { estimateTokens, withinTokenBudget } from "../../src/retrieval/budget.js";
import { type CutoffModel, GATE_FEATURES, keptByCutoff, keptBySimilarity, SMALL_SCOPE_MIN_COSINE } from "../../src/retrieval/cutoff.js";
import { FEATURES, type RankQuery, scoreFeatures } from "../../src/retrieval/features.js";
import type { Nlp } from "../../src/retrieval/nlp.js";
import { checkModel, defaultRanker, logitOf, sigmoid } from "../../src/retrieval/ranker.js";
import { buildScopeIndex, indexMemory } from "../../src/retrieval/scope-index.js";
import { withoutSpeakerNames } from "../../src/retrieval/speaker-names.js";

// An NLP stand-in with known answers: capitalised words are proper nouns, "day N" names day N.
const nlp: Nlp = {
  entities(text) {
    const words = text.match(/[A-Za-z]+/g) ?? [];
    const properNouns = words.filter((w) => /^[A-Z]/.test(w)).map((w) => w.toLowerCase());
    return { nouns: [...properNouns, ...words.filter((w) => w === "guitar")], properNouns };
  },
  days: (text) => [...text.matchAll(/day (\d+)/g)].map((m) => Number(m[1])),
};

const DAY = 86_400_000;
const record = (id: string, text: string, at: number, vector: number[], name?: string): MemoryRecord => ({
  id,
  text: name ? `${name}: ${text}` : text,
  hash: id,
  vector: Float32Array.from(vector),
  userId: "u",
  metadata: name ? { engram: { role: "user", name, messages: 1 } } : {},
  createdAt: new Date(at).toISOString(),
  updatedAt: new Date(at).toISOString(),
});

// Two sessions: a, b, c within minutes on day 100; d a day later.
const memories = [
  record("a", "I bought a guitar", 100 * DAY, [1, 0], "Ann"),
  record("b", "Yes, in March", 100 * DAY + 60_000, [0, 1], "Bob"),
  record("c", "Nice", 100 * DAY + 120_000, [0.6, 0.8], "Ann"),
  record("d", "Paris was sunny", 101 * DAY, [0.8, 0.6]),
].map((r) => indexMemory(r, nlp));
const index = buildScopeIndex(memories);
const query = (over: Partial<RankQuery> = {}): RankQuery => ({
  vector: Float32Array.from([1, 0]),
  terms: ["guitar"],
  words: new Set(["guitar"]),
  nouns: ["guitar"],
  properNouns: [],
  days: [],
  ...over,
});
const f = (row: Float64Array | undefined, name: (typeof FEATURES)[number]) => row?.[FEATURES.indexOf(name)];

describe("scope index", () => {
  it("splits sessions by the 30-minute gap and links neighbours within a session only", () => {
    expect([...index.session]).toEqual([0, 0, 0, 1]);
    expect([...index.previous]).toEqual([-1, 0, 1, -1]);
    expect([...index.next]).toEqual([1, 2, -1, -1]);
    expect(index.speakers.get("ann")).toBe("Ann");
    expect(memories[3]?.days).toEqual([101]);
  });

  it("counts a memory's window as itself plus its neighbours in the session", () => {
    expect(index.windowLength[1]).toBe(memories[0]!.length + memories[1]!.length + memories[2]!.length);
    expect(index.windowLength[3]).toBe(memories[3]!.length);
  });
});

describe("features", () => {
  it("gives known values for similarity, keywords, neighbours and sessions", () => {
    const { pool, rows } = scoreFeatures(index, query());
    expect(pool).toEqual([0, 3, 2, 1]);
    const [a, d, c, b] = rows;
    expect(f(a, "cos")).toBeCloseTo(1);
    expect(f(d, "cosRel")).toBeCloseTo(-0.2);
    expect(f(a, "bm")).toBe(1);
    expect(f(b, "bm")).toBe(0);
    // b's window holds a's "guitar": 1/1 of the best window score is shared by a, b (and c).
    expect(f(b, "bmW")).toBeGreaterThan(0);
    expect(f(d, "bmW")).toBe(0);
    // base(a) = 0.7 · 1 + 0.3 · 1 = 1 is the best; b's neighbour a gives nb = 1, d has none.
    expect(f(b, "nb")).toBeCloseTo(1);
    expect(f(d, "nb")).toBe(0);
    expect(f(c, "sess")).toBeCloseTo(1);
    expect(f(d, "sess")).toBeCloseTo(0.56);
    expect(f(a, "noun")).toBe(1);
    expect(f(c, "noun")).toBe(0);
    expect(f(a, "rrCos")).toBe(1);
    expect(f(a, "rrBm")).toBe(1);
    expect(f(d, "rrBm")).toBe(0);
    expect(f(a, "qTerms")).toBe(1);
    expect(f(a, "qMaxCos")).toBeCloseTo(1);
  });

  it("reads the speaker a query names: spk for that speaker's memories, spkOther for the rest", () => {
    const { pool, rows } = scoreFeatures(index, query({ words: new Set(["bob", "guitar"]) }));
    const row = (id: string) => rows[pool.findIndex((i) => memories[i]?.record.id === id)];
    expect([f(row("b"), "spk"), f(row("b"), "spkOther")]).toEqual([1, 0]);
    expect([f(row("a"), "spk"), f(row("a"), "spkOther")]).toEqual([0, 1]);
    // A memory without a speaker (an extracted one) is not the named speaker's.
    expect([f(row("d"), "spk"), f(row("d"), "spkOther")]).toEqual([0, 1]);
  });

  it("matches a day the query names against the day a memory was said: 1 the same day, 0.5 a day off", () => {
    const { pool, rows } = scoreFeatures(index, query({ days: [101] }));
    const row = (id: string) => rows[pool.findIndex((i) => memories[i]?.record.id === id)];
    expect(f(row("d"), "date")).toBe(1);
    expect(f(row("a"), "date")).toBe(0.5);
  });

  it("compares the query without the speakers' names as cosTopic: its own vector when given, else cos", () => {
    const { pool, rows } = scoreFeatures(index, query({ topicVector: Float32Array.from([0, 1]) }));
    const row = (id: string) => rows[pool.findIndex((i) => memories[i]?.record.id === id)];
    expect(f(row("b"), "cosTopic")).toBeCloseTo(1);
    expect(f(row("a"), "cosTopic")).toBeCloseTo(0);
    expect(f(row("c"), "cosTopic")).toBeCloseTo(0.8);
    // cos still reads the query's own vector.
    expect(f(row("a"), "cos")).toBeCloseTo(1);
    const plain = scoreFeatures(index, query());
    plain.rows.forEach((r) => {
      expect(f(r, "cosTopic")).toBe(f(r, "cos"));
    });
  });

  it("keeps only eligible memories in the pool, but their neighbours still count", () => {
    const { pool, rows } = scoreFeatures(index, query(), { eligible: (m) => m.record.id === "b" });
    expect(pool).toEqual([1]);
    expect(f(rows[0], "nb")).toBeCloseTo(1);
  });

  it("degrades gracefully for a memory with no neighbours, speaker or dates", () => {
    const lone = buildScopeIndex([indexMemory(record("x", "guitar lessons", 0, [1, 0]), nlp)]);
    const { rows } = scoreFeatures(lone, query());
    expect(f(rows[0], "nb")).toBe(0);
    expect(f(rows[0], "nbCos")).toBe(0);
    expect(f(rows[0], "spk")).toBe(0);
    expect(rows[0]?.every(Number.isFinite)).toBe(true);
  });
});

describe("the query without the speakers' names", () => {
  const speakers = new Map([
    ["vanessa", "Vanessa"],
    ["fahim", "Fahim Khan"],
    ["khan", "Fahim Khan"],
  ]);

  it("leaves out every word of a speaker's name, possessives included", () => {
    expect(withoutSpeakerNames("What pets does Vanessa have?", speakers)).toBe("What pets does have?");
    expect(withoutSpeakerNames("What are the names of Vanessa's pets?", speakers)).toBe("What are the names of pets?");
    expect(withoutSpeakerNames("When did Fahim Khan go for a run?", speakers)).toBe("When did go for a run?");
    expect(withoutSpeakerNames("Does VANESSA like Fahim’s cooking?", speakers)).toBe("Does like cooking?");
  });

  it("is undefined when the query names no speaker, or holds nothing else", () => {
    expect(withoutSpeakerNames("What pets does Vanessa's vanessas-style friend have?", new Map())).toBeUndefined();
    expect(withoutSpeakerNames("What pets does Paola have?", speakers)).toBeUndefined();
    expect(withoutSpeakerNames("Vanessa?", speakers)).toBeUndefined();
  });

  it("matches names by stem, as the speaker signals do, not by substring", () => {
    expect(withoutSpeakerNames("Is Vanessa at the Vanessabar?", speakers)).toBe("Is at the Vanessabar?");
  });
});

describe("learned score", () => {
  it("is b + Σ w · (x − mean) / std", () => {
    const model = { features: ["x", "y"], mean: [1, 0], std: [2, 1], w: [4, -1], b: 0.5 };
    expect(logitOf(model, [3, 2])).toBe(0.5 + 4 * 1 - 2);
    expect(sigmoid(0)).toBe(0.5);
  });

  it("refuses weights trained for other features", () => {
    expect(() => checkModel({ features: ["x"], mean: [0], std: [1], w: [1], b: 0 }, FEATURES, "w.json")).toThrow(
      /retrain it with bench\/train-ranker.ts/,
    );
    expect(defaultRanker.features).toEqual(FEATURES);
  });
});

describe("cut-off", () => {
  const scored = scoreFeatures(index, query());
  const model = (b: number, gap: number): CutoffModel => ({
    features: [...GATE_FEATURES],
    mean: GATE_FEATURES.map(() => 0),
    std: GATE_FEATURES.map(() => 1),
    w: GATE_FEATURES.map(() => 0),
    b,
    minProbability: 0.5,
    gap,
  });

  it("keeps nothing when the gate's probability is below its minimum", () => {
    expect(keptByCutoff(model(-1, 99), scored, [3, 2, 1])).toBe(0);
  });

  it("keeps the results within `gap` logits of the best when the gate opens", () => {
    expect(keptByCutoff(model(1, 1.5), scored, [3, 2, 1, 0])).toBe(2);
    expect(keptByCutoff(model(1, 99), scored, [3, 2, 1, 0])).toBe(4);
    expect(keptByCutoff(model(1, 99), scored, [])).toBe(0);
  });

  it("in a small scope, keeps the results whose cosine reaches the floor, in rank order", () => {
    expect(SMALL_SCOPE_MIN_COSINE).toBe(0.3);
    expect(keptBySimilarity([0.5, 0.2, 0.3, 0.299])).toEqual([true, false, true, false]);
    expect(keptBySimilarity([])).toEqual([]);
  });
});

describe("token budget", () => {
  it("takes results in rank order while they fit, skipping one that does not", () => {
    const texts = ["x".repeat(40), "y".repeat(400), "z".repeat(40)];
    expect(estimateTokens(texts[0] as string)).toBe(18);
    expect(withinTokenBudget(texts, (t) => t, 40)).toEqual([texts[0], texts[2]]);
    expect(withinTokenBudget(texts, (t) => t, 10)).toEqual([]);
  });
});
