import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AnswerReport,
  answerPrompt,
  answerTable,
  answerTokens,
  judgePrompt,
  readVerdict,
  runAnswerBench,
  tokenF1,
} from "../../bench/support/answer-accuracy.js";
import { readLocomo, type Sample } from "../../bench/support/locomo.js";
import { benchAnswerFor, type OpenAiStub, startOpenAiStub } from "../../bench/support/openai-stub.js";
import { defaultMemoryBlockLabel, memoryBlockTag, renderMemoryBlock } from "../../src/index.js";
import { deterministicEmbedder } from "../../src/testing/index.js";

// Two tiny conversations in the LoCoMo schema: a few turns, a few questions of two categories,
// one unanswerable question (only an adversarial answer) that is not asked.
const fixture = [
  {
    sample_id: "conv-1",
    conversation: {
      speaker_a: "Ann",
      speaker_b: "Bo",
      session_1_date_time: "1:56 pm on 8 May, 2023",
      session_1: [
        { speaker: "Ann", dia_id: "D1:1", text: "I moved to Lisbon last spring." },
        { speaker: "Bo", dia_id: "D1:2", text: "Nice! I still play the cello every evening." },
      ],
      session_2_date_time: "10:00 am on 20 May, 2023",
      session_2: [
        { speaker: "Bo", dia_id: "D2:1", text: "My sister Cara adopted a puppy named Miso." },
        { speaker: "Ann", dia_id: "D2:2", text: "I started learning Portuguese at a night school." },
      ],
    },
    qa: [
      { question: "Which city did Ann say she moved to?", answer: "Lisbon", evidence: ["D1:1"], category: 1 },
      { question: "What is the name of the puppy Cara adopted?", answer: "Miso", evidence: ["D2:1"], category: 2 },
      { question: "Which instrument does Bo play?", answer: "cello", evidence: ["D1:2"], category: 1 },
      { question: "What language is Ann learning?", answer: "Portuguese", evidence: ["D2:2"], category: 2 },
      { question: "How old is Bo's sister?", answer: "twelve", evidence: ["D2:1"], category: 2 },
      { question: "Which city did Bo move to?", adversarial_answer: "Lisbon", evidence: [], category: 5 },
      { question: "Where does Ann go to learn Portuguese?", answer: "a night school", evidence: ["D2:2"], category: 1 },
    ],
  },
  {
    sample_id: "conv-2",
    conversation: {
      speaker_a: "Dee",
      speaker_b: "Eli",
      session_1_date_time: "9:00 am on 1 June, 2023",
      session_1: [
        { speaker: "Dee", dia_id: "D1:1", text: "My favourite food is ramen." },
        { speaker: "Eli", dia_id: "D1:2", text: "I am training for a marathon in Berlin." },
      ],
    },
    qa: [{ question: "What is Dee's favourite food?", answer: "ramen", evidence: ["D1:1"], category: 1 }],
  },
];

describe("token F1 (LoCoMo / SQuAD normalisation)", () => {
  it("normalises an answer: lower case, no punctuation, no articles or 'and', Porter stems", () => {
    expect(answerTokens("The Big-Apple, and an apple.")).toEqual(["bigappl", "appl"]);
    expect(answerTokens("Running, a RUN!")).toEqual(["run", "run"]);
  });

  it("gives known values", () => {
    // predicted {cat, sat} against gold {cat, sat, down}: precision 1, recall 2/3.
    expect(tokenF1("The cat sat", "a cat sat down")).toBeCloseTo(0.8, 10);
    // predicted {she, wa, run} against {run}: precision 1/3, recall 1.
    expect(tokenF1("She was running", "runs")).toBeCloseTo(0.5, 10);
    expect(tokenF1("7 May, 2023!", "7 may 2023")).toBe(1);
    expect(tokenF1("Paris", "Lisbon")).toBe(0);
    expect(tokenF1("", "Lisbon")).toBe(0);
    expect(tokenF1("the", "")).toBe(1);
    // A token counts as many times as it is in both (multiset overlap): {run, run} against {run}.
    expect(tokenF1("run run", "run")).toBeCloseTo(2 / 3, 10);
  });
});

describe("the judge's verdict", () => {
  it("is the last CORRECT or WRONG label of the reply, and none when the reply has no upper-case label", () => {
    expect(readVerdict("Same city.\nCORRECT")).toBe("CORRECT");
    expect(readVerdict("It is not CORRECT: another city.\nWRONG")).toBe("WRONG");
    expect(readVerdict('{"label": "CORRECT"}')).toBe("CORRECT");
    expect(readVerdict("that seems correct")).toBeUndefined();
  });
});

