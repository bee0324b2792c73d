import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, test } from "vitest";
import {
  batchChunks,
  chunkTurns,
  type ImportBatch,
  type ImportExtras,
  type ImportTurn,
  parseJsonl,
  parseLocomo,
  parseSessionDate,
  readImportFile,
} from "../../src/cli/import-file.js";
import { InvalidInputError } from "../../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "engram-import-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const jsonl = (...lines: unknown[]) => lines.map((line) => (typeof line === "string" ? line : JSON.stringify(line))).join("\n");

describe("parseSessionDate", () => {
  test("reads both LoCoMo-schema date styles and ISO 8601, as UTC", () => {
    expect(parseSessionDate("29.12.2023, 22:42:04")).toBe("2023-12-29T22:42:04.000Z");
    expect(parseSessionDate("1.2.2024, 07:05")).toBe("2024-02-01T07:05:00.000Z");
    expect(parseSessionDate("1:56 pm on 8 May, 2023")).toBe("2023-05-08T13:56:00.000Z");
    expect(parseSessionDate("12:05 am on 17 Sept, 2023")).toBe("2023-09-17T00:05:00.000Z");
    expect(parseSessionDate("12:30 PM on 1 January 2024")).toBe("2024-01-01T12:30:00.000Z");
    expect(parseSessionDate("2024-03-01T10:00:00Z")).toBe("2024-03-01T10:00:00.000Z");
  });

  test("refuses dates that do not exist rather than rolling them over", () => {
    for (const text of [
      "31.04.2023, 10:00:00",
      "29.02.2023, 10:00",
      "10.13.2023, 10:00",
      "25:00 pm on 8 May, 2023",
      "1:56 pm on 8 Mai, 2023",
      "yesterday",
    ]) {
      expect(parseSessionDate(text), text).toBeUndefined();
    }
  });
});

describe("parseJsonl", () => {
  test("reads turns with their scope, timestamp and metadata; scope flags fill in missing ids; system lines are skipped", () => {
    const turns = parseJsonl(
      jsonl(
        { role: "user", content: "I like tea", userId: "alice", timestamp: "2024-05-08T13:56:00+02:00" },
        "",
        { role: "assistant", content: "Noted", metadata: { topic: "drinks" } },
        { role: "system", content: "You are helpful" },
        { role: "user", content: "Hi", userId: "bob", runId: "r2" },
      ),
      "chat.jsonl",
      { userId: "default", runId: "r1" },
    );
    expect(turns).toEqual([
      {
        scope: { userId: "alice", runId: "r1" },
        message: { role: "user", content: "I like tea" },
        timestamp: "2024-05-08T11:56:00.000Z",
        metadata: undefined,
        source: "chat.jsonl:1",
      },
      {
        scope: { userId: "default", runId: "r1" },
        message: { role: "assistant", content: "Noted" },
        timestamp: undefined,
        metadata: { topic: "drinks" },
        source: "chat.jsonl:3",
      },
      {
        scope: { userId: "bob", runId: "r2" },
        message: { role: "user", content: "Hi" },
        timestamp: undefined,
        metadata: undefined,
        source: "chat.jsonl:5",
      },
    ]);
  });

  test("reads lines of engram export as memories with their scope, metadata and date", () => {
    const [turn] = parseJsonl(
      jsonl({
        id: "m1",
        memory: "Likes tea",
        hash: "h",
        metadata: { a: 1 },
        createdAt: "2024-01-01T00:00:00.000Z",
        updatedAt: "2024-02-01T00:00:00.000Z",
        userId: "alice",
        agentId: "coder",
      }),
      "export.jsonl",
      {},
    );
    expect(turn).toEqual({
      scope: { userId: "alice", agentId: "coder" },
      message: { role: "user", content: "Likes tea" },
      timestamp: "2024-01-01T00:00:00.000Z",
      metadata: { a: 1 },
      source: "export.jsonl:1",
    });
  });

  test.each([
    ['{"role":"user","content":"x"', /chat.jsonl:2: not valid JSON/],
    ['["user","x"]', /chat.jsonl:2: each line must be a JSON object/],
    ['{"role":"user","content":"x"}', /chat.jsonl:2: no scope: give the line a userId, agentId or runId, or pass --user/],
    ['{"role":"user","content":"x","user_id":"bob"}', /chat.jsonl:2: .*did you mean "userId"/],
    ['{"role":"bot","content":"x","userId":"bob"}', /chat.jsonl:2: role/],
    ['{"role":"user","content":"  ","userId":"bob"}', /chat.jsonl:2: content: must not be empty/],
    ['{"role":"user","content":"x","userId":"bob","timestamp":"soon"}', /chat.jsonl:2: timestamp: must be an ISO 8601 date/],
    ['{"role":"user","content":"x","userId":"bob","extra":1}', /chat.jsonl:2: unknown key "extra"/],
    ['{"role":"user","content":"x","userId":" bob"}', /chat.jsonl:2: .*whitespace/],
    ['{"role":"user","content":"a\\u0000b","userId":"bob"}', /chat.jsonl:2: content contains a NUL character/],
    ['{"role":"user","content":"\\ud83d","userId":"bob"}', /chat.jsonl:2: content contains a lone UTF-16 surrogate/],
    [
      '{"role":"user","content":"x","userId":"bob","metadata":{"__proto__":{"a":1}}}',
      /chat.jsonl:2: metadata.__proto__: metadata cannot have/,
    ],
    [
      `{"role":"user","content":"x","userId":"bob","metadata":${"[".repeat(40)}${"]".repeat(40)}}`,
      /chat.jsonl:2: metadata(\[0\])+ is nested more than 16/,
    ],
  ])("names the line of a bad one: %s", (line, message) => {
    const text = jsonl({ role: "user", content: "fine", userId: "alice" }, line);
    expect(() => parseJsonl(text, "chat.jsonl", {})).toThrow(InvalidInputError);
    expect(() => parseJsonl(text, "chat.jsonl", {})).toThrow(message);
  });
});

