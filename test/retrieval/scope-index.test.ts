import { describe, expect, test } from "vitest";
import type { MemoryRecord } from "../../src/index.js";
import type { Nlp } from "../../src/retrieval/nlp.js";
import { buildScopeIndex, extendScopeIndex, type IndexedMemory, indexMemory, type ScopeIndex } from "../../src/retrieval/scope-index.js";
import { seededRandom } from "../../src/testing/seeded-random.js";

const nlp: Nlp = { entities: () => ({ nouns: [], properNouns: [] }), days: () => [] };

const words = ["garden", "tomato", "guitar", "lesson", "paris", "trip", "march", "dog", "walk", "rain", "coffee", "book"];
const speakers = ["Ann", "Bob Lee", "Ann Lee", undefined];

function memoriesOf(random: () => number, count: number, from: number): IndexedMemory[] {
  let at = from;
  return Array.from({ length: count }, (_, i) => {
    // Mostly a minute apart (one session), sometimes hours (a new session).
    at += random() < 0.2 ? 3 * 3_600_000 : 60_000;
    const name = speakers[Math.floor(random() * speakers.length)];
    const text = Array.from({ length: 1 + Math.floor(random() * 6) }, () => words[Math.floor(random() * words.length)]).join(" ");
    const record: MemoryRecord = {
      id: `m${from}-${i}`,
      text: name ? `${name}: ${text}` : text,
      hash: `h${from}-${i}`,
      vector: Float32Array.from([random(), random()]),
      userId: "u",
      metadata: name ? { engram: { role: "user", name, messages: 1 } } : {},
      createdAt: new Date(at).toISOString(),
      updatedAt: new Date(at).toISOString(),
    };
    return indexMemory(record, nlp);
  });
}

/** Everything ranking reads of an index, in a comparable form (maps sorted by key). */
function snapshot(index: ScopeIndex) {
  const sorted = <V>(map: ReadonlyMap<string, V>) => [...map].sort(([a], [b]) => (a < b ? -1 : 1));
  return {
    ids: index.memories.map((memory) => memory.record.id),
    previous: [...index.previous],
    next: [...index.next],
    session: [...index.session],
    windowLength: [...index.windowLength],
    averageLength: index.averageLength,
    averageWindowLength: index.averageWindowLength,
    documentFrequency: sorted(index.documentFrequency),
    postings: sorted(index.postings).map(([term, posting]) => [term, [...posting.memories], [...posting.counts]]),
    speakers: sorted(index.speakers),
    latestDay: index.latestDay,
  };
}

describe("extendScopeIndex", () => {
  test("keeping a prefix and adding a tail gives the index a full build gives, and leaves the first index as it was (200 random cases)", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const random = seededRandom(seed);
      const first = memoriesOf(random, Math.floor(random() * 40), Date.UTC(2025, 0, 1));
      const keep = Math.floor(random() * (first.length + 1));
      const tail = memoriesOf(random, Math.floor(random() * 8), Date.parse(first[keep - 1]?.record.createdAt ?? "2025-01-01T00:00:00Z"));
      const index = buildScopeIndex(first);
      const before = snapshot(index);
      const extended = extendScopeIndex(index, keep, tail);
      expect(snapshot(extended), `seed ${seed}`).toEqual(snapshot(buildScopeIndex([...first.slice(0, keep), ...tail])));
      expect(snapshot(index), `seed ${seed}: the first index changed`).toEqual(before);
    }
  });

  test("a scope emptied to nothing and one built from nothing are the same", () => {
    const random = seededRandom(7);
    const first = memoriesOf(random, 5, Date.UTC(2025, 0, 1));
    expect(snapshot(extendScopeIndex(buildScopeIndex(first), 0, []))).toEqual(snapshot(buildScopeIndex([])));
  });
});
