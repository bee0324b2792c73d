// Ingests conversations of a LoCoMo-schema file into one Memory, each conversation in its own
// scope (userId = sample_id), session by session, with the session date as the turn timestamp.
// Shared by the benchmarks that search these conversations afterwards (recall, answer accuracy).
import { join } from "node:path";
import type { LanguageModel } from "ai";
import { type Embedder, Memory, type MemoryOptions, sqliteStore } from "../../src/index.js";
import type { KeywordSearchable, VectorStore } from "../../src/stores/vector-store.js";
import type { Sample } from "./locomo.js";
import { ingestTurns } from "./raw-ingest.js";

export interface Ingested {
  memory: Memory;
  store: VectorStore & KeywordSearchable;
  embedder: Embedder;
  /** Per conversation: memory id → the dia_ids it stands for. */
  sources: Map<string, Map<string, Set<string>>>;
  seconds: number;
  adds: number;
  /** Turns no memory holds (filler). */
  dropped: number;
  llmCalls: number;
  inputTokens: number;
  outputTokens: number;
}

export interface IngestOptions {
  /** `raw` stores each turn verbatim (infer off, the speaker as the message's name); `extract` adds it through the extraction model `llm`. */
  mode: "raw" | "extract";
  samples: readonly Sample[];
  /** Where the SQLite store and the history go. */
  dataDir: string;
  embedder: Embedder;
  /** The extraction model; needed by `extract`. */
  llm?: LanguageModel;
  /** Progress on stdout when it is a terminal. @default true */
  progress?: boolean;
  /** Graph memory on (`new Memory({ graph: true })`). @default false */
  graph?: boolean;
}

export async function ingestLocomo({
  mode,
  samples,
  dataDir,
  embedder,
  llm,
  progress = true,
  graph = false,
}: IngestOptions): Promise<Ingested> {
  const store = sqliteStore({ path: join(dataDir, "engram.db") });
  // Batches of 100 turns per conversation, ten conversations at once, queue at one local model:
  // a call may wait minutes for its turn, which is not a fault here.
  const base: MemoryOptions = {
    dataDir,
    embedder,
    vectorStore: store,
    writeBehind: { enabled: false },
    timeouts: { embedMs: 600_000 },
    ...(graph ? { graph: true } : {}),
  };
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
  const started = performance.now();
  const usage = { llmCalls: 0, inputTokens: 0, outputTokens: 0 };
  let added = 0;
  const turnsTotal = samples.reduce((sum, s) => sum + s.sessions.reduce((n, session) => n + session.turns.length, 0), 0);
  try {
    const { sources, adds, dropped } = await ingestTurns(memory, samples, {
      infer: mode === "extract",
      onAdd: (used) => {
        usage.llmCalls += used.llmCalls;
        usage.inputTokens += used.inputTokens;
        usage.outputTokens += used.outputTokens;
        if (showProgress && ++added % 100 === 0) process.stdout.write(`\r\x1b[K  ${mode}: ${added}/${turnsTotal} turns`);
      },
    });
    if (showProgress) process.stdout.write("\r\x1b[K");
    return { memory, store, embedder, sources, seconds: (performance.now() - started) / 1000, adds, dropped, ...usage };
  } catch (error) {
    await memory.close();
    throw error;
  }
}
