import { describe, expect, it } from "vitest";
import type { MemoryRecord } from "../../src/index.js";
import { estimateTokens, withinTokenBudget } from "../../src/retrieval/budget.js";
import { type CutoffModel, GATE_FEATURES, keptByCutoff, keptBySimilarity, SMALL_SCOPE_MIN_COSINE } from "../../src/retrieval/cutoff.js";
import { completeFeatures, FEATURES, prepareFeatures, type RankQuery, scoreFeatures } from "../../src/retrieval/features.js";
import type { Nlp } from "../../src/retrieval/nlp.js";
import { completeRanking, prepareRanking, rankIndex } from "../../src/retrieval/rank.js";
import { checkModel, defaultRanker, logitOf, sigmoid } from "../../src/retrieval/ranker.js";
import { aliasesOf, buildScopeIndex, indexMemory, vocativesOf } from "../../src/retrieval/scope-index.js";
import { allocateSlots } from "../../src/retrieval/slots.js";
import { oneEditApart, soundex, speakerNamedBy, speakersNamedIn, withoutSpeakerNames } from "../../src/retrieval/speaker-names.js";
import type { ValidScope } from "../../src/scope.js";
import { cosineSimilarity } from "../../src/store-kit/filter.js";

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

  it("picks the pool by the mean of cos and cosTopic when the query names a speaker, unless told not to", () => {
    // base: a 1, d 0.56, c 0.42, b 0; by the mean of both cosines: a 0.65, c 0.49, d 0.49 (tie: c first), b 0.35.
    const topicVector = Float32Array.from([0, 1]);
    expect(scoreFeatures(index, query({ topicVector })).pool).toEqual([0, 2, 3, 1]);
    expect(scoreFeatures(index, query({ topicVector }), { topicPool: false }).pool).toEqual([0, 3, 2, 1]);
    // The neighbour signal still reads the first-stage score: b's neighbours a and c give 1 / 1.
    const { pool, rows } = scoreFeatures(index, query({ topicVector }));
    expect(f(rows[pool.indexOf(1)], "nb")).toBeCloseTo(1);
  });

  it("reads the speakers a query names from its text, names spelt otherwise included", () => {
    const { pool, rows, query: q } = scoreFeatures(index, query({ text: "What guitar did Bobb buy?" }));
    const row = (id: string) => rows[pool.findIndex((i) => memories[i]?.record.id === id)];
    // "Bobb" is one edit from "Bob" but has 4 letters against 3: names of 4 letters or more only.
    expect(f(row("b"), "spk")).toBe(0);
    expect(q.speakersNamed).toBe(0);
    const named = scoreFeatures(index, query({ text: "What did Ann and Bob buy?" }));
    expect(named.query.speakersNamed).toBe(2);
    // Pool a, d, c, b: d has no speaker.
    expect(named.pool).toEqual([0, 3, 2, 1]);
    expect(named.rows.map((r) => f(r, "spk"))).toEqual([1, 0, 1, 1]);
    expect(named.rows.map((r) => f(r, "spkOther"))).toEqual([0, 1, 0, 0]);
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

describe("features before and after the query's vectors", () => {
  // 11 memories (not a multiple of the four a cosine pass reads at once) of 9 dimensions, from a fixed seed.
  let seed = 7;
  const random = () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647 - 0.5;
  };
  const vectorOf = (length: number) => Array.from({ length }, random);
  const words = ["guitar", "piano", "Paris", "march", "lessons"];
  const many = Array.from({ length: 11 }, (_, k) =>
    indexMemory(
      record(`r${k}`, `${words[k % 5]} and ${words[(k * 3) % 5]}`, 100 * DAY + k * 60_000, vectorOf(9), k % 2 ? "Ann" : "Bob"),
      nlp,
    ),
  );
  const manyIndex = buildScopeIndex(many);
  const manyQuery = query({
    vector: Float32Array.from(vectorOf(9)),
    topicVector: Float32Array.from(vectorOf(9)),
    nouns: ["guitar", "paris"],
  });
  // The reference: cosineSimilarity, one memory at a time, summed in dimension order.
  it("gives each memory's cosines to the bit as one memory at a time would", () => {
    const { pool, rows } = scoreFeatures(manyIndex, manyQuery);
    expect(pool).toHaveLength(11);
    pool.forEach((i, k) => {
      const memory = many[i] as (typeof many)[number];
      expect(f(rows[k], "cos")).toBe(cosineSimilarity(manyQuery.vector, memory.vector));
      expect(f(rows[k], "cosTopic")).toBe(cosineSimilarity(manyQuery.topicVector as Float32Array, memory.vector));
    });
  });

  it("completes one preparation for any vectors: each gives the rows scoring them whole gives", () => {
    const { vector: _vector, topicVector: _topic, ...queryWords } = manyQuery;
    const prepared = prepareFeatures(manyIndex, queryWords, { keywordWeight: 0.4 });
    for (const vectors of [{ vector: manyQuery.vector }, { vector: Float32Array.from(vectorOf(9)), topicVector: manyQuery.vector }]) {
      expect(completeFeatures(prepared, vectors)).toEqual(scoreFeatures(manyIndex, { ...queryWords, ...vectors }, { keywordWeight: 0.4 }));
    }
    const scope = { userId: "u" } as ValidScope;
    const ranked = prepareRanking(manyIndex, scope, queryWords, { limit: 5, threshold: 0 });
    expect(completeRanking(ranked, { vector: manyQuery.vector })).toEqual(
      rankIndex(manyIndex, scope, { ...queryWords, vector: manyQuery.vector }, { limit: 5, threshold: 0 }),
    );
    expect(completeRanking(prepareRanking(buildScopeIndex([]), scope, queryWords, { limit: 5 }), manyQuery)).toEqual([]);
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

describe("names spelt otherwise", () => {
  const speakers = new Map([
    ["fahim", "Fahim Khan"],
    ["khan", "Fahim Khan"],
    ["muhham", "Muhhamed"],
    ["akib", "Akib"],
  ]);
  const known = (term: string) => ["what", "game", "do", "and", "plai", "togeth", "kevin"].includes(term);

  it("codes words by American Soundex", () => {
    expect(
      ["muhammad", "mohammed", "muhhamed", "fahim", "faheem", "robert", "rupert", "tymczak", "pfister", "ashcraft"].map(soundex),
    ).toEqual(["m530", "m530", "m530", "f500", "f500", "r163", "r163", "t522", "p236", "a261"]);
  });

  it("tells words one edit apart", () => {
    expect([
      oneEditApart("akib", "aqib"),
      oneEditApart("akim", "akib"),
      oneEditApart("akib", "akbi"),
      oneEditApart("akib", "akibs"),
    ]).toEqual([true, true, true, true]);
    expect([oneEditApart("akib", "abik"), oneEditApart("akib", "akibss"), oneEditApart("kevin", "devon")]).toEqual([false, false, false]);
  });

  it("names a speaker by a capitalised word no memory holds, spelt like a word of the name", () => {
    const named = (word: string, first = false) => speakerNamedBy(word, speakers, { first, known });
    expect([named("Muhammad"), named("Mohammed"), named("Faheem"), named("Aqib"), named("Akim's")]).toEqual([
      "Muhhamed",
      "Muhhamed",
      "Fahim Khan",
      "Akib",
      "Akib",
    ]);
    // Exact names need no capital; variants do, and are not the query's first word, nor a word the scope holds.
    expect(named("fahim")).toBe("Fahim Khan");
    expect([named("muhammad"), named("Muhammad", true), named("Kevin"), named("Faheem")]).toEqual([
      undefined,
      undefined,
      undefined,
      "Fahim Khan",
    ]);
    expect(speakerNamedBy("Muhammad", speakers)).toBeUndefined();
  });

  it("leaves variants out of the query and counts them as naming their speaker", () => {
    const text = "What games do Fahim Khan and Muhammad play together?";
    expect(withoutSpeakerNames(text, speakers, known)).toBe("What games do and play together?");
    expect(withoutSpeakerNames(text, speakers)).toBe("What games do and Muhammad play together?");
    const { names, stems } = speakersNamedIn(text, speakers, known);
    expect([...names]).toEqual(["Fahim Khan", "Muhhamed"]);
    expect([...stems]).toEqual(["fahim", "khan", "muhammad"]);
  });
});

describe("names the speakers call each other by", () => {
  it("reads greetings and thanks followed by a capitalised name ending the clause", () => {
    expect(vocativesOf("Hey Kate! How are you?")).toEqual(["Kate"]);
    expect(vocativesOf("Thank you so much Kate. Thanks, Liza, see you")).toEqual(["Kate", "Liza"]);
    expect(vocativesOf("Hi Kate how was it")).toEqual([]);
    expect(vocativesOf("hey kate!")).toEqual([]);
    expect(vocativesOf("They said hello Paris is nice")).toEqual([]);
  });

  const at = (minute: number) => 100 * DAY + minute * 60_000;
  const greeting = (id: string, minute: number, name: string, text: string) => indexMemory(record(id, text, at(minute), [1, 0], name), nlp);

  it("makes a name greeted 3 times name the speaker greeted", () => {
    const conversation = [
      greeting("1", 0, "Emi", "I made pasta today"),
      greeting("2", 1, "Elise", "Hey Kate! Looks great"),
      greeting("3", 2, "Emi", "Thanks Emily!"),
      greeting("4", 3, "Elise", "What do you think? Hi Kate! Thank you so much Kate."),
      greeting("5", 4, "Emi", "Hi Elise."),
    ];
    const conversationIndex = buildScopeIndex(conversation);
    expect(aliasesOf(conversation, conversationIndex.previous, conversationIndex.next)).toEqual(new Map([["kate", "Emi"]]));
    // "Emily" was said once; "Elise" is a speaker's own name.
    expect(conversationIndex.speakers.get("kate")).toBe("Emi");
    expect(conversationIndex.speakers.size).toBe(3);
    expect(new Set(conversationIndex.speakers.values())).toEqual(new Set(["Emi", "Elise"]));
  });

  it("does not alias a name greeted fewer than 3 times, or to no one in particular", () => {
    const twice = [greeting("1", 0, "Emi", "I cooked"), greeting("2", 1, "Elise", "Hey Kate! Hi Kate.")];
    expect(buildScopeIndex(twice).speakers.has("kate")).toBe(false);
    const mixed = [
      greeting("1", 0, "Ann", "Hi Sam!"),
      greeting("2", 1, "Bob", "Hi Sam!"),
      greeting("3", 2, "Ann", "Hi Sam!"),
      greeting("4", 3, "Bob", "Hi Sam!"),
    ];
    const mixedIndex = buildScopeIndex(mixed);
    expect(aliasesOf(mixed, mixedIndex.previous, mixedIndex.next).size).toBe(0);
    const alone = [greeting("1", 0, "Ann", "Hi Sam!"), greeting("2", 1, "Ann", "Hi Sam!"), greeting("3", 2, "Ann", "Hi Sam!")];
    const aloneIndex = buildScopeIndex(alone);
    expect(aliasesOf(alone, aloneIndex.previous, aloneIndex.next).size).toBe(0);
  });
});

describe("slot allocation", () => {
  const at = (minute: number) => 100 * DAY + minute * 60_000;
  // One session of six memories a minute apart (Ann, Bob alternating), then one a day later.
  const said = [0, 1, 2, 3, 4, 5].map((m) => indexMemory(record(`m${m}`, "words", at(m), [1, 0], m % 2 === 0 ? "Ann" : "Bob"), nlp));
  const slotIndex = buildScopeIndex([...said, indexMemory(record("late", "words", at(24 * 60), [1, 0], "Ann"), nlp)]);
  const scoredOf = (speakersNamed: number) => ({
    pool: [0, 1, 2, 3, 4, 5, 6],
    rows: [],
    query: { maxCos: 1, maxBmRaw: 0, unknownTermShare: 0, unknownProperShare: 0, namesSpeaker: 1, anyUnknownProper: 0, speakersNamed },
  });
  const logits = [3, 2.9, 2.8, 1, 0.5, 0.4, 2.75];
  const order = [0, 1, 2, 6, 3, 4, 5];

  it("takes nearby memories down by 0.2 logits per result within two memories of them in the session", () => {
    // After m0 (3): m1 2.9 − 0.2 = 2.7 and m2 2.8 − 0.2 = 2.6 fall below late (2.75); then m1 (2.7), then m2 (2.8 − 0.4).
    expect(allocateSlots(slotIndex, scoredOf(1), logits, order, 4)).toEqual([0, 6, 1, 2, 3, 4, 5]);
    expect(allocateSlots(slotIndex, scoredOf(1), logits, order, 1)).toEqual(order);
    expect(allocateSlots(slotIndex, scoredOf(1), logits, order, 4, { nearbyPenalty: 0 })).toEqual(order);
  });

  it("takes a speaker's memories down by 1 logit per result of theirs when the query names two speakers", () => {
    // Ann: m0, m2, m4, late; Bob: m1, m3, m5. After m0: m1 2.9 − 0.2 beats m2 2.8 − 0.2 − 1 and late 2.75 − 1;
    // then late 1.75 beats m2 2.8 − 0.4 − 1.
    expect(allocateSlots(slotIndex, scoredOf(2), logits, order, 3)).toEqual([0, 1, 6, 2, 3, 4, 5]);
  });
});

describe("search results: the cut-off decides which memories, slot allocation their order", () => {
  const at = (minute: number) => 100 * DAY + minute * 60_000;
  const unit = (c: number) => [c, Math.sqrt(1 - c * c)];
  // m0 … m2 a minute apart in one session, cos 1, 0.99, 0.98; "late" a day later, cos 0.972; 60
  // unrelated memories (cos 0), a day apart each, so the scope is past SMALL_SCOPE.
  const records = [
    record("m0", "one", at(0), unit(1)),
    record("m1", "two", at(1), unit(0.99)),
    record("m2", "three", at(2), unit(0.98)),
    record("late", "four", at(24 * 60), unit(0.972)),
    ...Array.from({ length: 60 }, (_, k) => record(`x${k}`, "five", at((k + 2) * 24 * 60), [0, 1])),
  ];
  const scopeIndex = buildScopeIndex(records.map((r) => indexMemory(r, nlp)));
  // logit = 10 · cos: m0 10, m1 9.9, m2 9.8, late 9.72.
  const ranker = {
    features: [...FEATURES],
    mean: FEATURES.map(() => 0),
    std: FEATURES.map(() => 1),
    w: FEATURES.map((name) => (name === "cos" ? 10 : 0)),
    b: 0,
  };
  const cutoff: CutoffModel = {
    features: [...GATE_FEATURES],
    mean: GATE_FEATURES.map(() => 0),
    std: GATE_FEATURES.map(() => 1),
    w: GATE_FEATURES.map(() => 0),
    b: 10,
    minProbability: 0.5,
    gap: 0.25,
  };
  const ids = (options: { limit: number; threshold?: number }) =>
    rankIndex(scopeIndex, { userId: "u" } as ValidScope, query({ terms: [], words: new Set(), nouns: [] }), {
      ...options,
      ranker,
      cutoff,
    }).map((hit) => hit.record.id);

  it("lists the memories in the slots' order: a memory said next to a result comes after one said elsewhere", () => {
    // After m0, m1 (9.9 − 0.2) and m2 (9.8 − 0.2) fall below late (9.72).
    expect(ids({ limit: 4, threshold: 0 })).toEqual(["m0", "late", "m1", "m2"]);
  });

  it("shows what the cut-off keeps by logit, no memory below it, in the slots' order", () => {
    // The gap keeps the logits ≥ 10 − 0.25: m0, m1, m2; late (9.72) is below though allocation would list it second.
    expect(ids({ limit: 4 })).toEqual(["m0", "m1", "m2"]);
    expect(ids({ limit: 2 })).toEqual(["m0", "m1"]);
    // A threshold keeps the results whose probability reaches it, in the slots' order.
    expect(ids({ limit: 4, threshold: sigmoid(9.76) })).toEqual(["m0", "m1", "m2"]);
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
