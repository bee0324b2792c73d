import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { MemoryNotFoundError } from "../../src/errors.js";
import { postgresGraph } from "../../src/graph/postgres-graph.js";
import { inMemoryHistory } from "../../src/history/in-memory-history.js";
import { postgresHistory } from "../../src/history/postgres-history.js";
import { Memory, type MemoryOptions } from "../../src/memory.js";
import type { Scope } from "../../src/scope.js";
import { chromaStore } from "../../src/stores/chroma-store.js";
import { inMemoryStore } from "../../src/stores/in-memory-store.js";
import { pgvectorStore } from "../../src/stores/pgvector-store.js";
import { qdrantStore } from "../../src/stores/qdrant-store.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";
import { type ChromaServer, startChroma } from "../support/chroma-server.js";
import { createDatabase, withClient } from "../support/databases.js";
import { type QdrantStandIn, startQdrantStandIn } from "../support/qdrant-stand-in.js";
import { faultSeed, recordFaults, scaled, scaledTimeout } from "./counts.js";

// Random sequences of operations over many overlapping scopes, checked step by step against a
// plain reference model: a memory is visible to a scope exactly when every id of the scope equals
// the memory's. Any cross-scope read, update or delete shows up as a difference from the model.
// It runs on every store: SQLite, in-memory, pgvector (PGlite over the wire) with PostgreSQL
// history, qdrantStore against the Qdrant REST stand-in (test/support/qdrant-stand-in.ts), and
// chromaStore against a real Chroma server (test/support/chroma-server.ts).

const users = ["u0", "u1", "u2", "u3", "u4", undefined];
const agents = ["a0", "a1", "a2", undefined];
const runs = ["r0", "r1", undefined];

const scopes: Scope[] = [];
for (const userId of users) {
  for (const agentId of agents) {
    for (const runId of runs) {
      const scope: Scope = {};
      if (userId) scope.userId = userId;
      if (agentId) scope.agentId = agentId;
      if (runId) scope.runId = runId;
      if (Object.keys(scope).length > 0) scopes.push(scope);
    }
  }
}

const words = ["apple", "banana", "cherry", "delta", "echo", "falcon", "granite", "harbor"];
// Each text names a person, so graph memory has entities (and, in turns of several messages, relations) to keep apart.
const names = ["Alice", "Bob", "Carol", "Dave"];
const texts = words.flatMap((first) => names.map((second) => `fact ${first} ${second}`));

type ScopeChoice = { mode: "own" | "part" | "any"; pick: number; mask: number };

type Operation =
  | { kind: "add"; scope: number; messages: { text: number; role: "user" | "assistant" | "system"; named: boolean }[] }
  | { kind: "get"; ref: number; scope: ScopeChoice }
  | { kind: "search"; scope: number; query: number; limit: number; cutoff: boolean }
  | { kind: "getAll"; scope: number }
  | { kind: "update"; ref: number; scope: ScopeChoice; text: number }
  | { kind: "delete"; ref: number; scope: ScopeChoice; purge: boolean }
  | { kind: "deleteAll"; scope: number; purge: boolean }
  | { kind: "history"; ref: number; scope: ScopeChoice }
  | { kind: "graph"; scope: number; name: number; depth: number };

const scopeChoice = fc.record({
  mode: fc.constantFrom("own" as const, "part" as const, "any" as const),
  pick: fc.nat({ max: scopes.length - 1 }),
  mask: fc.integer({ min: 1, max: 7 }),
});
const scopeIndex = fc.nat({ max: scopes.length - 1 });
const ref = fc.nat({ max: 10_000 });

const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("add" as const),
      scope: scopeIndex,
      messages: fc.array(
        fc.record({
          text: fc.nat({ max: texts.length - 1 }),
          role: fc.constantFrom("user" as const, "assistant" as const, "system" as const),
          named: fc.boolean(),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("get" as const), ref, scope: scopeChoice }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("search" as const),
      scope: scopeIndex,
      query: fc.nat({ max: words.length - 1 }),
      limit: fc.integer({ min: 1, max: 100 }),
      cutoff: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("getAll" as const), scope: scopeIndex }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant("update" as const), ref, scope: scopeChoice, text: fc.nat({ max: texts.length - 1 }) }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("delete" as const), ref, scope: scopeChoice, purge: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deleteAll" as const), scope: scopeIndex, purge: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("history" as const), ref, scope: scopeChoice }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("graph" as const),
      scope: scopeIndex,
      name: fc.nat({ max: names.length }),
      depth: fc.integer({ min: 1, max: 3 }),
    }),
  },
);

