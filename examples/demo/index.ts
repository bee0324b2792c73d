// The offline demo: no key, no network. Memories for two users, scoped search, isolation, history.
import { rmSync } from "node:fs";
import { Memory, MissingScopeError } from "engram";

const dataDir = ".engram/demo";
rmSync(dataDir, { recursive: true, force: true });
const memory = new Memory({ dataDir });

console.log("Engram offline demo: local embedding model, one SQLite file in", dataDir, "\n");

await memory.add(
  [
    { role: "user", content: "I prefer Postgres for everything except analytics, where I use ClickHouse." },
    { role: "user", content: "I am allergic to peanuts." },
    { role: "user", content: "My daughter Mia starts school in September." },
  ],
  { userId: "alice" },
);
await memory.add(
  ["I am vegetarian.", "I work on the payments team in Berlin."].map((content) => ({ role: "user" as const, content })),
  {
    userId: "bob",
  },
);
console.log("Added 3 memories for alice and 2 for bob.\n");

for (const [userId, query] of [
  ["alice", "Which database should I use for a dashboard?"],
  ["alice", "Any food restrictions?"],
  ["bob", "Any food restrictions?"],
] as const) {
  const { results } = await memory.search(query, { userId, limit: 2 });
  console.log(`search as ${userId}: "${query}"`);
  for (const item of results) console.log(`  ${item.score?.toFixed(3)}  ${item.memory}`);
}

console.log("\nIsolation: bob searching for alice's allergy sees only his own memories:");
const { results: bobs } = await memory.search("peanut allergy", { userId: "bob" });
for (const item of bobs) console.log(`  ${item.score?.toFixed(3)}  ${item.memory}`);

const { results } = await memory.search("database", { userId: "alice", limit: 1 });
const id = results[0]!.id;
console.log(`\nalice's memory ${id.slice(0, 8)}… as bob:`, await memory.get(id, { userId: "bob" }));

await memory.update(id, "I prefer Postgres for everything, analytics included.", { userId: "alice" });
console.log("\nHistory of that memory after an update:");
for (const entry of await memory.history(id, { userId: "alice" })) {
  console.log(`  ${entry.event.padEnd(6)} ${JSON.stringify(entry.previousValue)} → ${JSON.stringify(entry.newValue)}`);
}

try {
  await memory.search("anything", {});
} catch (error) {
  if (MissingScopeError.isInstance(error)) console.log(`\nA call without scope is refused: ${error.message}`);
}

await memory.close();
