import { describe, expect, test, vi } from "vitest";
import { frameworkToolNames, toolText } from "../../integrations/shared/memory-tools.js";
import type { Memory } from "../../src/index.js";
import { memoriesClosedAfterEach } from "../support/memories.js";

/** The scope as the app gives it to the framework (tool context, RequestContext entries, run context). */
export type ToolScope = Record<string, string>;

/** What one turn's tool call came to, as the framework handed it back to the model. */
export interface ToolOutcome {
  /** The tool's result, when it answered. */
  output?: Record<string, unknown>;
  /** The error text the model saw, when the tool failed or its arguments were refused. */
  error?: string;
  /** The tools as the model was told about them: name → description and JSON schema of the arguments. */
  tools: Record<string, { description: string; schema: unknown }>;
}

/** How one framework runs its memory tools. */
export interface ToolDriver {
  name: string;
  /**
   * One turn through the real framework in which its mock model calls `tool` with `args`, then
   * answers "done". `scope` goes where the app puts it for this framework; undefined puts none.
   */
  call(memory: Memory, tool: string, args: Record<string, unknown>, scope: ToolScope | undefined): Promise<ToolOutcome>;
  /** The MissingScopeError message of this framework says where the scope goes. */
  scopeHint: RegExp;
}

const schemaKeys = (schema: unknown): string[] => {
  const keys: string[] = [];
  const walk = (node: unknown) => {
    if (node == null || typeof node !== "object") return;
    const properties = (node as { properties?: Record<string, unknown> }).properties;
    if (properties) for (const [key, value] of Object.entries(properties)) keys.push(key, ...schemaKeys(value));
    for (const value of Object.values(node)) if (value !== properties) walk(value);
  };
  walk(schema);
  return keys;
};

