// Ingests conversations of a LoCoMo-schema file into one Memory, each conversation in its own
// scope (userId = sample_id), session by session, with the session date as the turn timestamp.
// Shared by the benchmarks that search these conversations afterwards (recall, answer accuracy).
import { join } from "node:path";
import type { LanguageModel } from "ai";
import { type Embedder, Memory, type MemoryOptions, sqliteStore } from "../../src/index.js";
import type { KeywordSearchable, VectorStore } from "../../src/stores/vector-store.js";
import type { Sample } from "./locomo.js";

export interface Ingested {
  memory: Memory;
  store: VectorStore & KeywordSearchable;
  embedder: Embedder;
  /** Per conversation: memory id → the dia_ids it stands for. */
  sources: Map<string, Map<string, Set<string>>>;
  seconds: number;
  adds: number;
  llmCalls: number;
  inputTokens: number;
  outputTokens: number;
  /** The memories were copied from another store's run, not ingested: `seconds` is the copy's. */
  copied?: boolean;
}

export interface IngestOptions {
  /** `raw` stores each turn verbatim ("speaker: text", infer off); `extract` adds it through the extraction model `llm`. */
  mode: "raw" | "extract";
  samples: readonly Sample[];
  /** Where the SQLite store and the history go. */
  dataDir: string;
  embedder: Embedder;
  /** The extraction model; needed by `extract`. */
  llm?: LanguageModel;
  /** Progress on stdout when it is a terminal. @default true */
  progress?: boolean;
}

export async function ingestLocomo({ mode, samples, dataDir, embedder, llm, progress = true }: IngestOptions): Promise<Ingested> {
  const store = sqliteStore({ path: join(dataDir, "engram.db") });
  const base: MemoryOptions = { dataDir, embedder, vectorStore: store, writeBehind: { enabled: false } };
  let memory: Memory;
  if (mode === "extract") {
    if (!llm) throw new Error("extract mode needs an extraction model (pass --llm <OpenAI-compatible base URL>)");
    try {
      memory = new Memory({ ...base, llm } as MemoryOptions);
    } catch (error) {
      throw new Error(`extract mode needs Engram's extraction (new Memory({ llm })): ${(error as Error).message}`);
    }
  } else {
    memory = new Memory(base);
  }
  const showProgress = progress && process.stdout.isTTY;
  const sources = new Map<string, Map<string, Set<string>>>();
  const started = performance.now();
  let adds = 0;
  const usage = { llmCalls: 0, inputTokens: 0, outputTokens: 0 };
  const turnsTotal = samples.reduce((sum, s) => sum + s.sessions.reduce((n, session) => n + session.turns.length, 0), 0);
  // Conversations are ingested concurrently (each in order, in its own scope), so that their
  // turns are embedded in batches.
  const ingestSample = async (sample: Sample) => {
    const owned = new Map<string, Set<string>>();
    sources.set(sample.sampleId, owned);
    for (const session of sample.sessions) {
      for (const [index, turn] of session.turns.entries()) {
        const content = turn.speaker ? `${turn.speaker}: ${turn.text}` : turn.text;
        // The session's date, plus the turn's index in milliseconds: memories then list in turn
        // order (not by random id), so rankings that tie are the same in every run.
        const timestamp = session.date ? new Date(session.date.getTime() + index) : undefined;
        const result = await memory.add([{ role: "user", content }], {
          userId: sample.sampleId,
          infer: mode === "extract",
          metadata: { dia_id: turn.diaId },
          ...(timestamp ? { timestamp } : {}),
        });
        adds++;
        usage.llmCalls += result.usage.llmCalls;
        usage.inputTokens += result.usage.inputTokens;
        usage.outputTokens += result.usage.outputTokens;
        for (const item of result.results) {
          if (item.event === "DELETE") owned.delete(item.id);
          else owned.set(item.id, (owned.get(item.id) ?? new Set()).add(turn.diaId));
        }
        if (showProgress && adds % 100 === 0) process.stdout.write(`\r\x1b[K  ${mode}: ${adds}/${turnsTotal} turns`);
      }
    }
  };
  try {
    await Promise.all(samples.map(ingestSample));
  } catch (error) {
    await memory.close();
    throw error;
  }
  if (showProgress) process.stdout.write("\r\x1b[K");
  return { memory, store, embedder, sources, seconds: (performance.now() - started) / 1000, adds, ...usage };
}
