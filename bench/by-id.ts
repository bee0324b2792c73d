/**
 * By-id calls for an id of another scope against an id that does not exist: both must look the
 * same to the caller (MemoryNotFoundError or null), and should take the same time. Prints the
 * median and mean of each call for both kinds of id, interleaved in rounds so that drift on a busy
 * machine touches both alike.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Memory } from "../src/memory.js";
import { deterministicEmbedder } from "../src/testing/deterministic-embedder.js";

const ROUNDS = Number(process.env.ROUNDS ?? 40);
const IDS = 200;
const dataDir = mkdtempSync(join(tmpdir(), "engram-bench-by-id-"));
const memory = new Memory({ dataDir, embedder: deterministicEmbedder(), writeBehind: { enabled: false } });
const others: string[] = [];
for (let i = 0; i < IDS; i++) others.push((await memory.add(`fact ${i} of bob`, { userId: "bob" })).results[0]?.id as string);
await memory.add("a fact of alice", { userId: "alice" });
const missing = others.map((_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`);
const asAlice = { userId: "alice" };

const calls: Record<string, (id: string) => Promise<unknown>> = {
  get: (id) => memory.get(id, asAlice),
  history: (id) => memory.history(id, asAlice),
  update: (id) => memory.update(id, "changed", asAlice),
  delete: (id) => memory.delete(id, asAlice),
  "delete (purge)": (id) => memory.delete(id, { ...asAlice, purge: true }),
};

async function sample(fn: (id: string) => Promise<unknown>, ids: string[], into: number[]): Promise<void> {
  for (const id of ids) {
    const start = process.hrtime.bigint();
    await fn(id).catch(() => {});
    into.push(Number(process.hrtime.bigint() - start) / 1000);
  }
}

const stats = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: sorted[sorted.length >> 1] as number, mean: values.reduce((a, b) => a + b, 0) / values.length };
};

console.log(`By-id calls as alice: ids of bob's memories vs ids that do not exist (SQLite, ${IDS} ids × ${ROUNDS} rounds), in µs`);
console.log("call             other p50  missing p50  other mean  missing mean");
for (const [name, fn] of Object.entries(calls)) {
  const other: number[] = [];
  const none: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await sample(fn, others, other);
    await sample(fn, missing, none);
  }
  const a = stats(other);
  const b = stats(none);
  console.log(
    `${name.padEnd(16)} ${a.p50.toFixed(2).padStart(9)} ${b.p50.toFixed(2).padStart(12)} ${a.mean.toFixed(2).padStart(11)} ${b.mean.toFixed(2).padStart(13)}`,
  );
}
await memory.close();
rmSync(dataDir, { recursive: true, force: true });
