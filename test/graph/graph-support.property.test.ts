import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, expect, test } from "vitest";
import { entityKey } from "../../src/graph/entity-key.js";
import { memoryGraph } from "../../src/graph/graph-index.js";
import { Memory } from "../../src/memory.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";

// The graph is derived state: after any sequence of adds, updates, deletes, purges and deleteAlls,
// each relation must be supported by exactly the live memories that state it, and nothing else may
// be left (no relation without support, no support from a deleted memory). The reference derives
// every live memory's relations again, with the same rule, and compares.

const directory = mkdtempSync(join(tmpdir(), "engram-graph-property-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const names = ["Alice", "Bob", "Carol", "Dave", "Lisbon"];
const sentence = fc
  .uniqueArray(fc.constantFrom(...names), { minLength: 1, maxLength: 3 })
  .map((picked) => `${picked.join(" and ")} met on ${picked.length} occasions`);
const scopes = [{ userId: "u1" }, { userId: "u1", agentId: "a" }, { userId: "u2" }];

type Op =
  | { kind: "add"; scope: number; text: string }
  | { kind: "update"; ref: number; text: string }
  | { kind: "delete"; ref: number; purge: boolean }
  | { kind: "deleteAll"; scope: number; purge: boolean };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("add" as const), scope: fc.nat({ max: 2 }), text: sentence }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("update" as const), ref: fc.nat(), text: sentence }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), ref: fc.nat(), purge: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deleteAll" as const), scope: fc.nat({ max: 2 }), purge: fc.boolean() }) },
);

const keyOf = (r: { source: string; relation: string; target: string }) =>
  JSON.stringify([entityKey(r.source), r.relation, entityKey(r.target)]);

test("graph support property: every relation is supported by exactly the live memories that state it", { timeout: 120_000 }, async () => {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 30 }), async (ops) => {
      const memory = new Memory({
        dataDir: join(directory, `run-${run++}`),
        embedder: deterministicEmbedder({ dimension: 32 }),
        writeBehind: { enabled: false },
        graph: true,
      });
      try {
        const live = new Map<string, { text: string; scope: (typeof scopes)[number] }>();
        for (const step of ops) {
          const ids = [...live.keys()];
          if (step.kind === "add") {
            const scope = scopes[step.scope] as (typeof scopes)[number];
            const { results } = await memory.add(step.text, scope);
            for (const r of results) if (r.event === "ADD") live.set(r.id, { text: r.memory, scope });
          } else if (step.kind === "update" && ids.length) {
            const id = ids[step.ref % ids.length] as string;
            const known = live.get(id) as { text: string; scope: (typeof scopes)[number] };
            await memory.update(id, step.text, known.scope);
            known.text = step.text;
          } else if (step.kind === "delete" && ids.length) {
            const id = ids[step.ref % ids.length] as string;
            await memory.delete(id, { ...(live.get(id)?.scope ?? {}), purge: step.purge } as never);
            live.delete(id);
          } else if (step.kind === "deleteAll") {
            const scope = scopes[step.scope] as (typeof scopes)[number];
            await memory.deleteAll({ ...scope, purge: step.purge });
            for (const [id, m] of live)
              if (Object.entries(scope).every(([k, v]) => (m.scope as Record<string, string>)[k] === v)) live.delete(id);
          }
        }
        for (const reader of [{ userId: "u1" }, { userId: "u2" }, { agentId: "a" }]) {
          const expected = new Map<string, string[]>();
          for (const [id, m] of live) {
            if (!Object.entries(reader).every(([k, v]) => (m.scope as Record<string, string>)[k] === v)) continue;
            for (const relation of (await memoryGraph({ id, text: m.text, ...m.scope }, undefined)).relations) {
              expected.set(keyOf(relation), [...(expected.get(keyOf(relation)) ?? []), id]);
            }
          }
          const stored = await memory.graph.relations(reader, { limit: 1000 });
          expect(new Map(stored.map((r) => [keyOf(r), [...r.memoryIds].sort()])), JSON.stringify(reader)).toEqual(
            new Map([...expected].map(([key, ids]) => [key, ids.sort()])),
          );
        }
      } finally {
        await memory.close();
      }
    }),
    { numRuns: 15 },
  );
});
