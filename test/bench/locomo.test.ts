import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanEvidence, parseSessionDate, readLocomo, sessionOf } from "../../bench/support/locomo.js";

describe("parseSessionDate", () => {
  it("reads LoCoMo's 12-hour format as UTC", () => {
    expect(parseSessionDate("1:56 pm on 8 May, 2023")?.toISOString()).toBe("2023-05-08T13:56:00.000Z");
    expect(parseSessionDate("12:05 am on 1 January, 2024")?.toISOString()).toBe("2024-01-01T00:05:00.000Z");
    expect(parseSessionDate("12:30 pm on 17 Aug, 2023")?.toISOString()).toBe("2023-08-17T12:30:00.000Z");
  });

  it("reads REALTALK's day-first dotted format, with or without seconds", () => {
    expect(parseSessionDate("29.12.2023, 22:42:04")?.toISOString()).toBe("2023-12-29T22:42:04.000Z");
    expect(parseSessionDate("01.01.2024, 05:06")?.toISOString()).toBe("2024-01-01T05:06:00.000Z");
  });

  it("reads ISO dates and refuses what is none of the formats or not a real date", () => {
    expect(parseSessionDate("2024-03-01")?.toISOString()).toBe("2024-03-01T00:00:00.000Z");
    expect(parseSessionDate("31.02.2024, 10:00:00")).toBeUndefined();
    expect(parseSessionDate("13:10 pm on 8 May, 2023")).toBeUndefined();
    expect(parseSessionDate("yesterday")).toBeUndefined();
  });
});

describe("cleanEvidence", () => {
  const existing = new Set(["D1:3", "D8:6", "D9:17", "D12:3", "D12:4", "D12:5", "D13:45", "D20:19", "D30:5"]);

  it("splits joined ids, strips leading zeros and trailing punctuation", () => {
    const cleaned = cleanEvidence(["D8:6; D9:17", "D30:05", "D1:3."], existing);
    expect(cleaned.ids).toEqual(["D8:6", "D9:17", "D30:5", "D1:3"]);
    expect(cleaned.split).toBe(true);
    expect(cleaned.zeroPadded).toBe(1);
    expect(cleaned.droppedMalformed).toEqual([]);
  });

  it("expands a range within one session and reads ids glued by a colon", () => {
    const cleaned = cleanEvidence(["D12:3-D12:5", "D13:45:D20:19"], existing);
    expect(cleaned.ids).toEqual(["D12:3", "D12:4", "D12:5", "D13:45", "D20:19"]);
    expect(cleaned.expandedRanges).toBe(1);
  });

  it("drops ids no turn has and text that holds no id, and counts both", () => {
    const cleaned = cleanEvidence(["D2:7", "D17;39", "", 42, "D8:6, D8:6"], existing);
    expect(cleaned.ids).toEqual(["D8:6"]);
    expect(cleaned.droppedUnknown).toEqual(["D2:7"]);
    expect(cleaned.droppedMalformed).toEqual(["D17;39", "", "42"]);
  });
});

describe("readLocomo", () => {
  const directory = mkdtempSync(join(tmpdir(), "locomo-"));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it("reads sessions in numeric order with their dates, and cleans evidence against the turns", () => {
    const file = join(directory, "sample.json");
    writeFileSync(
      file,
      JSON.stringify([
        {
          sample_id: "conv-1",
          conversation: {
            speaker_a: "Ann",
            speaker_b: "Bo",
            session_10: [{ speaker: "Bo", dia_id: "D10:1", text: "Late session." }],
            session_10_date_time: "29.12.2023, 22:42:04",
            session_2: [
              { speaker: "Ann", dia_id: "D2:01", text: "I adopted a cat.", blip_caption: "a photo of a grey cat" },
              { speaker: "Bo", dia_id: "D2:2", text: "" },
            ],
            session_2_date_time: "1:56 pm on 8 May, 2023",
          },
          qa: [
            { question: "What pet?", answer: "A cat", evidence: ["D2:1; D2:2"], category: 1 },
            { question: "Nothing?", answer: "-", evidence: ["D9:9"], category: 5 },
          ],
        },
      ]),
    );
    const { samples, stats } = readLocomo(file);
    const [sample] = samples;
    expect(sample?.sessions.map((s) => s.number)).toEqual([2, 10]);
    expect(sample?.sessions[0]?.date?.toISOString()).toBe("2023-05-08T13:56:00.000Z");
    expect(sample?.sessions[0]?.turns).toEqual([
      { diaId: "D2:1", session: 2, speaker: "Ann", text: "I adopted a cat. [shares a photo: a photo of a grey cat]" },
    ]);
    expect(sample?.questions.map((q) => q.evidence)).toEqual([["D2:1"], []]);
    expect(stats).toMatchObject({ turns: 2, questions: 2, droppedUnknown: 2, questionsWithoutEvidence: 1, splitEntries: 1 });
    expect(sessionOf("D12:3")).toBe(12);
  });
});