test('regression: a line whose "__proto__" holds a scope is refused, not imported into that scope', () => {
  const text = jsonl('{"role":"user","content":"Bob\'s secret","__proto__":{"userId":"bob"}}');
  expect(() => parseJsonl(text, "chat.jsonl", { agentId: "importer" })).toThrow(/chat.jsonl:1: unknown key "__proto__"/);
  expect(() => parseJsonl(text, "chat.jsonl", {})).toThrow(/chat.jsonl:1: no scope/);
});

const locomo = [
  {
    sample_id: "conv-1",
    conversation: {
      speaker_a: "Ann",
      speaker_b: "Ben",
      session_2: [{ speaker: "Ann", dia_id: "D2:1", text: "Back from Rome" }],
      session_2_date_time: "1:56 pm on 8 May, 2023",
      session_1: [
        { speaker: "Ann", dia_id: "D1:1", text: "I adopted a cat" },
        { speaker: "Ben", dia_id: "D1:2", text: "Lovely!", blip_caption: "a photo of a cat", img_url: ["x"] },
        { speaker: "Ben", dia_id: "D1:3", text: "" },
      ],
      session_1_date_time: "29.12.2023, 22:42:04",
    },
    qa: [{ question: "?", answer: "!" }],
  },
];

describe("parseLocomo", () => {
  test("each conversation is the user sample_id; each turn is a message named by its speaker, dated by session, in session order", () => {
    const turns = parseLocomo(locomo, "locomo.json", { agentId: "bench" });
    expect(turns.map((turn) => [turn.scope, turn.message.name, turn.message.content, turn.timestamp, turn.metadata])).toEqual([
      [{ userId: "conv-1", agentId: "bench" }, "Ann", "I adopted a cat", "2023-12-29T22:42:04.000Z", { session: 1 }],
      [
        { userId: "conv-1", agentId: "bench" },
        "Ben",
        "Lovely! [shares a photo: a photo of a cat]",
        "2023-12-29T22:42:04.000Z",
        { session: 1 },
      ],
      [{ userId: "conv-1", agentId: "bench" }, "Ann", "Back from Rome", "2023-05-08T13:56:00.000Z", { session: 2 }],
    ]);
    expect(turns[0]?.source).toBe('locomo.json: conversation "conv-1", D1:1');
  });

  test("refuses --user (the sample_id is the user), unreadable dates and turns without a speaker", () => {
    expect(() => parseLocomo(locomo, "locomo.json", { userId: "x" })).toThrow(/--user cannot be used/);
    const badDate = structuredClone(locomo);
    badDate[0]!.conversation.session_1_date_time = "someday";
    expect(() => parseLocomo(badDate, "locomo.json", {})).toThrow(/session_1_date_time: cannot read the date "someday"/);
    const noSpeaker = structuredClone(locomo) as unknown as { conversation: { session_1: Record<string, unknown>[] } }[];
    delete noSpeaker[0]!.conversation.session_1[0]!.speaker;
    expect(() => parseLocomo(noSpeaker, "locomo.json", {})).toThrow(/session_1, turn 1: speaker/);
  });
});

