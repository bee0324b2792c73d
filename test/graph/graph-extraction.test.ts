import { Output } from "ai";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import { describe, expect, test } from "vitest";
import { extractionOutputSchema, graphExtractionOutputSchema, parseExtractionOutput } from "../../src/extraction/output.js";
import { extractionInstructions } from "../../src/extraction/prompt.js";
import { sqliteGraph } from "../../src/graph/sqlite-graph.js";
import { deserialisePlan, PlanBuilder, serialisePlan } from "../../src/plan.js";
import { defaultRuntime } from "../../src/runtime.js";
import { setup } from "../extraction/setup.js";

type Triple = [source: string, relation: string, target: string];
type Entry = [id: string, event: "ADD" | "UPDATE" | "DELETE" | "NONE", text: string, relations?: Triple[]];

/** The model's reply with graph memory on: each entry with the relations its fact states. */
const reply = (...entries: Entry[]) => ({
  json: {
    memory: entries.map(([id, event, text, relations]) => ({
      id,
      event,
      text,
      ...(relations ? { relations: relations.map(([source, relation, target]) => ({ source, relation, target })) } : {}),
    })),
  },
});

const triples = (relations: { source: string; relation: string; target: string }[]) =>
  relations.map(({ source, relation, target }) => `${source} -${relation}- ${target}`).sort();

const withGraph = () => ({ graph: { store: sqliteGraph({ path: ":memory:" }) } });

describe("graph memory with an extraction model: one call per add returns facts and their relations", () => {
  test("the relations of each fact are stored with the fact as their support, in one model call", async () => {
    const scope = { userId: "alice" };
    const { memory, llm, usages } = setup(
      [
        reply(
          ["new", "ADD", "Manages Bob", [["user", "manages", "Bob"]]],
          ["new", "ADD", "Bob reports to Carol", [["Bob", "reports to", "Carol"]]],
        ),
      ],
      withGraph(),
    );
    const { results } = await memory.add("I manage Bob. He reports to Carol.", scope);
    expect(llm.prompts).toHaveLength(1);
    expect(usages[0]?.usage.llmCalls).toBe(1);
    // The one call asked for relations, in its instructions and its output schema.
    expect(llm.prompts[0]?.system).toContain('"relations"');
    expect(JSON.stringify(llm.prompts[0]?.responseFormat)).toContain("relations");
    expect(await memory.graph.relations(scope, { entity: "bob" })).toEqual([
      { source: "user", relation: "manages", target: "Bob", memoryIds: [results[0]?.id] },
      { source: "Bob", relation: "reports to", target: "Carol", memoryIds: [results[1]?.id] },
    ]);
    // Who reports to the people the user manages: two steps from "user".
    expect(await memory.graph.neighbors(scope, "user", { depth: 2 })).toEqual([
      { entity: "Bob", depth: 1 },
      { entity: "Carol", depth: 2 },
    ]);
    await memory.close();
  });

  test("an UPDATE re-derives the memory's relations from the model's, a DELETE removes them", async () => {
    const scope = { userId: "alice" };
    const { memory } = setup(
      [
        reply(["new", "ADD", "Lives in Paris", [["user", "lives in", "Paris"]]]),
        reply(["0", "UPDATE", "Lives in Berlin", [["user", "lives in", "Berlin"]]]),
        reply(["0", "DELETE", "Lives in Berlin", []]),
      ],
      withGraph(),
    );
    await memory.add("I live in Paris", scope);
    expect(triples(await memory.graph.relations(scope))).toEqual(["user -lives in- Paris"]);
    await memory.add("I moved to Berlin", scope);
    expect(triples(await memory.graph.relations(scope))).toEqual(["user -lives in- Berlin"]);
    await memory.add("I left Berlin", scope);
    expect(await memory.graph.relations(scope)).toEqual([]);
    expect((await memory.graph.history(scope)).map(({ event, target }) => `${event} ${target}`)).toEqual([
      "ADD Paris",
      "DELETE Paris",
      "ADD Berlin",
      "DELETE Berlin",
    ]);
    await memory.close();
  });

  test("an entry without relations (a model that left them out) falls back to the names its text mentions", async () => {
    const scope = { userId: "alice" };
    const { memory } = setup([reply(["new", "ADD", "Has a sister, Anna, who lives in Lyon"])], withGraph());
    await memory.add("My sister Anna lives in Lyon", scope);
    expect(triples(await memory.graph.relations(scope))).toEqual(["Anna -co-occurs- Lyon"]);
    await memory.close();
  });

  test("relations the model gives that are not three non-empty strings are left out, the fact is kept", () => {
    const parsed = parseExtractionOutput(
      JSON.stringify({
        memory: [
          {
            id: "new",
            event: "ADD",
            text: "Manages Bob",
            relations: [
              { source: "user", relation: "MANAGES", target: "Bob" },
              { source: "", relation: "x", target: "y" },
              "junk",
              { source: 1 },
            ],
          },
        ],
      }),
    );
    expect(parsed).toEqual({
      ok: true,
      warnings: [],
      decisions: [{ id: "new", event: "ADD", text: "Manages Bob", relations: [{ source: "user", relation: "manages", target: "Bob" }] }],
    });
  });

  test("without graph memory the prompt and output schema are unchanged: no relations asked for", async () => {
    const { memory, llm } = setup([reply(["new", "ADD", "Manages Bob"])]);
    await memory.add("I manage Bob", { userId: "alice" });
    expect(llm.prompts[0]?.system).not.toContain('"relations"');
    expect(JSON.stringify(llm.prompts[0]?.responseFormat)).not.toContain("relations");
    await memory.close();
  });

  test.each(["user", "user-and-assistant"] as const)(
    "with graph memory the fixed part (instructions + output schema) still stays under 2,000 o200k tokens (%s)",
    async (extractFrom) => {
      const count = async (graph: boolean) => {
        const schema = graph ? graphExtractionOutputSchema : extractionOutputSchema;
        const format = await Output.object({ schema, name: "memory_events" }).responseFormat;
        return countTokens(extractionInstructions({ extractFrom, graph })) + countTokens(JSON.stringify(format));
      };
      const [off, on] = [await count(false), await count(true)];
      expect(on).toBeGreaterThan(off);
      expect(on).toBeLessThanOrEqual(2_000);
    },
  );
});

