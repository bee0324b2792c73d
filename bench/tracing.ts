// What the OpenTelemetry spans cost Memory.search and Memory.add (`npm run bench:tracing -- [--rounds 5] [--calls 400]`).
//
// Three Memory instances on the in-memory store and history, with the deterministic embedder (so
// the time is Engram's own, not a model's), each holding the same 300 memories:
//   off           telemetry: { enabled: false }: nothing wrapped, the same path as without
//                 @opentelemetry/api installed
//   api, no SDK   @opentelemetry/api installed, no tracer provider registered (the default for an
//                 app that does not trace): spans are non-recording
//   recording     a BasicTracerProvider with a span processor that drops what it gets
// Rounds alternate the three, so load on the machine falls on each alike; the median round counts.
import { parseArgs } from "node:util";
import { trace } from "@opentelemetry/api";
import { BasicTracerProvider, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Memory } from "../src/index.js";
import { deterministicEmbedder, inMemoryHistory, inMemoryStore } from "../src/testing/index.js";
import { currentLoad, figure, machine, percentile, table } from "./support/report.js";

const { values: options } = parseArgs({
  options: { rounds: { type: "string", default: "5" }, calls: { type: "string", default: "400" } },
});
const rounds = Number(options.rounds);
const calls = Number(options.calls);
const info = machine();
console.log(`Tracing overhead: ${rounds} rounds of ${calls} searches and ${calls / 4} adds per configuration; load ${info.load.join(" ")}`);

const dropAll: SpanProcessor = { onStart() {}, onEnd() {}, forceFlush: async () => {}, shutdown: async () => {} };
const provider = new BasicTracerProvider({ spanProcessors: [dropAll] });

const fresh = (telemetry: ConstructorParameters<typeof Memory>[0]) =>
  new Memory({
    embedder: deterministicEmbedder(),
    vectorStore: inMemoryStore(),
    historyStore: inMemoryHistory(),
    writeBehind: { enabled: false },
    ...telemetry,
  });
const configurations = [
  { name: "off (as without @opentelemetry/api)", memory: fresh({ telemetry: { enabled: false } }) },
  { name: "api, no SDK registered", memory: fresh({}) },
  { name: "recording (SDK, spans dropped)", memory: fresh({ telemetry: { tracer: provider.getTracer("engram") } }) },
];
const topics = ["tea", "coffee", "Lisbon", "Berlin", "piano", "hiking", "Postgres", "cats", "running", "novels"];
for (const { memory } of configurations) {
  await memory.addMany(
    Array.from({ length: 300 }, (_, i) => ({
      messages: `Memory ${i}: I like ${topics[i % 10]} and ${topics[(i * 7) % 10]}`,
      userId: "u",
      infer: false,
    })),
  );
}
trace.disable(); // no global provider: "api, no SDK" stays non-recording

const perCall: Record<string, { search: number[]; add: number[] }> = {};
for (let round = 0; round < rounds; round++) {
  for (const { name, memory } of configurations) {
    const started = performance.now();
    for (let i = 0; i < calls; i++) await memory.search(`what about ${topics[i % 10]}?`, { userId: "u", threshold: 0 });
    const searched = performance.now();
    for (let i = 0; i < calls / 4; i++)
      await memory.add(`Round ${round} note ${i} about ${topics[i % 10]}`, { userId: `u-${round}`, infer: false });
    const added = performance.now();
    perCall[name] ??= { search: [], add: [] };
    perCall[name].search.push(((searched - started) / calls) * 1000);
    perCall[name].add.push(((added - searched) / (calls / 4)) * 1000);
  }
}
const base = perCall[configurations[0]?.name as string] as { search: number[]; add: number[] };
const rows = [["configuration", "search µs/call (median round)", "vs off", "add µs/call (median round)", "vs off"]];
for (const { name } of configurations) {
  const { search, add } = perCall[name] as { search: number[]; add: number[] };
  const s = percentile(search, 50);
  const a = percentile(add, 50);
  rows.push([
    name,
    figure(s, 0),
    `${figure((s / percentile(base.search, 50) - 1) * 100, 1)} %`,
    figure(a, 0),
    `${figure((a / percentile(base.add, 50) - 1) * 100, 1)} %`,
  ]);
}
console.log(table(rows));
console.log(`Load average before ${info.load.join(" ")}, after ${currentLoad().join(" ")} (${info.cores} cores)`);
for (const { memory } of configurations) await memory.close();
