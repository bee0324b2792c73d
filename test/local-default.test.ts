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
