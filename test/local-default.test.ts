import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { Memory } from "../src/index.js";

// The zero-config default: local embedding model and SQLite file, nothing injected.
const dataDir = mkdtempSync(join(tmpdir(), "engram-default-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

test("new Memory({ dataDir }) remembers and finds by meaning with the local model, and survives a restart", async () => {
  const memory = new Memory({ dataDir });
  await memory.add(
    [
      { role: "user", content: "I prefer Postgres for everything except analytics" },
      { role: "user", content: "My dog is called Rex" },
    ],
    { userId: "alice" },
  );
  const { results } = await memory.search("which database do I like?", { userId: "alice", limit: 1 });
  expect(results[0]?.memory).toBe("I prefer Postgres for everything except analytics");
  await memory.close();

  const reopened = new Memory({ dataDir });
  const { results: all } = await reopened.getAll({ userId: "alice" });
  expect(all.map((item) => item.memory).sort()).toEqual(["I prefer Postgres for everything except analytics", "My dog is called Rex"]);
  const { results: pets } = await reopened.search("pet", { userId: "alice", limit: 1 });
  expect(pets[0]?.memory).toBe("My dog is called Rex");
  await reopened.close();
});

test("regression: in a scope of a few memories the default cut-off returned nothing, related or not; it keeps what is similar and still injects nothing off-topic", async () => {
  const memory = new Memory({ dataDir: join(dataDir, "small-scope") });
  for (const fact of ["I'm vegetarian and I live in Lisbon.", "Sure, noted.", "I love hiking on weekends.", "My sister is called Ana."]) {
    await memory.add([{ role: "user", content: fact }], { userId: "bea" });
  }
  const found = async (query: string) => (await memory.search(query, { userId: "bea" })).results.map((item) => item.memory);
  expect(await found("What food do I eat?")).toEqual(["I'm vegetarian and I live in Lisbon."]);
  expect((await found("Where should I go for dinner tonight?"))[0]).toBe("I'm vegetarian and I live in Lisbon.");
  expect((await found("Recommend a restaurant near me"))[0]).toBe("I'm vegetarian and I live in Lisbon.");
  expect(await found("What is 2 + 2?")).toEqual([]);
  expect(await found("Which database should I use?")).toEqual([]);
  await memory.close();
});
