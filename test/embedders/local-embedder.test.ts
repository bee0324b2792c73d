import { spawnSync } from "node:child_process";
import { expect, test } from "vitest";
import { localEmbedder } from "../../src/index.js";

const texts = Array.from({ length: 37 }, (_, i) => `Sentence number ${i}: ${i % 2 ? "my dog is called Rex" : "I prefer Postgres"}`);

test("in a worker thread, the model gives the same vectors as on this thread, one per text, in order, across batches", async () => {
  const inWorker = localEmbedder({ batchSize: 8 });
  const here = localEmbedder({ worker: false });
  const [fromWorker, fromHere] = await Promise.all([inWorker.embed(texts), here.embed(texts)]);
  expect(fromWorker).toHaveLength(texts.length);
  for (let i = 0; i < texts.length; i++) {
    const a = fromWorker[i] as Float32Array;
    const b = fromHere[i] as Float32Array;
    expect(a).toBeInstanceOf(Float32Array);
    expect(a).toHaveLength(512);
    for (let d = 0; d < 512; d += 64) expect(a[d]).toBeCloseTo(b[d] as number, 5);
  }
});

test("texts of mixed lengths, embedded in calls sorted by length, come back in the order given", async () => {
  const mixed = [
    "We finally adopted a grey cat from the shelter down the road last Saturday, and she already rules the flat.",
    "Rex",
    "I prefer Postgres for everything except analytics",
    "Lisbon",
    "My sister moved to Porto in May to start a job at a small design studio",
    "ok then",
  ];
  for (const worker of [true, false]) {
    const embedder = localEmbedder({ batchSize: 2, worker });
    const together = await embedder.embed(mixed);
    const alone = await Promise.all(mixed.map(async (text) => (await embedder.embed([text]))[0] as Float32Array));
    for (let i = 0; i < mixed.length; i++) {
      const a = together[i] as Float32Array;
      const b = alone[i] as Float32Array;
      for (let d = 0; d < 512; d += 32) expect(a[d]).toBeCloseTo(b[d] as number, 4);
    }
  }
});

test("with two model threads, a call's texts come back in order with the vectors one thread gives", async () => {
  const one = localEmbedder({ batchSize: 4 });
  const two = localEmbedder({ batchSize: 4, threads: 2 });
  const [fromOne, fromTwo] = [await one.embed(texts), await two.embed(texts)];
  expect(fromTwo).toHaveLength(texts.length);
  for (let i = 0; i < texts.length; i++) {
    for (let d = 0; d < 512; d += 64) expect((fromTwo[i] as Float32Array)[d]).toBeCloseTo((fromOne[i] as Float32Array)[d] as number, 5);
  }
});

test("concurrent requests (a long batch and single queries) each get their own vectors", async () => {
  const embedder = localEmbedder({ batchSize: 4 });
  const [single] = await embedder.embed(["I prefer Postgres"]);
  const [bulk, one, two] = await Promise.all([
    embedder.embed(texts),
    embedder.embed(["I prefer Postgres"]),
    embedder.embed(["my dog is called Rex"]),
  ]);
  expect(bulk).toHaveLength(texts.length);
  expect(Array.from(one?.[0] as Float32Array)).toEqual(Array.from(single as Float32Array));
  expect(Array.from(two?.[0] as Float32Array)).not.toEqual(Array.from(single as Float32Array));
});

test("a search's two texts (the query, and the query without the names) go ahead of a write's batches waiting for the model", async () => {
  const embedder = localEmbedder({ batchSize: 4 });
  await embedder.embed(["warm up"]);
  // Ten batches queued at once; the search's call comes after them.
  let bulkDone = false;
  const bulk = embedder.embed(texts).then((vectors) => {
    bulkDone = true;
    return vectors;
  });
  const search = await embedder.embed(["What pets does Vanessa have?", "What pets does have?"]);
  expect(search).toHaveLength(2);
  expect(bulkDone).toBe(false);
  expect(await bulk).toHaveLength(texts.length);
});

test("an idle worker does not keep the process alive", () => {
  // A script that embeds once and returns: it must exit by itself, without process.exit().
  const script = `
    const { localEmbedder } = await import(${JSON.stringify(new URL("../../dist/index.js", import.meta.url).href)});
    const [vector] = await localEmbedder().embed(["hello"]);
    console.log(vector.length);
  `;
  const child = spawnSync(process.execPath, ["--disable-warning=ExperimentalWarning", "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 60_000,
  });
  expect(child.stderr).toBe("");
  expect(child.signal).toBeNull();
  expect(child.status).toBe(0);
  expect(child.stdout.trim()).toBe("512");
});

test("a batch size that is not a positive integer is a ConfigError", () => {
  expect(() => localEmbedder({ batchSize: 0 })).toThrow(/batchSize must be a positive integer/);
});

test("a thread count that is not a whole number from 1 to 16 is a ConfigError", () => {
  for (const threads of [0, 1.5, 17]) expect(() => localEmbedder({ threads })).toThrow(/threads must be a whole number from 1 to 16/);
});
