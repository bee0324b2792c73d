import { describe, expect, test } from "vitest";
import { isFiller } from "../../src/verbatim/filler.js";
import { burstsOf, burstText } from "../../src/verbatim/turns.js";

describe("isFiller", () => {
  test.each([
    "ok",
    "OK!",
    "Sure, noted.",
    "haha",
    "Hahahaha!!",
    "okkk",
    "loool",
    "hmmm...",
    "😂😂",
    "...",
    "👍",
    "Thank you so much!",
    "sounds good 👍",
    "lol ok",
    "got it, thanks",
    "oh no",
    "You’re welcome",
  ])("%j is filler", (text) => {
    expect(isFiller(text)).toBe(true);
  });

  test.each([
    "yes",
    "No",
    "hi",
    "Hello there",
    "Yes! It was in March.",
    "ok I moved to Berlin",
    "thanks for the Berlin tips",
    "2",
    "sure sure sure sure sure sure sure",
    "nice nice nice nice nice nice nice",
  ])("%j carries content", (text) => {
    expect(isFiller(text)).toBe(false);
  });
});

describe("burstsOf", () => {
  test("joins consecutive messages of one speaker (role and name), drops system messages and filler", () => {
    const { bursts, filler } = burstsOf([
      { role: "system", content: "be nice" },
      { role: "user", name: "Ann", content: "I went to  Lisbon." },
      { role: "user", name: "Ann", content: "It rained." },
      { role: "user", name: "Bo", content: "haha" },
      { role: "user", name: "Ann", content: "Twice." },
      { role: "user", name: "Bo", content: "Did you see the tower?" },
      { role: "assistant", content: "Sure, noted." },
      { role: "assistant", content: "Lisbon has a tower." },
      { role: "user", content: "I will go back." },
    ]);
    expect(filler).toBe(2);
    expect(bursts.map(burstText)).toEqual([
      // Bo's filler in between is dropped: Ann goes on.
      "Ann: I went to Lisbon. It rained. Twice.",
      "Bo: Did you see the tower?",
      "Lisbon has a tower.",
      "I will go back.",
    ]);
    expect(bursts.map((burst) => [burst.role, burst.name, burst.words])).toEqual([
      ["user", "Ann", 7],
      ["user", "Bo", 5],
      ["assistant", undefined, 4],
      ["user", undefined, 4],
    ]);
  });

  test("a burst stops at the word cap; a longer message is a burst of its own", () => {
    const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");
    const { bursts } = burstsOf(
      [words(60), words(40), words(1), words(120), words(3)].map((content) => ({ role: "user" as const, name: "Ann", content })),
      { maxWords: 100 },
    );
    expect(bursts.map((burst) => burst.words)).toEqual([100, 1, 120, 3]);
  });

  test("continues an open burst, and counts a message it already ends with as a repeat", () => {
    const open = { role: "user" as const, name: "Ann", parts: ["Then I went home"], words: 4 };
    const continued = burstsOf([{ role: "user", name: "Ann", content: "It was late." }], { open });
    expect(continued.bursts.map(burstText)).toEqual(["Ann: Then I went home It was late."]);
    expect(open.parts).toEqual(["Then I went home"]);
    const repeated = burstsOf([{ role: "user", name: "Ann", content: "Then I went  home" }], { open });
    expect(repeated).toEqual({ bursts: [open], filler: 0, repeats: 1 });
    // A few words that end it by chance are no repeat.
    expect(burstsOf([{ role: "user", name: "Ann", content: "went home" }], { open }).repeats).toBe(0);
    // Another speaker does not continue it.
    expect(burstsOf([{ role: "user", name: "Bo", content: "It was late." }], { open }).bursts.map(burstText)).toEqual([
      "Ann: Then I went home",
      "Bo: It was late.",
    ]);
  });
});
