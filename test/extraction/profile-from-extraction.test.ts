import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { type PlanWriter, wasApplied } from "../../src/apply-plan.js";
import { ExtractionError, type HistoryEntry, Memory } from "../../src/index.js";
import type { Plan } from "../../src/plan.js";
import { estimateTokens } from "../../src/profile.js";
import { deterministicEmbedder, inMemoryHistory, scriptedLanguageModel } from "../../src/testing/index.js";
import { setup } from "./setup.js";

const alice = { userId: "alice" };
const bob = { userId: "bob" };
/** The extraction model's reply: these facts added, and these profile edits. */
const withProfile = (facts: string[], profile: unknown) => ({
  json: { memory: facts.map((text) => ({ id: "new", event: "ADD", text })), profile },
});

let open: Memory[] = [];
afterEach(async () => {
  await Promise.all(open.map((memory) => memory.close()));
  open = [];
});
function track<T extends { memory: Memory }>(context: T): T {
  open.push(context.memory);
  return context;
}
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function memoryTexts(memory: Memory, scope: Record<string, string>) {
  return (await memory.getAll(scope)).results.map((item) => item.memory).sort();
}

describe("the profile kept current by the extraction call of add", () => {
  test("an add whose model output carries profile edits changes the profile, in the same one call, with history", async () => {
    const { memory, llm } = track(
      setup([
        withProfile(
          ["Name is Ana", "Wants answers in French"],
          [
            { field: "name", value: "Ana" },
            { field: "language", value: "French" },
          ],
        ),
        (prompt) => {
          // The current profile is shown, each line as a JSON string.
          expect(prompt.messages.at(-1)?.content).toContain('PROFILE:\n"name: Ana"\n"language: French"\n');
          return withProfile(
            ["Is vegetarian"],
            [
              { field: "diet", value: "vegetarian" },
              { field: "language", value: null },
            ],
          );
        },
      ]),
    );

    const first = await memory.add("Hi, I'm Ana. Please answer in French.", alice);
    expect(llm.prompts).toHaveLength(1);
    expect(llm.prompts[0]?.messages.at(-1)?.content).toContain("PROFILE:\n(none)\n");
    expect(llm.prompts[0]?.system).toContain('"profile": [{"field": "<name>", "value": "<value>"}]');
    expect(first.usage.llmCalls).toBe(1);
    expect(first.profile).toEqual({ text: "name: Ana\nlanguage: French", previousText: null });
    expect(await memoryTexts(memory, alice)).toEqual(["Name is Ana", "Wants answers in French"]);
    expect((await memory.profile(alice))?.fields).toEqual({ name: "Ana", language: "French" });

    const second = await memory.add("I'm vegetarian. English is fine, actually.", alice);
    expect(llm.prompts).toHaveLength(2);
    expect(second.profile).toEqual({ text: "name: Ana\ndiet: vegetarian", previousText: "name: Ana\nlanguage: French" });
    expect(await memory.profileHistory(alice)).toMatchObject([
      { event: "ADD", previousValue: null, newValue: "name: Ana\nlanguage: French" },
      { event: "UPDATE", previousValue: "name: Ana\nlanguage: French", newValue: "name: Ana\ndiet: vegetarian" },
    ]);
  });

  test("a reply with profile edits and no memory entries is complete: the profile changes, nothing else", async () => {
    const { memory, llm } = track(setup([{ json: { profile: [{ field: "name", value: "Ana" }] } }]));
    const result = await memory.add("Call me Ana", alice);
    expect(llm.prompts).toHaveLength(1);
    expect(result.results).toEqual([]);
    expect((await memory.profile(alice))?.text).toBe("name: Ana");
  });

  test("malformed profile edits are dropped with an error through the error hook, and lose no memory event", async () => {
    const { memory, errors } = track(
      setup([
        withProfile(
          ["Has a dog named Rex", "Is vegetarian"],
          [
            { field: "pet", value: 3 },
            "not an edit",
            { field: "!!", value: "x" },
            { value: "no field" },
            { field: "diet", value: "vegetarian" },
          ],
        ),
        withProfile(["Lives in Lyon"], "city: Lyon"),
      ]),
    );
    const result = await memory.add("My dog Rex and I are both vegetarian", alice);

    expect(result.results.map((item) => item.event)).toEqual(["ADD", "ADD"]);
    expect(await memoryTexts(memory, alice)).toEqual(["Has a dog named Rex", "Is vegetarian"]);
    expect((await memory.profile(alice))?.text).toBe("diet: vegetarian");
    expect(errors).toHaveLength(4);
    for (const { error, context } of errors) {
      expect(ExtractionError.isInstance(error)).toBe(true);
      expect(error.message).toMatch(/^Ignored (the )?profile edit/);
      expect(context).toMatchObject({ operation: "extract", willRetry: false });
    }
    expect(result.warnings).toHaveLength(4);

    const second = await memory.add("I live in Lyon", alice);
    expect(second.results.map((item) => item.memory)).toEqual(["Lives in Lyon"]);
    expect(errors.at(-1)?.error.message).toContain('Ignored the model\'s "profile"');
    expect((await memory.profile(alice))?.text).toBe("diet: vegetarian");
  });

  test("edits obey the profile budget: one that would exceed profile.maxTokens is dropped and reported, the others apply", async () => {
    const { memory, errors } = track(
      setup(
        [
          withProfile(
            ["Name is Ana"],
            [
              { field: "name", value: "Ana" },
              { field: "story", value: "a very long story ".repeat(20) },
              { field: "diet", value: "vegetarian" },
            ],
          ),
        ],
        { profile: { maxTokens: 20 } },
      ),
    );
    await memory.add("I'm Ana, vegetarian, and here is my life story", alice);
    expect((await memory.profile(alice))?.text).toBe("name: Ana\ndiet: vegetarian");
    expect(errors.map(({ error }) => error.message)).toEqual([expect.stringMatching(/"story".*budget is 20/)]);
  });

  test("a model proposing edits for another scope cannot: the scope comes from the add call only", async () => {
    const { memory, errors } = track(
      setup([
        {
          json: {
            userId: "bob",
            memory: [{ id: "new", event: "ADD", text: "Name is Ana" }],
            profile: [
              { field: "name", value: "Mallory", userId: "bob" },
              { field: "role", value: "admin", scope: { userId: "bob" } },
              { field: "userId", value: "bob" },
              { field: "user_id", value: "bob" },
              { field: "name", value: "Ana" },
            ],
          },
        },
      ]),
    );
    await memory.setProfile(bob, "name: Bob");
    await memory.add("I'm Ana", alice);

    expect((await memory.profile(alice))?.text).toBe("name: Ana");
    expect((await memory.profile(bob))?.text).toBe("name: Bob");
    expect(await memory.profileHistory(bob)).toHaveLength(1);
    expect(await memory.getAll(bob)).toMatchObject({ results: [] });
    expect(errors).toHaveLength(4);
  });

  test("edits go to the profile of exactly the add's scope: never a wider or a narrower one", async () => {
    const { memory } = track(setup([withProfile([], [{ field: "tone", value: "formal" }])]));
    const scoped = { userId: "alice", agentId: "support" };
    await memory.setProfile(alice, "name: Ana");
    const result = await memory.add("Please keep it formal with me here", scoped);

    expect(result.profile).toEqual({ text: "tone: formal", previousText: null });
    expect((await memory.profile(scoped))?.text).toBe("tone: formal");
    expect((await memory.profile(alice))?.text).toBe("name: Ana");
    expect(await memory.profile({ userId: "alice", agentId: "support", runId: "r1" })).toBeNull();
  });

  test("profileAcrossRuns: a run's add edits the profile of its user without the runId (the one adapters inject); by default the run's own", async () => {
    const edit = withProfile([], [{ field: "diet", value: "vegetarian" }]);
    const { memory } = track(setup([edit, edit, edit]));
    const run = { userId: "alice", runId: "r1" };

    await memory.add("I'm vegetarian", run);
    expect((await memory.profile(run))?.text).toBe("diet: vegetarian");
    expect(await memory.profile(alice)).toBeNull();

    const result = await memory.add("I'm vegetarian", { ...run, runId: "r2", profileAcrossRuns: true });
    expect(result.profile).toEqual({ text: "diet: vegetarian", previousText: null });
    expect((await memory.profile(alice))?.text).toBe("diet: vegetarian");
    expect(await memory.profile({ ...run, runId: "r2" })).toBeNull();

    // Without a userId there is nothing to widen to: the run is the boundary.
    await memory.add("I'm vegetarian", { agentId: "a", runId: "r3", profileAcrossRuns: true });
    expect((await memory.profile({ agentId: "a", runId: "r3" }))?.text).toBe("diet: vegetarian");
    expect(await memory.profile({ agentId: "a" })).toBeNull();
  });

  test("regression: a profile edit across runs is the last history entry of its plan, so a saved plan is still recognised as applied", async () => {
    const history = inMemoryHistory();
    const appended: HistoryEntry[][] = [];
    const append = history.append.bind(history);
    history.append = async (entries) => {
      appended.push([...entries]);
      return append(entries);
    };
    const { memory } = track(setup([withProfile(["Is vegetarian"], [{ field: "diet", value: "vegetarian" }])], { historyStore: history }));
    const run = { userId: "alice", runId: "r1" };
    await memory.add("I'm vegetarian", { ...run, profileAcrossRuns: true });

    const [entries] = appended;
    expect(entries?.map((entry) => entry.event)).toEqual(["ADD", "ADD"]);
    expect(entries?.at(-1)).toMatchObject({ memoryId: expect.stringMatching(/^profile:/), userId: "alice" });
    expect(entries?.at(-1)).not.toHaveProperty("runId");
    // The write-behind asks this of a saved plan after a write conflict, with the turn's scope.
    expect(await wasApplied({ history } as unknown as PlanWriter, { history: entries } as Plan, run)).toBe(true);
  });

  test("without an llm nothing is invented: an add stores the turn and leaves the profile as it is", async () => {
    const memory = new Memory({ dataDir: newDir(), embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
    open.push(memory);
    await memory.add("My name is Ana and I am vegetarian", alice);
    expect(await memory.profile(alice)).toBeNull();
    expect(await memory.profileHistory(alice)).toEqual([]);
  });

  test("profile.fromExtraction: false shows no profile and applies no edit", async () => {
    const { memory, llm } = track(
      setup([withProfile(["Name is Ana"], [{ field: "name", value: "Ana" }])], { profile: { fromExtraction: false } }),
    );
    const result = await memory.add("I'm Ana", alice);
    expect(llm.prompts[0]?.text).not.toContain("PROFILE");
    expect(result.results.map((item) => item.memory)).toEqual(["Name is Ana"]);
    expect(await memory.profile(alice)).toBeNull();
  });

  test("a turn queued for the write-behind edits the profile too (the edit travels in the saved plan)", async () => {
    const llm = scriptedLanguageModel([withProfile(["Name is Ana"], [{ field: "name", value: "Ana" }])]);
    const memory = new Memory({
      dataDir: newDir(),
      embedder: deterministicEmbedder(),
      llm,
      writeBehind: { pollIntervalMs: 10 },
    });
    open.push(memory);
    await memory.enqueue("I'm Ana", alice);
    expect(await memory.flush()).toMatchObject({ processed: 1, failed: 0 });
    expect((await memory.profile(alice))?.text).toBe("name: Ana");
    expect(await memoryTexts(memory, alice)).toEqual(["Name is Ana"]);
    expect(llm.prompts).toHaveLength(1);
  });

  test("property: whatever the model puts in profile, the memory events are kept, only the add's profile changes, within budget", async () => {
    const fieldName = fc.oneof(
      fc.constantFrom("name", "language", "diet", "userId", "agent_id", "scope", "__proto__", "constructor", ""),
      fc.string({ maxLength: 45 }),
    );
    const edit = fc.oneof(
      fc.record({ field: fieldName, value: fc.oneof(fc.string({ maxLength: 200 }), fc.constant(null)) }),
      fc.record({ field: fieldName, value: fc.anything(), userId: fc.constant("bob") }, { requiredKeys: ["field"] }),
      fc.anything(),
    );
    const profile = fc.oneof(fc.array(edit, { maxLength: 8 }), fc.dictionary(fieldName, fc.anything()), fc.anything());
    await fc.assert(
      fc.asyncProperty(profile, async (proposed) => {
        const { memory } = setup([withProfile(["Likes tea"], proposed)], { profile: { maxTokens: 40 } });
        try {
          await memory.setProfile(bob, "name: Bob");
          const result = await memory.add("I like tea", alice);
          expect(result.results.map((item) => item.memory)).toEqual(["Likes tea"]);
          expect((await memory.profile(bob))?.text).toBe("name: Bob");
          const text = (await memory.profile(alice))?.text;
          expect(estimateTokens(text ?? "")).toBeLessThanOrEqual(40);
          expect(result.profile?.text ?? null).toBe(result.profile ? (text ?? null) : null);
          for (const key of Object.keys((await memory.profile(alice))?.fields ?? {})) {
            expect(key).not.toMatch(/^(user|agent|run)[ _-]?id$|^scope$/i);
          }
        } finally {
          await memory.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});

function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "engram-profile-extraction-"));
  dirs.push(dir);
  return dir;
}