interface ModelMemory {
  text: string;
  scope: Scope;
}

interface ModelHistory {
  scope: Scope;
  events: { event: "ADD" | "UPDATE" | "DELETE"; previousValue: string | null; newValue: string | null }[];
}

const keys = ["userId", "agentId", "runId"] as const;

function inScope(record: Scope, scope: Scope): boolean {
  return keys.every((key) => scope[key] === undefined || record[key] === scope[key]);
}

function sameScope(a: Scope, b: Scope): boolean {
  return keys.every((key) => a[key] === b[key]);
}

function scopeFields(item: Scope): Scope {
  const scope: Scope = {};
  for (const key of keys) if (item[key] !== undefined) scope[key] = item[key];
  return scope;
}

const unknownId = "00000000-0000-4000-8000-000000000000";

async function notFound(promise: Promise<unknown>): Promise<boolean> {
  return promise.then(
    () => false,
    (error: unknown) => {
      if (MemoryNotFoundError.isInstance(error)) return true;
      throw error;
    },
  );
}

/** Runs `operations` against `memory` and the model, failing at the first difference. Returns how many ran, and the scopes they used. */
async function check(
  memory: Memory,
  operations: readonly Operation[],
  graph: boolean,
): Promise<{ operations: number; scopes: Set<string>; relations: number }> {
  const used = new Set<string>();
  let relationsSeen = 0;
  const live = new Map<string, ModelMemory>();
  const history = new Map<string, ModelHistory>();
  const created: string[] = [];

  // A by-id target: an id created earlier in this run (live or deleted), sometimes an unknown one.
  const target = (index: number) => (created.length === 0 || index % 11 === 0 ? unknownId : (created[index % created.length] as string));
  const choose = (id: string, choice: ScopeChoice): Scope => {
    const own = history.get(id)?.scope;
    if (!own || choice.mode === "any") return use(scopes[choice.pick] as Scope);
    if (choice.mode === "own") return use(own);
    // Part of the memory's own scope: still contains it.
    const present = keys.filter((key) => own[key] !== undefined);
    const kept = present.filter((_, i) => choice.mask & (1 << i));
    const part: Scope = {};
    for (const key of kept.length ? kept : present.slice(0, 1)) part[key] = own[key];
    return use(part);
  };
  function use(scope: Scope): Scope {
    used.add(JSON.stringify(scopeFields(scope)));
    return scope;
  }

  // A deleted memory's history, inside `scope`, that still holds text.
  const erasable = (id: string, scope: Scope) => {
    const entry = history.get(id);
    return (
      entry !== undefined &&
      inScope(entry.scope, scope) &&
      entry.events.some((event) => event.previousValue !== null || event.newValue !== null)
    );
  };

  let addCount = 0;
  for (const [step, op] of operations.entries()) {
    try {
      await apply(op, `step ${step} ${JSON.stringify(op)}`);
    } catch (error) {
      // Report the operations up to the failure: a replayable, readable counterexample.
      throw new Error(`${(error as Error).message}\nOperations up to the failure:\n${JSON.stringify(operations.slice(0, step + 1))}`, {
        cause: error,
      });
    }
  }
  return { operations: operations.length, scopes: used, relations: relationsSeen };

  async function apply(op: Operation, at: string): Promise<void> {
    switch (op.kind) {
      case "add": {
        const scope = use(scopes[op.scope] as Scope);
        const messages = op.messages.map((m) => ({ role: m.role, content: texts[m.text] as string, ...(m.named ? { name: "Ann" } : {}) }));
        // Each add an hour after the last (and long before any update): it never continues an earlier memory.
        const { results } = await memory.add(messages, { ...scope, timestamp: new Date(Date.UTC(2020, 0, 1) + addCount++ * 3_600_000) });
        // Consecutive messages of one named speaker (same role and name; system ones aside) form one memory.
        const runs: { role: string; name?: string; parts: string[] }[] = [];
        for (const message of messages) {
          if (message.role === "system") continue;
          const last = runs.at(-1);
          if (last?.name !== undefined && last.role === message.role && last.name === message.name) last.parts.push(message.content);
          else runs.push({ role: message.role, ...(message.name ? { name: message.name } : {}), parts: [message.content] });
        }
        const expected: string[] = [];
        for (const run of runs) {
          const text = `${run.name ? `${run.name}: ` : ""}${run.parts.join(" ")}`;
          if (!expected.includes(text)) expected.push(text);
        }
        expect(results.map((r) => r.memory).sort(), at).toEqual(expected.sort());
        for (const result of results) {
          const duplicates = [...live].filter(([, m]) => m.text === result.memory && sameScope(m.scope, scope)).map(([id]) => id);
          if (duplicates.length > 0) {
            expect(result.event, at).toBe("NONE");
            expect(duplicates, at).toContain(result.id);
          } else {
            expect(result.event, at).toBe("ADD");
            expect(history.has(result.id), at).toBe(false);
            live.set(result.id, { text: result.memory, scope });
            history.set(result.id, { scope, events: [{ event: "ADD", previousValue: null, newValue: result.memory }] });
            created.push(result.id);
          }
        }
        break;
      }
      case "get": {
        const id = target(op.ref);
        const scope = choose(id, op.scope);
        const item = await memory.get(id, scope);
        const model = live.get(id);
        if (model && inScope(model.scope, scope)) {
          expect(item?.memory, at).toBe(model.text);
          expect(scopeFields(item as Scope), at).toEqual(model.scope);
        } else {
          expect(item, at).toBeNull();
        }
        break;
      }
      case "search": {
        const scope = use(scopes[op.scope] as Scope);
        // With the cut-off, results are some of the visible memories; without it, all of them up to the limit.
        const { results } = await memory.search(`which ${words[op.query]}?`, {
          ...scope,
          limit: op.limit,
          ...(op.cutoff ? {} : { threshold: 0 }),
        });
        const visible = [...live].filter(([, m]) => inScope(m.scope, scope));
        expect(results.length, at).toBeLessThanOrEqual(op.limit);
        for (const item of results) {
          const model = live.get(item.id);
          expect(model, `${at}: result ${item.id} is not a live memory`).toBeDefined();
          expect(
            inScope((model as ModelMemory).scope, scope),
            `${at}: result ${item.id} of ${JSON.stringify(model?.scope)} is outside the scope`,
          ).toBe(true);
          expect(item.memory, at).toBe(model?.text);
          expect(scopeFields(item), at).toEqual(model?.scope);
        }
        if (!op.cutoff && visible.length <= op.limit) {
          expect(results.map((r) => r.id).sort(), at).toEqual(visible.map(([id]) => id).sort());
        }
        break;
      }
      case "getAll": {
        const scope = use(scopes[op.scope] as Scope);
        const { results } = await memory.getAll({ ...scope, limit: 1000 });
        const expected = [...live].filter(([, m]) => inScope(m.scope, scope)).map(([id, m]) => [id, m.text]);
        expect(results.map((r) => [r.id, r.memory]).sort(), at).toEqual(expected.sort());
        break;
      }
      case "update": {
        const id = target(op.ref);
        const scope = choose(id, op.scope);
        const text = texts[op.text] as string;
        const model = live.get(id);
        if (model && inScope(model.scope, scope)) {
          const item = await memory.update(id, text, scope);
          expect(item.memory, at).toBe(text);
          expect(scopeFields(item), at).toEqual(model.scope);
          if (text !== model.text) history.get(id)?.events.push({ event: "UPDATE", previousValue: model.text, newValue: text });
          model.text = text;
        } else {
          expect(await notFound(memory.update(id, text, scope)), at).toBe(true);
        }
        break;
      }
      case "delete": {
        const id = target(op.ref);
        const scope = choose(id, op.scope);
        const model = live.get(id);
        if (model && inScope(model.scope, scope)) {
          await memory.delete(id, { ...scope, purge: op.purge });
          live.delete(id);
          const events = history.get(id)?.events as ModelHistory["events"];
          if (op.purge) {
            for (const event of events) Object.assign(event, { previousValue: null, newValue: null });
            events.push({ event: "DELETE", previousValue: null, newValue: null });
          } else {
            events.push({ event: "DELETE", previousValue: model.text, newValue: null });
          }
        } else if (op.purge && model === undefined && erasable(id, scope)) {
          // A memory deleted earlier: its history still holds its text, which the purge erases.
          await memory.delete(id, { ...scope, purge: true });
          for (const event of history.get(id)?.events ?? []) Object.assign(event, { previousValue: null, newValue: null });
        } else {
          expect(await notFound(memory.delete(id, { ...scope, purge: op.purge })), at).toBe(true);
        }
        break;
      }
      case "deleteAll": {
        const scope = use(scopes[op.scope] as Scope);
        const doomed = [...live].filter(([, m]) => inScope(m.scope, scope));
        const { deleted } = await memory.deleteAll({ ...scope, purge: op.purge });
        expect(deleted, at).toBe(doomed.length);
        for (const [id, model] of doomed) {
          live.delete(id);
          history.get(id)?.events.push({ event: "DELETE", previousValue: op.purge ? null : model.text, newValue: null });
        }
        if (op.purge) {
          for (const entry of history.values()) {
            if (!inScope(entry.scope, scope)) continue;
            for (const event of entry.events) Object.assign(event, { previousValue: null, newValue: null });
          }
        }
        break;
      }
      case "graph": {
        if (!graph) break;
        // Every relation is supported only by live memories inside the scope, and names entities those memories name.
        const scope = use(scopes[op.scope] as Scope);
        const visible = [...live].filter(([, m]) => inScope(m.scope, scope));
        const known = [...names, "Ann"];
        const entity = known[op.name] as string;
        const relations = await memory.graph.relations(scope, { entity, depth: op.depth, limit: 1000 });
        const all = await memory.graph.relations(scope, { limit: 1000 });
        relationsSeen += all.length;
        for (const relation of [...relations, ...all]) {
          expect(relation.memoryIds.length, at).toBeGreaterThan(0);
          for (const id of relation.memoryIds) {
            const model = live.get(id);
            expect(model, `${at}: relation ${JSON.stringify(relation)} is supported by ${id}, not a live memory`).toBeDefined();
            expect(
              inScope((model as ModelMemory).scope, scope),
              `${at}: ${id} of ${JSON.stringify(model?.scope)} is outside the scope`,
            ).toBe(true);
            expect(model?.text.includes(relation.source) && model.text.includes(relation.target), at).toBe(true);
          }
        }
        // Search through the graph finds live memories of the scope only.
        const { results: reached } = await memory.search(`what about ${entity}?`, { ...scope, graph: true });
        for (const item of reached) {
          const model = live.get(item.id);
          expect(model, `${at}: graph search result ${item.id} is not a live memory`).toBeDefined();
          expect(inScope((model as ModelMemory).scope, scope), `${at}: graph search result ${item.id} is outside the scope`).toBe(true);
        }
        // A neighbor one relation away is named together with the entity in a visible memory.
        for (const neighbor of await memory.graph.neighbors(scope, entity, { depth: 1 })) {
          expect(
            visible.some(([, m]) => m.text.includes(entity) && m.text.includes(neighbor.entity)),
            `${at}: neighbor ${neighbor.entity} of ${entity} is named with it in no memory of the scope`,
          ).toBe(true);
        }
        break;
      }
      case "history": {
        const id = target(op.ref);
        const scope = choose(id, op.scope);
        const model = history.get(id);
        if (model && inScope(model.scope, scope)) {
          const entries = await memory.history(id, scope);
          expect(
            entries.map(({ event, previousValue, newValue }) => ({ event, previousValue, newValue })),
            at,
          ).toEqual(model.events);
        } else {
          expect(await notFound(memory.history(id, scope)), at).toBe(true);
        }
        break;
      }
    }
  }
}

