// Graph memory, offline: facts about a team are remembered with a (scripted) extraction model whose
// one call per add also returns each fact's relations; then a traversal answers "who reports to the
// people Alice manages?" from the stored relations, each answer with the memory that states it.
//
//   npm run example:graph
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Memory } from "engram";
import { deterministicEmbedder, scriptedLanguageModel } from "engram/test";

// What the scripted model extracts from each message: the fact and the relations it states.
const extracted: Record<string, { text: string; relations: [string, string, string][] }[]> = {
  "Alice manages Bob and Carol.": [
    { text: "Alice manages Bob", relations: [["Alice", "manages", "Bob"]] },
    { text: "Alice manages Carol", relations: [["Alice", "manages", "Carol"]] },
  ],
  "Bob manages Dan, our new designer.": [{ text: "Bob manages Dan, a designer", relations: [["Bob", "manages", "Dan"]] }],
  "Carol manages Erin, and Erin manages Frank.": [
    { text: "Carol manages Erin", relations: [["Carol", "manages", "Erin"]] },
    { text: "Erin manages Frank", relations: [["Erin", "manages", "Frank"]] },
  ],
  "Dan lives in Lisbon.": [{ text: "Dan lives in Lisbon", relations: [["Dan", "lives in", "Lisbon"]] }],
};

const llm = scriptedLanguageModel((prompt) => {
  const said = prompt.messages
    .at(-1)
    ?.content.split("\n")
    .find((line) => line.startsWith("USER: "));
  const message = said ? (JSON.parse(said.slice("USER: ".length)) as string) : "";
  const memory = (extracted[message] ?? []).map(({ text, relations }) => ({
    id: "new",
    event: "ADD",
    text,
    relations: relations.map(([source, relation, target]) => ({ source, relation, target })),
  }));
  return { json: { memory } };
});

const dataDir = mkdtempSync(join(tmpdir(), "engram-graph-example-"));
const memory = new Memory({ dataDir, graph: true, llm, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
const team = { userId: "acme" };

try {
  console.log("offline: scripted extraction model, graph memory on\n");
  let calls = 0;
  for (const message of Object.keys(extracted)) {
    const { results, usage } = await memory.add(message, team);
    calls += usage.llmCalls;
    console.log(`add ${JSON.stringify(message)} → ${results.map((r) => r.memory).join("; ")}`);
  }
  console.log(`(${calls} model calls for ${Object.keys(extracted).length} adds: one each, facts and relations together)\n`);

  const question = "Who reports to the people Alice manages?";
  console.log(question);
  // Two steps of "manages" from Alice: her direct reports, then theirs.
  const relations = await memory.graph.relations(team, { entity: "Alice", relation: "manages", depth: 2 });
  const direct = relations.filter((r) => r.source === "Alice").map((r) => r.target);
  for (const relation of relations.filter((r) => direct.includes(r.source))) {
    const [supporting] = relation.memoryIds;
    const stated = supporting ? (await memory.get(supporting, team))?.memory : undefined;
    console.log(`  ${relation.target} (reports to ${relation.source}; memory: "${stated}")`);
  }

  console.log(`\nNeighbors of Dan: ${(await memory.graph.neighbors(team, "Dan")).map((n) => n.entity).join(", ")}`);
  const other = await memory.graph.relations({ userId: "someone-else" }, { entity: "Alice", depth: 2 });
  console.log(`Isolation check: another scope sees ${other.length} of these relations.`);
} finally {
  await memory.close();
  rmSync(dataDir, { recursive: true, force: true });
}
