// The conversation every framework example has: alice and bob each talk in a first session,
// then come back in a second one (a new runId). The second session only knows what Engram recalls.
// In a third, the agent changes alice's profile with a memory tool, and the next reply uses it.
import { rmSync } from "node:fs";
import { Memory } from "engram";

/** One chat turn through the framework: the reply to `text` from `userId` in session `runId`. */
export type Say = (userId: string, runId: string, text: string) => Promise<string>;

/** A fresh memory for an example: the local embedding model and a SQLite file, offline. */
export function exampleMemory(name: string): Memory {
  const dataDir = `.engram/examples/${name}`;
  rmSync(dataDir, { recursive: true, force: true });
  return new Memory({ dataDir });
}

export async function twoSessions({ title, memory, say }: { title: string; memory: Memory; say: Say }): Promise<void> {
  console.log(title);
  const turn = async (userId: string, runId: string, text: string) => {
    console.log(`${userId}: ${text}`);
    console.log(`bot:   ${(await say(userId, runId, text)).replace(/\n/g, "\n       ")}`);
  };

  console.log("\n── session 1 ──");
  await turn("alice", "session-1", "I'm vegetarian and I live in Lisbon.");
  await turn("bob", "session-1", "I love sushi and I live in Berlin.");
  // The turns were queued off the reply path; a real app never waits, the example does so the
  // next session surely finds them.
  await memory.flush();

  console.log("\n── session 2: a new runId, the chat history is gone ──");
  await turn("alice", "session-2", "Where should I go for dinner tonight?");
  await turn("bob", "session-2", "Where should I go for dinner tonight?");

  console.log("\n── session 3: the agent edits alice's profile with its update_profile tool ──");
  await turn("alice", "session-3", "Call me Ali from now on.");
  console.log(
    `(alice's profile is now ${JSON.stringify((await memory.profile({ userId: "alice" }))?.text ?? null)}; it is in every call's block)`,
  );
  await turn("alice", "session-3", "What should I cook tonight?");
  await memory.flush();

  const { results } = await memory.getAll({ userId: "alice" });
  const leaked = (await memory.search("vegetarian Lisbon", { userId: "bob" })).results.filter((item) => item.memory.includes("vegetarian"));
  console.log(`\nEngram holds ${results.length} memories of alice; a search in bob's scope finds ${leaked.length} of them.`);
  await memory.close();
}