const OPERATIONS = 500;

interface Backend {
  name: string;
  /** Its row in the fault suite's counts. */
  label: string;
  /** Runs of OPERATIONS operations each, before ENGRAM_FAULT_SCALE. */
  runs: number;
  /** The stores of one run's fresh Memory (with `graph` when graph memory is checked too). */
  stores(run: number): Promise<Partial<MemoryOptions>>;
}

const directory = mkdtempSync(join(tmpdir(), "engram-property-"));
const tables: string[] = [];
let standIn: QdrantStandIn | undefined;
let chroma: ChromaServer | undefined;
beforeAll(async () => {
  [standIn, chroma] = await Promise.all([startQdrantStandIn(), startChroma()]);
}, 120_000);
afterAll(async () => {
  rmSync(directory, { recursive: true, force: true });
  await standIn?.close();
  await chroma?.remove();
  if (tables.length) {
    await withClient(inject("pgliteUrl"), (client) =>
      client.query(`DROP TABLE IF EXISTS ${tables.flatMap((t) => [t, `${t}_meta`, `${t}_tombstones`]).join(", ")}`),
    );
  }
});

const backends: Backend[] = [
  {
    name: "sqlite store with graph memory",
    label: "SQLite",
    runs: 10,
    stores: async (run) => ({ dataDir: join(directory, `run-${run}`), graph: true }),
  },
  {
    name: "in-memory store",
    label: "in-memory",
    runs: 10,
    stores: async () => ({ vectorStore: inMemoryStore(), historyStore: inMemoryHistory() }),
  },
  {
    name: "pgvector store (PGlite) with PostgreSQL history and graph",
    label: "pgvector + PostgreSQL history",
    runs: 4,
    async stores(run) {
      const table = `isolation_${process.pid}_${run}`;
      tables.push(table);
      const historyUrl = await createDatabase(inject("postgresUrl"), "isolation");
      return {
        vectorStore: pgvectorStore({ connectionString: inject("pgliteUrl"), table }),
        historyStore: postgresHistory({ connectionString: historyUrl }),
        graph: { store: postgresGraph({ connectionString: historyUrl }) },
      };
    },
  },
  {
    name: "qdrant store against the Qdrant REST stand-in",
    label: "Qdrant stand-in",
    runs: 4,
    stores: async (run) => ({
      vectorStore: qdrantStore({ url: (standIn as QdrantStandIn).url, collection: `isolation_${run}` }),
      historyStore: inMemoryHistory(),
    }),
  },
  {
    name: "chroma store against a Chroma server",
    label: "Chroma",
    runs: 4,
    stores: async (run) => ({
      vectorStore: chromaStore({ url: (chroma as ChromaServer).url, collection: `isolation_${run}` }),
      historyStore: inMemoryHistory(),
    }),
  },
];