describe("the stub's answers to bench:answer prompts", () => {
  it("answers with the memory sharing most keywords with the question, and judges by a shared keyword", () => {
    const block = renderMemoryBlock([
      { memory: "Bo: I play the cello.", createdAt: "2023-05-08T00:00:00Z", updatedAt: "" },
      { memory: "Ann: I moved to Lisbon.", createdAt: "2023-05-08T00:00:00Z", updatedAt: "" },
    ]);
    const turnsOf = (question: string) => {
      const { instructions, prompt } = answerPrompt(question, block);
      return [...instructions, { role: "user" as const, content: prompt }];
    };
    expect(benchAnswerFor(turnsOf("Which city did Ann say she moved to?"))).toBe("Ann: I moved to Lisbon.");
    expect(benchAnswerFor(turnsOf("Who won the cup?"))).toBe("Not mentioned.");
    const judge = (answer: string) => benchAnswerFor([{ role: "user", content: judgePrompt("Which city?", "Lisbon", answer) }]);
    expect(readVerdict(judge("She lives in lisbon now") ?? "")).toBe("CORRECT");
    expect(readVerdict(judge("Not mentioned.") ?? "")).toBe("WRONG");
    expect(benchAnswerFor([{ role: "user", content: "Hello there." }])).toBeUndefined();
  });
});

