import { describe, expect, test } from "vitest";
import { keywordTerms, MAX_QUERY_TERMS, tokenize } from "../../src/retrieval/keywords.js";

describe("tokenize (known values)", () => {
  test("lower-cased runs of letters and digits of any script, repeats kept, everything else a separator", () => {
    expect(tokenize("Hello, WORLD! Ça va? 42nd-street café_au_lait")).toEqual([
      "hello",
      "world",
      "ça",
      "va",
      "42nd",
      "street",
      "café",
      "au",
      "lait",
    ]);
    expect(tokenize("東京 Москва ΑΘΗΝΑ")).toEqual(["東京", "москва", "αθηνα"]);
    expect(tokenize("bees bees  BEES")).toEqual(["bees", "bees", "bees"]);
    expect(tokenize(" ,.;!? ")).toEqual([]);
    expect(tokenize("")).toEqual([]);
  });
});

describe("keywordTerms (known values)", () => {
  test("distinct words in order, without stop words or single characters", () => {
    // the, and, on, a, i: stop words; x, y: single characters; the second "cat": a repeat.
    expect(keywordTerms("The cat and THE Cat sat on a mat, I think: x y 42")).toEqual(["cat", "sat", "mat", "think", "42"]);
    expect(keywordTerms("What is my favourite editor?")).toEqual(["favourite", "editor"]);
    expect(keywordTerms("the and of to")).toEqual([]);
  });

  test(`at most ${MAX_QUERY_TERMS} terms, the first ones`, () => {
    const words = Array.from({ length: 30 }, (_, i) => `word${i}`);
    expect(MAX_QUERY_TERMS).toBe(24);
    expect(keywordTerms(words.join(" "))).toEqual(words.slice(0, 24));
  });
});
