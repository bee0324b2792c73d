import { describe, expect, test } from "vitest";
import { extractionOutputSchema, parseExtractionOutput } from "../../src/extraction/output.js";

const one = [{ id: "new", event: "ADD", text: "Likes tea" }];

describe("parseExtractionOutput", () => {
  test.each([
    ["plain JSON", '{"memory": [{"id": "new", "event": "ADD", "text": "Likes tea"}]}'],
    ["a code fence", '```json\n{"memory": [{"id": "new", "event": "ADD", "text": "Likes tea"}]}\n```'],
    ["a fence without language", '```\n{"memory": [{"id": "new", "event": "ADD", "text": "Likes tea"}]}\n```'],
    ["prose around it", 'Here you go: {"memory": [{"id": "new", "event": "ADD", "text": "Likes tea"}]} — done.'],
    ["prose with braces before it", 'Facts {as requested}: {"memory": [{"id": "new", "event": "ADD", "text": "Likes tea"}]}'],
    ["trailing commas", '{"memory": [{"id": "new", "event": "ADD", "text": "Likes tea",},],}'],
    ["a bare array", '[{"id": "new", "event": "ADD", "text": "Likes tea"}]'],
    ["lower-case events and numeric ids", '{"memory": [{"id": "new", "event": "add", "text": "Likes tea"}]}'],
    ["single quotes", "{'memory': [{'id': 'new', 'event': 'ADD', 'text': 'Likes tea'}]}"],
    ["unquoted keys and a comment", '{memory: [ // the one fact\n {id: "new", event: "ADD", text: "Likes tea"}]}'],
    ["a missing comma, in a fence", '```json\n{"memory": [{"id": "new" "event": "ADD", "text": "Likes tea"}]}\n```'],
  ])("reads %s", (_, text) => {
    expect(parseExtractionOutput(text)).toEqual({ ok: true, decisions: one, warnings: [] });
  });

  test("keeps braces, commas and fences inside strings intact", () => {
    const text = '{"memory": [{"id": 0, "event": "update", "text": "Wrote \\"a, }\\" and ```x``` in {braces},"}]}';
    expect(parseExtractionOutput(text)).toEqual({
      ok: true,
      decisions: [{ id: "0", event: "UPDATE", text: 'Wrote "a, }" and ```x``` in {braces},' }],
      warnings: [],
    });
  });

  test("an empty list is a valid answer", () => {
    expect(parseExtractionOutput('{"memory": []}')).toEqual({ ok: true, decisions: [], warnings: [] });
  });

  test("drops entries that do not fit, with a warning each", () => {
    const result = parseExtractionOutput(
      JSON.stringify({
        memory: [
          { id: "0", event: "MERGE", text: "x" },
          "Likes tea",
          { event: "DELETE" },
          { event: "ADD", text: "Likes tea" },
          { id: "1", event: "NONE", text: 5 },
        ],
      }),
    );
    expect(result).toEqual({
      ok: true,
      decisions: [{ id: "new", event: "ADD", text: "Likes tea" }],
      warnings: [
        'Ignored entry 0 of the model\'s output: event "MERGE" is not one of ADD, UPDATE, DELETE, NONE.',
        "Ignored entry 1 of the model's output: it is not an object.",
        "Ignored entry 2 of the model's output: DELETE without an id.",
        "Ignored entry 4 of the model's output: text is not a string.",
      ],
    });
  });

  test.each([
    ["", "the output was empty"],
    ["The user likes tea.", "no JSON object could be read from the output"],
    ['{"memory": [{"id": "new", "event": "ADD", "text": "Likes tea"}', "no JSON object could be read from the output"],
    ['{"facts": ["likes tea"]}', 'the JSON object has no "memory" array'],
    ['{"memory": "Likes tea"}', 'the JSON object has no "memory" array'],
  ])("fails on %j", (text, reason) => {
    expect(parseExtractionOutput(text)).toEqual({ ok: false, reason });
  });

  test("the strict schema sent to the provider accepts exactly the documented shape", () => {
    expect(extractionOutputSchema.safeParse({ memory: one }).success).toBe(true);
    expect(extractionOutputSchema.safeParse({ memory: [{ id: "new", event: "ADD" }] }).success).toBe(false);
    expect(extractionOutputSchema.safeParse({ memory: [{ ...one[0], extra: 1 }] }).success).toBe(false);
  });
});
