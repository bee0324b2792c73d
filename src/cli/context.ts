import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { localEmbedder } from "../embedders/local-embedder.js";
import { ConfigError, type EngramError } from "../errors.js";
import type { AiSdkLanguageModel } from "../extraction/language-model.js";
import { loadNodeSqlite } from "../internal/node-sqlite.js";
import { Memory } from "../memory.js";
import type { ErrorContext } from "../types.js";

/** Exit codes: documented in the README, stable for scripts. */
export const exitCodes = {
  ok: 0,
  /** A system failure (store, embedder, a failed import), or a cancelled confirmation. */
  failure: 1,
  /** A usage error: bad flags or input, a missing scope, an unknown id. Fix the command and re-run. */
  usage: 2,
  /** The database file is damaged: see `engram check` and docs/operations.md. */
  corrupt: 3,
  /** Stopped by SIGINT / SIGTERM (an import resumes when run again). */
  interrupted: 130,
} as const;

/** The exit code an action sets when it ends without an error but not successfully. */
export interface RunState {
  code: number;
  /** --json was given: usage errors too are reported as JSON. */
  json?: boolean;
}

/** Adds one command (with its options and action) to the program. */
export type RegisterCommand = (program: Command, state: RunState) => void;

export interface GlobalOptions {
  dataDir: string;
  json?: boolean;
}

export const globalsOf = (command: Command) => command.optsWithGlobals() as GlobalOptions;

const toStderr = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
let sink: (line: string) => void = toStderr;

/** Writes a background message to stderr, or wherever `redirectLog` sends it. */
export function log(line: string): void {
  sink(line);
}

/** The import's progress bar takes the messages so lines do not break the bar; returns the undo. */
export function redirectLog(to: (line: string) => void): () => void {
  const previous = sink;
  sink = to;
  return () => {
    sink = previous;
  };
}

function onError(error: EngramError, context: ErrorContext): void {
  const next =
    context.willRetry === false ? " Giving up: the turn stays in the outbox (engram pending)." : context.willRetry ? " Retrying." : "";
  log(`engram: ${context.operation}: ${error.message}${next}`);
}

/** @throws ConfigError when the data dir has no database (unless `create`). */
export function assertDatabase(dataDir: string): void {
  if (!existsSync(join(dataDir, "engram.db"))) {
    throw new ConfigError({
      message: `No memories in ${dataDir}: there is no engram.db there. Check --data-dir (or ENGRAM_DATA_DIR).`,
    });
  }
}

interface OpenOptions {
  create?: boolean;
  worker?: boolean;
  /** The extraction model, for --infer. */
  llm?: AiSdkLanguageModel;
  /** Graph memory on (default: when the data dir already keeps a graph, so writes keep it in step). */
  graph?: boolean;
}

/** True when engram.db holds graph memory's tables: some app or import wrote it with `graph: true`. */
export function hasGraph(dataDir: string): boolean {
  const file = join(dataDir, "engram.db");
  if (!existsSync(file)) return false;
  const { DatabaseSync } = loadNodeSqlite();
  let db: InstanceType<typeof DatabaseSync> | undefined;
  try {
    db = new DatabaseSync(file, { readOnly: true });
    return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'memory_graph_edges'").get() !== undefined;
  } catch {
    // A file that cannot be read this way: the Memory's own open reports why.
    return false;
  } finally {
    db?.close();
  }
}

function openMemory(globals: GlobalOptions, { create = false, worker = false, llm, graph }: OpenOptions = {}): Memory {
  if (!create) assertDatabase(globals.dataDir);
  // A delete or update made without the graph would leave relations that no memory supports.
  const withGraph = graph ?? hasGraph(globals.dataDir);
  return new Memory({
    dataDir: globals.dataDir,
    ...(llm ? { llm } : {}),
    ...(withGraph ? { graph: true } : {}),
    // Only `import` processes the outbox; a lease short enough that a killed import resumes quickly.
    writeBehind: worker ? { enabled: true, leaseMs: 5_000 } : { enabled: false },
    // An import is bound by the embedding model: one model thread per core (at most 4) shares it out.
    ...(worker ? { embedder: localEmbedder({ threads: Math.max(1, Math.min(4, availableParallelism())) }) } : {}),
    // An import embeds up to 100 texts a call: on a busy machine the local model may need more
    // than the default 30 s for them, and an import had better wait than retry the same call.
    ...(worker ? { timeouts: { embedMs: 300_000 } } : {}),
    onError,
  });
}

/** Opens the memory in the data dir, runs `run` with it and closes it, whatever happens. */
export async function withMemory<T>(globals: GlobalOptions, options: OpenOptions, run: (memory: Memory) => Promise<T>) {
  const memory = openMemory(globals, options);
  try {
    return await run(memory);
  } finally {
    await memory.close();
  }
}