describe("bench:answer, offline against the stub", () => {
  let stub: OpenAiStub;
  let directory: string;
  let samples: Sample[];
  let report: AnswerReport;
  const answerTries = new Map<string, number>();

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), "engram-answer-test-"));
    writeFileSync(join(directory, "fixture.json"), JSON.stringify(fixture));
    samples = readLocomo(join(directory, "fixture.json")).samples;
    stub = await startOpenAiStub({ keepRequests: 100 });
    stub.setReply(({ turns }) => {
      const last = turns.at(-1)?.content ?? "";
      if (last.startsWith("Question: ")) answerTries.set(last, (answerTries.get(last) ?? 0) + 1);
      // The answer model fails for good on one question, and once on another.
      if (last === "Question: Which instrument does Bo play?") return { error: "model overloaded", status: 500 };
      if (last === "Question: What language is Ann learning?" && answerTries.get(last) === 1) return { error: "try again", status: 503 };
      // The judge gives no label for one question.
      if (last.includes("Gold answer: a night school")) return { text: "I cannot tell." };
      return undefined;
    });
    report = await runAnswerBench({
      samples,
      embedder: deterministicEmbedder(),
      // The cut-off is calibrated on a sentence-embedding model's similarities, not the test embedder's.
      threshold: 0,
      dataDir: join(directory, "run"),
      baseURL: stub.baseURL,
      model: "stub-answer",
      judgeModel: "stub-judge",
      retry: { attempts: 2, delayMs: 1 },
      concurrency: 2,
      progress: false,
    });
  });

  afterAll(async () => {
    await stub.close();
    rmSync(directory, { recursive: true, force: true });
  });

  const byQuestion = (text: string) => report.perQuestion.find((r) => r.question === text);

  it("asks every question that has a gold answer, skips the unanswerable one, and reports each category and overall", () => {
    expect(report.questions).toBe(7);
    expect(report.conversations).toBe(2);
    expect(report.skipped).toEqual({ adversarial: 1, noGoldAnswer: 0 });
    expect(Object.keys(report.groups)).toEqual(["category 1", "category 2", "overall"]);
    expect(report.groups["category 1"]?.questions).toBe(4);
    expect(report.groups["category 2"]?.questions).toBe(3);
    expect(report.model).toBe("stub-answer");
    expect(report.judgeModel).toBe("stub-judge");
  });

  it("grades each answer by the judge and by token F1", () => {
    const lisbon = byQuestion("Which city did Ann say she moved to?");
    expect(lisbon?.answer).toBe("Ann: I moved to Lisbon last spring.");
    expect(lisbon?.verdict).toBe("CORRECT");
    expect(lisbon?.j).toBe(1);
    // 7 answer tokens, 1 gold token, 1 shared: precision 1/7, recall 1.
    expect(lisbon?.f1).toBeCloseTo(0.25, 10);
    expect(byQuestion("How old is Bo's sister?")?.verdict).toBe("WRONG");
    expect(byQuestion("What is Dee's favourite food?")?.answer).toBe("Dee: My favourite food is ramen.");
    // Category 1: Lisbon and ramen correct, the cello and night-school questions failed.
    expect(report.groups["category 1"]?.j).toBeCloseTo(2 / 4, 10);
    // Category 2: Miso and Portuguese correct, the sister's age wrong.
    expect(report.groups["category 2"]?.j).toBeCloseTo(2 / 3, 10);
    expect(report.groups.overall?.j).toBeCloseTo(4 / 7, 10);
  });

  it("counts a question whose model call fails after its retries as failed and wrong, and a retried success as answered", () => {
    const cello = byQuestion("Which instrument does Bo play?");
    expect(cello?.failed).toMatch(/^answer: .*model overloaded/);
    expect(cello?.j).toBe(0);
    expect(cello?.f1).toBe(0);
    expect(cello?.answer).toBeUndefined();
    // Tries are bounded: two, then it gives up.
    expect(answerTries.get("Question: Which instrument does Bo play?")).toBe(2);
    expect(cello?.retries).toBe(1);

    const school = byQuestion("Where does Ann go to learn Portuguese?");
    expect(school?.failed).toMatch(/^judge: .*no CORRECT or WRONG label/);
    expect(school?.j).toBe(0);
    // The answer was given: its F1 stands ({night, school} among 8 answer tokens).
    expect(school?.f1).toBeCloseTo(0.4, 10);

    const portuguese = byQuestion("What language is Ann learning?");
    expect(portuguese?.failed).toBeUndefined();
    expect(portuguese?.retries).toBe(1);
    expect(portuguese?.verdict).toBe("CORRECT");

    expect(report.groups.overall?.failed).toBe(2);
    expect(report.groups["category 1"]?.failed).toBe(2);
    expect(report.groups["category 2"]?.failed).toBe(0);
    expect(report.failureExamples).toHaveLength(2);
  });

  it("answers from the product's labelled memory block, searched in the question's conversation only", () => {
    const answerRequests = stub
      .requests()
      .map((r) => (r.body as { messages?: { role: string; content: string }[] }).messages ?? [])
      .filter((messages) => messages.at(-1)?.content.startsWith("Question: "));
    expect(answerRequests.length).toBeGreaterThan(0);
    for (const messages of answerRequests) {
      const block = messages.find((m) => m.role === "system" && m.content.startsWith(`<${memoryBlockTag}`));
      expect(block?.content).toContain(`label="${defaultMemoryBlockLabel}"`);
    }
    const ramen = answerRequests.find((messages) => messages.at(-1)?.content === "Question: What is Dee's favourite food?");
    const lines = ramen?.flatMap((m) => m.content.split("\n")).filter((line) => line.startsWith("- ["));
    expect(lines?.length).toBeGreaterThan(0);
    for (const line of lines ?? []) expect(line).toMatch(/"(Dee|Eli): /);
  });

  it("counts tokens per question, block tokens and answer latency", () => {
    const overall = report.groups.overall;
    expect(overall?.promptTokens).toBeGreaterThan(0);
    expect(overall?.completionTokens).toBeGreaterThan(0);
    expect(overall?.judgePromptTokens).toBeGreaterThan(0);
    expect(overall?.blockTokens).toBeGreaterThan(0);
    expect(overall?.memories).toBeGreaterThan(0);
    expect(overall?.answerMsP50).toBeGreaterThanOrEqual(0);
    // The block is part of the answer prompt.
    expect(overall?.promptTokens).toBeGreaterThan(overall?.blockTokens ?? Number.POSITIVE_INFINITY);
    const printed = answerTable(report);
    expect(printed).toMatch(/^group\s+questions\s+failed\s+J %\s+F1 %/);
    expect(printed).toMatch(/overall\s+7\s+2\s+57\.1\s/);
  });

  it("counts a question whose memory search fails as failed and wrong, without asking the model", async () => {
    stub.setReply(undefined);
    stub.resetCounters();
    const embedder = deterministicEmbedder();
    const failing = {
      dimension: embedder.dimension,
      embed: (texts: string[]) =>
        texts.includes("Which city did Ann say she moved to?")
          ? Promise.reject(new Error("embedding backend down"))
          : embedder.embed(texts),
    };
    const run = await runAnswerBench({
      samples,
      embedder: failing,
      threshold: 0,
      dataDir: join(directory, "failing-search"),
      baseURL: stub.baseURL,
      model: "stub",
      limit: 1,
      retry: { attempts: 1 },
      progress: false,
    });
    expect(run.questions).toBe(1);
    expect(run.groups.overall?.failed).toBe(1);
    expect(run.groups.overall?.j).toBe(0);
    expect(run.perQuestion[0]?.failed).toMatch(/^search: /);
    expect(stub.counters().llmRequests).toBe(0);
  });

  it("with a limit, asks the first questions only, ingests only their conversations, and its token counts are the endpoint's", async () => {
    stub.setReply(undefined);
    stub.resetCounters();
    const limited = await runAnswerBench({
      samples,
      embedder: deterministicEmbedder(),
      // The cut-off is calibrated on a sentence-embedding model's similarities, not the test embedder's.
      threshold: 0,
      dataDir: join(directory, "limited"),
      baseURL: stub.baseURL,
      model: "stub",
      limit: 2,
      progress: false,
    });
    expect(limited.questions).toBe(2);
    expect(limited.conversations).toBe(1);
    expect(limited.perQuestion.map((r) => r.question)).toEqual([
      "Which city did Ann say she moved to?",
      "What is the name of the puppy Cara adopted?",
    ]);
    const counters = stub.counters();
    expect(counters.llmRequests).toBe(4);
    const sum = (pick: (r: (typeof limited.perQuestion)[number]) => number | undefined) =>
      limited.perQuestion.reduce((total, r) => total + (pick(r) ?? 0), 0);
    expect(sum((r) => r.answerUsage.input) + sum((r) => r.judgeUsage.input)).toBe(counters.promptTokens);
    expect(sum((r) => r.answerUsage.output) + sum((r) => r.judgeUsage.output)).toBe(counters.completionTokens);
  });
});