describe("readImportFile", () => {
  test("tells JSONL from LoCoMo by content", async () => {
    const locomoFile = join(dir, "data.json");
    writeFileSync(locomoFile, JSON.stringify(locomo, null, 2));
    expect((await readImportFile(locomoFile)).format).toBe("locomo");
    const chat = join(dir, "chat.jsonl");
    writeFileSync(chat, jsonl({ role: "user", content: "one", userId: "a" }));
    expect(await readImportFile(chat)).toMatchObject({ format: "jsonl", turns: [{ message: { content: "one" } }] });
    const list = join(dir, "list.json");
    writeFileSync(list, JSON.stringify([{ role: "user", content: "x" }]));
    await expect(readImportFile(list)).rejects.toThrow(/not of LoCoMo conversations/);
    await expect(readImportFile(join(dir, "missing.jsonl"))).rejects.toThrow(/No file .*missing.jsonl/);
  });
});

describe("chunkTurns", () => {
  const turn = (content: string, scope = { userId: "alice" }, timestamp?: string): ImportTurn => ({
    scope,
    message: { role: "user", content },
    timestamp,
    source: content,
  });

  test("groups consecutive turns of one scope and timestamp, at most batchSize each", () => {
    const chunks = chunkTurns(
      [turn("a"), turn("b"), turn("c"), turn("d", { userId: "bob" }), turn("e", { userId: "bob" }, "2024-01-01T00:00:00.000Z"), turn("f")],
      2,
    );
    expect(chunks.map((chunk) => chunk.messages.map((m) => m.content).join(""))).toEqual(["ab", "c", "d", "e", "f"]);
    expect(chunks[4]?.sources).toEqual(["f", "f"]);
  });

  test("batches consecutive chunks of one scope, at most batchSize messages each; a lone chunk keeps its key; with infer, one chunk a batch", () => {
    const at = (hour: number) => `2024-01-01T${String(hour).padStart(2, "0")}:00:00.000Z`;
    // Each turn its own timestamp: chunks of one turn, batched up to three messages.
    const turns = ["a", "b", "c", "d", "e"].map((content, i) => turn(content, { userId: "alice" }, at(i)));
    const chunks = chunkTurns([...turns, turn("f", { userId: "bob" }, at(9)), turn("g", { userId: "alice" }, at(10))], 3);
    const batches = batchChunks(chunks, 3);
    const contents = (batch: ImportBatch) => batch.chunks.map((chunk) => chunk.messages[0]?.content).join("");
    expect(batches.map(contents)).toEqual(["abc", "de", "f", "g"]);
    expect(batches.map((batch) => batch.size)).toEqual([3, 2, 1, 1]);
    expect(batches[0]?.key).toMatch(/^import-batch:[0-9a-f]{64}$/);
    expect(batches[2]?.key).toBe(chunks[5]?.key);
    expect(batchChunks(structuredClone(chunks), 3).map((batch) => batch.key)).toEqual(batches.map((batch) => batch.key));
    expect(new Set(batches.map((batch) => batch.key)).size).toBe(4);
    // A chunk is never split: two chunks of two messages do not fit three.
    const pairs = chunkTurns(
      [turn("a", undefined, at(1)), turn("b", undefined, at(1)), turn("c", undefined, at(2)), turn("d", undefined, at(2))],
      3,
    );
    expect(batchChunks(pairs, 3).map((batch) => batch.size)).toEqual([2, 2]);
    expect(batchChunks(chunks, 3, { infer: true })).toHaveLength(chunks.length);
  });

  test("gives the same keys on every run, different keys to different content, and the nth copy of a chunk the nth key", () => {
    const turns = [turn("a"), turn("b"), turn("a"), turn("b")];
    const first = chunkTurns(turns, 2).map((chunk) => chunk.key);
    expect(chunkTurns(structuredClone(turns), 2).map((chunk) => chunk.key)).toEqual(first);
    expect(new Set(first).size).toBe(2);
    expect(first[0]).toMatch(/^import:[0-9a-f]{64}$/);
    expect(first[1]).toBe(`${first[0]}:1`);
    expect(chunkTurns([turn("a", { userId: "bob" }), turn("b", { userId: "bob" })], 2)[0]?.key).not.toBe(first[0]);
    expect(
      chunkTurns([turn("a", undefined, "2024-01-01T00:00:00.000Z"), turn("b", undefined, "2024-01-01T00:00:00.000Z")], 2)[0]?.key,
    ).not.toBe(first[0]);
  });
});

