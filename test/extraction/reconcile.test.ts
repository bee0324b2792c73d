import { describe, expect, test } from "vitest";
import type { Decision } from "../../src/extraction/output.js";
import { reconcile } from "../../src/extraction/reconcile.js";
import { textHash } from "../../src/internal/hash.js";
import type { MemoryRecord } from "../../src/stores/vector-store.js";

const record = (id: string, text: string): MemoryRecord => ({
  id,
  text,
  hash: textHash(text),
  userId: "alice",
  metadata: {},
  createdAt: "2024-01-01T00:00:00.000Z",
  updatedAt: "2024-01-01T00:00:00.000Z",
});
const tea = record("uuid-tea", "Likes tea");
const paris = record("uuid-paris", "Lives in Paris");
const shown = new Map([
  ["0", tea],
  ["1", paris],
]);
const run = (...decisions: Decision[]) => reconcile(shown, decisions, { maxLength: 100 });

describe("reconcile", () => {
  test("maps small ids back to records", () => {
    const { operations, warnings } = run(
      { id: "0", event: "NONE", text: "Likes tea" },
      { id: "1", event: "UPDATE", text: "Lives in  Berlin " },
      { id: "new", event: "ADD", text: "Has a cat" },
    );
    expect(warnings).toEqual([]);
    expect(operations).toEqual([
      { event: "NONE", target: tea },
      { event: "UPDATE", target: paris, text: "Lives in Berlin", hash: textHash("Lives in Berlin") },
      { event: "ADD", text: "Has a cat", hash: textHash("Has a cat") },
    ]);
  });

  test("an ADD that repeats a shown memory does not block a later decision about it", () => {
    const { operations } = run({ id: "new", event: "ADD", text: "Likes tea" }, { id: "0", event: "DELETE", text: "Likes tea" });
    expect(operations).toEqual([{ event: "DELETE", target: tea }]);
    expect(run({ id: "new", event: "ADD", text: "Likes tea" }).operations).toEqual([{ event: "NONE", target: tea }]);
  });

  test("an UPDATE to the same text is NONE; repeated ADDs are added once", () => {
    const { operations } = run(
      { id: "1", event: "UPDATE", text: "Lives in Paris" },
      { id: "new", event: "ADD", text: "Has a cat" },
      { id: "new", event: "ADD", text: "Has  a cat" },
    );
    expect(operations).toEqual([
      { event: "NONE", target: paris },
      { event: "ADD", text: "Has a cat", hash: textHash("Has a cat") },
    ]);
  });

  test("an ADD with another id still adds, with a warning; texts over the limit are ignored", () => {
    const { operations, warnings } = run({ id: "0", event: "ADD", text: "Has a cat" }, { id: "new", event: "ADD", text: "x".repeat(101) });
    expect(operations).toEqual([{ event: "ADD", text: "Has a cat", hash: textHash("Has a cat") }]);
    expect(warnings).toEqual([
      'ADD carried id "0": the id was ignored and the fact added as new.',
      'Ignored ADD of id "new": its text is 101 characters long, more than maxMessageLength (100).',
    ]);
  });

  test("regression: a model's fact with U+0000 or a lone surrogate is stored without them (input with them is refused, so no store ever sees one)", () => {
    const { operations } = run({ id: "new", event: "ADD", text: "Has a\u0000 cat \ud800named Tom" });
    expect(operations).toEqual([{ event: "ADD", text: "Has a cat \ufffdnamed Tom", hash: textHash("Has a cat \ufffdnamed Tom") }]);
  });
});