describe("graph memory through the write-behind outbox and on failure", () => {
  test("an enqueued turn's saved plan carries the model's relations: the worker stores them", async () => {
    const scope = { userId: "alice" };
    const { memory } = setup([reply(["new", "ADD", "Manages Bob", [["user", "manages", "Bob"]]])], {
      ...withGraph(),
      writeBehind: { enabled: true, pollIntervalMs: 60_000 },
    });
    await memory.enqueue("I manage Bob", scope);
    expect(await memory.flush({ timeoutMs: 10_000 })).toMatchObject({ processed: 1, failed: 0 });
    expect(triples(await memory.graph.relations(scope))).toEqual(["user -manages- Bob"]);
    await memory.close();
  });

  test("a plan saved in the outbox keeps the model's relations when it is read back (a worker that re-applies it after a crash)", () => {
    const plan = new PlanBuilder(defaultRuntime).plan;
    plan.graph = { "memory-1": [{ source: "user", relation: "manages", target: "Bob" }] };
    expect(deserialisePlan(serialisePlan(plan)).graph).toEqual(plan.graph);
    expect(deserialisePlan(serialisePlan(new PlanBuilder(defaultRuntime).plan))).not.toHaveProperty("graph");
  });

  test("a graph store that fails: the add still succeeds and the failure goes to onError as operation graph", async () => {
    const failing = sqliteGraph({ path: ":memory:" });
    failing.write = async () => {
      throw new Error("disk on fire");
    };
    const { memory, errors } = setup([reply(["new", "ADD", "Manages Bob", [["user", "manages", "Bob"]]])], {
      graph: { store: failing },
      retry: { retries: 1, minDelayMs: 1, maxDelayMs: 1 },
    });
    const { results } = await memory.add("I manage Bob", { userId: "alice" });
    expect(results.map((r) => r.event)).toEqual(["ADD"]);
    expect(await memory.get(results[0]?.id as string, { userId: "alice" })).not.toBeNull();
    const graphErrors = errors.filter((e) => e.context.operation === "graph");
    expect(graphErrors.map((e) => e.context.willRetry)).toEqual([true, false]);
    expect(graphErrors[1]?.error.message).toContain("disk on fire");
    await memory.close();
  });
});