describe("scope isolation property: random operations over many overlapping scopes match a reference model", () => {
  test("has at least 50 distinct scopes, overlapping in user, agent and run", () => {
    expect(new Set(scopes.map((s) => JSON.stringify(s))).size).toBeGreaterThanOrEqual(50);
  });

  for (const backend of backends) {
    const runs = scaled(backend.runs);
    test(`${backend.name}: ${runs * OPERATIONS} operations, no cross-scope read, update or delete`, {
      timeout: scaledTimeout(600_000),
    }, async () => {
      let total = 0;
      let relations = 0;
      let graph = false;
      let run = 0;
      const used = new Set<string>();
      const seed = faultSeed();
      const details = await fc.check(
        fc.asyncProperty(fc.array(operation, { minLength: OPERATIONS, maxLength: OPERATIONS }), async (operations) => {
          const stores = await backend.stores(run++);
          const memory = new Memory({
            embedder: deterministicEmbedder({ dimension: 64 }),
            writeBehind: { enabled: false },
            ...stores,
          });
          try {
            graph = stores.graph !== undefined;
            const result = await check(memory, operations, graph);
            total += result.operations;
            relations += result.relations;
            for (const scope of result.scopes) used.add(scope);
          } finally {
            await memory.close();
          }
        }),
        // Operations are replayed from the reported prefix; shrinking 500-step runs costs minutes.
        { numRuns: runs, endOnFailure: true, seed },
      );
      recordFaults(`isolation property: ${backend.label}`, { operations: total, scopes: used });
      if (details.failed) {
        throw new Error(
          `Failed with seed ${details.seed} (replay with ENGRAM_FAULT_SEED=${details.seed}): ${(details.errorInstance as Error)?.message}`,
        );
      }
      expect(total).toBe(runs * OPERATIONS);
      expect(used.size).toBeGreaterThanOrEqual(50);
      // The graph checks saw relations to check, not only empty graphs.
      if (graph) expect(relations).toBeGreaterThan(0);
    });
  }
});