describe("relation lines of an export", () => {
  const scopes = [{ userId: "alice" }, { userId: "bob" }, { userId: "alice", agentId: "coder" }, { runId: "r1" }];

  test("property: a relation line is accepted only when every memory it names is a memory line above it of exactly its scope, and carries only those texts", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: scopes.length - 1 }), { minLength: 1, maxLength: 6 }),
        fc.nat({ max: scopes.length - 1 }),
        fc.uniqueArray(fc.nat({ max: 7 }), { minLength: 1, maxLength: 4 }),
        (memoryScopes, relationScope, named) => {
          const memories = memoryScopes.map((at, i) => ({ id: `m${i}`, memory: `memory ${i}`, ...scopes[at] }));
          const relation = {
            source: "Alice",
            relation: "manages",
            target: "Bob",
            memoryIds: named.map((i) => `m${i}`),
            ...scopes[relationScope],
          };
          const extras: ImportExtras = { profiles: [], relations: [] };
          const valid = named.every((i) => i < memories.length && memoryScopes[i] === relationScope);
          const parse = () => parseJsonl(jsonl(...memories, relation), "export.jsonl", {}, extras);
          if (!valid) {
            expect(parse).toThrow(InvalidInputError);
            expect(parse).toThrow(/export.jsonl:\d+: memoryIds: "m\d+" is (not the id of a memory line|a memory of another scope)/);
            return;
          }
          expect(parse()).toHaveLength(memories.length);
          expect(extras.relations).toEqual([
            {
              scope: scopes[relationScope],
              relation: { source: "Alice", relation: "manages", target: "Bob" },
              memories: named.map((i) => `memory ${i}`),
              source: `export.jsonl:${memories.length + 1}`,
            },
          ]);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("a relation line before the memory it names, or with no memoryIds, is refused with its line number", () => {
    const relation = { source: "A", relation: "r", target: "B", memoryIds: ["m1"], userId: "alice" };
    expect(() => parseJsonl(jsonl(relation, { id: "m1", memory: "A r B", userId: "alice" }), "x.jsonl", {})).toThrow(
      /x.jsonl:1: memoryIds: "m1" is not the id of a memory line above this one/,
    );
    expect(() => parseJsonl(jsonl({ ...relation, memoryIds: [] }), "x.jsonl", {})).toThrow(
      /x.jsonl:1: memoryIds: must name at least one memory/,
    );
    expect(() => parseJsonl(jsonl({ ...relation, weight: 1 }), "x.jsonl", {})).toThrow(/x.jsonl:1: unknown key "weight"/);
  });

  test("a relation whose every memory has expired is dropped with them", () => {
    const extras: ImportExtras = { profiles: [], relations: [] };
    const expired = { id: "m1", memory: "A r B", userId: "alice", expiresAt: "2000-01-01T00:00:00Z" };
    const turns = parseJsonl(
      jsonl(expired, { source: "A", relation: "r", target: "B", memoryIds: ["m1"], userId: "alice" }),
      "x.jsonl",
      {},
      extras,
    );
    expect(turns).toEqual([]);
    expect(extras.relations).toEqual([]);
  });
});