/** The scenarios every framework's memory tools must pass, through the real framework with its mock model. */
export function testToolScenarios(driver: ToolDriver): void {
  describe(`memory tools: ${driver.name}`, () => {
    const newMemory = memoriesClosedAfterEach();
    const alice = { userId: "alice" };

    test("the model is offered the MCP server's tool names and descriptions, with no scope field in any schema", async () => {
      const memory = newMemory();
      const { tools } = await driver.call(memory, "list_memories", {}, alice);
      for (const name of frameworkToolNames) {
        expect(tools[name]?.description).toBe(toolText[name].description);
        const keys = schemaKeys(tools[name]?.schema);
        for (const key of keys) expect(key).not.toMatch(/^(user|agent|run)(_?id)?$/i);
      }
    });

    test("remember, then recall: results are sized (few memories, each cut, 8-character ids) and say when nothing was found", async () => {
      const memory = newMemory();
      const remembered = await driver.call(memory, "add_memory", { text: "Ana is vegetarian" }, alice);
      expect(remembered.output).toEqual({
        remembered: [{ id: expect.stringMatching(/^[0-9a-f]{8}$/), memory: "Ana is vegetarian", event: "ADD" }],
      });
      expect((await memory.getAll(alice)).results.map((item) => item.memory)).toEqual(["Ana is vegetarian"]);
      for (let i = 0; i < 12; i++) await memory.add(`Long note ${i}: ${"vegetables and more ".repeat(60)}`, alice);
      const { output } = await driver.call(memory, "search_memories", { query: "vegetables" }, alice);
      const memories = output?.memories as { id: string; memory: string }[];
      expect(memories).toHaveLength(5);
      for (const item of memories) {
        expect(item.id).toMatch(/^[0-9a-f]{8}$/);
        expect(item.memory.length).toBeLessThanOrEqual(300);
      }
      const empty = await driver.call(newMemory(), "search_memories", { query: "anything" }, alice);
      expect(empty.output).toEqual({ memories: [], note: "No memories match this query." });
    });

    test("a model that passes another user's id in its arguments is refused, and never gets anything of theirs", async () => {
      const memory = newMemory();
      await memory.add("Bob's door code is 4711", { userId: "bob" });
      const search = vi.spyOn(memory, "search");
      for (const args of [
        { query: "door code", userId: "bob" },
        { query: "door code", user_id: "bob" },
      ]) {
        const outcome = await driver.call(memory, "search_memories", args, alice);
        expect(outcome.output).toBeUndefined();
        // Refused by the schema (each framework words it its own way; Agents JS only says the input is invalid).
        expect(outcome.error).toMatch(/userId|user_id|unrecognized|invalid/i);
        expect(JSON.stringify(outcome)).not.toContain("4711");
      }
      expect(search).not.toHaveBeenCalled();
      const own = await driver.call(memory, "search_memories", { query: "Bob's door code" }, alice);
      expect(own.output).toEqual({ memories: [], note: "No memories match this query." });
      const listed = await driver.call(memory, "list_memories", {}, alice);
      expect(JSON.stringify(listed.output)).not.toContain("4711");
    });

    test("forget with another scope's memory id looks exactly like a missing id, and deletes nothing", async () => {
      const memory = newMemory();
      const [bobs] = (await memory.add("Bob likes jazz", { userId: "bob" })).results;
      const bobsShort = (await driver.call(memory, "search_memories", { query: "jazz" }, { userId: "bob" })).output?.memories as {
        id: string;
      }[];
      const missing = await driver.call(memory, "delete_memory", { memoryId: "no-such-id" }, alice);
      for (const id of [bobs?.id as string, bobsShort[0]?.id as string]) {
        const other = await driver.call(memory, "delete_memory", { memoryId: id }, alice);
        expect(other.output).toEqual({ error: String(missing.output?.error).replace("no-such-id", id) });
        const updated = await driver.call(memory, "update_memory", { memoryId: id, text: "Bob hates jazz" }, alice);
        expect(updated.output).toEqual(other.output);
      }
      expect((await memory.getAll({ userId: "bob" })).results.map((item) => item.memory)).toEqual(["Bob likes jazz"]);
      // In its own scope the short id from a recall works.
      const own = await driver.call(memory, "delete_memory", { memoryId: bobsShort[0]?.id as string }, { userId: "bob" });
      expect(own.output).toEqual({ deleted: true, id: bobsShort[0]?.id });
      expect((await memory.getAll({ userId: "bob" })).results).toEqual([]);
    });

    test("without a scope in the call's context the tool fails with MissingScopeError before memory is touched", async () => {
      const memory = newMemory();
      const touched = ["add", "search", "getAll", "update", "delete", "profile", "setProfile"].map((method) =>
        vi.spyOn(memory, method as "add"),
      );
      const outcome = await driver.call(memory, "add_memory", { text: "remember me" }, undefined);
      expect(outcome.output).toBeUndefined();
      expect(outcome.error).toMatch(/MissingScopeError|needs a scope/);
      expect(outcome.error).toMatch(driver.scopeHint);
      for (const spy of touched) expect(spy).not.toHaveBeenCalled();
    });

    test("update_profile edits the profile of the call's scope (the user's, across runs) and nobody else's", async () => {
      const memory = newMemory();
      await memory.setProfile({ userId: "bob" }, "name: Bob");
      const outcome = await driver.call(
        memory,
        "update_profile",
        {
          changes: [
            { field: "name", value: "Ana" },
            { field: "diet", value: "vegetarian" },
          ],
        },
        { userId: "ana", runId: "s-1" },
      );
      expect(outcome.output).toEqual({ profile: "name: Ana\ndiet: vegetarian" });
      expect((await memory.profile({ userId: "ana" }))?.text).toBe("name: Ana\ndiet: vegetarian");
      expect((await memory.profile({ userId: "bob" }))?.text).toBe("name: Bob");
      const refused = await driver.call(
        memory,
        "update_profile",
        { changes: [{ field: "name", value: "Eve" }], userId: "bob" },
        { userId: "ana" },
      );
      expect(refused.output).toBeUndefined();
      expect((await memory.profile({ userId: "bob" }))?.text).toBe("name: Bob");
      const tooLong = await driver.call(memory, "update_profile", { text: "x ".repeat(2000) }, { userId: "ana" });
      expect(tooLong.output?.error).toMatch(/budget is 300/);
    });
  });
}
