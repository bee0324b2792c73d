// The benchmark drives each memory library in its own child process (its own Node.js, its own
// event loop) over stdin/stdout, one JSON object per line. The runner times every library call
// itself, so the figures exclude this pipe.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { createInterface } from "node:readline";

export interface RunnerMessage {
  role: "user" | "assistant";
  content: string;
}

/** The operations every runner understands. */
export interface RunnerOperations {
  open: {
    args: { baseURL: string; dataDir: string; dimension: number; llmModel: string; embeddingModel: string; extract: boolean };
    result: { library: string; version: string; node: string; extract: boolean; note?: string };
  };
  add: { args: { messages: RunnerMessage[]; userId: string; infer: boolean }; result: { ms: number; stored: number } };
  search: { args: { query: string; userId: string; limit: number }; result: { ms: number; memories: string[] } };
  /** Stores texts verbatim (no LLM), `batchSize` messages per add. */
  fill: { args: { texts: string[]; userId: string; batchSize: number }; result: { ms: number; stored: number } };
  close: { args: Record<string, never>; result: { blockedRequests: number } };
}

export interface Runner {
  readonly name: string;
  call<K extends keyof RunnerOperations>(op: K, args: RunnerOperations[K]["args"]): Promise<RunnerOperations[K]["result"]>;
  /** Ends the child process. */
  stop(): Promise<void>;
}

/** Starts a runner process; its stderr goes to `logFile`. */
export function startRunner(
  name: string,
  command: string,
  args: string[],
  { env, logFile }: { env?: NodeJS.ProcessEnv; logFile: string },
): Runner {
  const child: ChildProcess = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
  const log = createWriteStream(logFile, { flags: "a" });
  child.stderr?.pipe(log);
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let sequence = 0;
  let exited: Error | undefined;
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on("line", (line) => {
    let message: { id?: number; ok?: boolean; result?: unknown; error?: string };
    try {
      message = JSON.parse(line);
    } catch {
      log.write(`[stdout] ${line}\n`);
      return;
    }
    const waiter = message.id === undefined ? undefined : pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id as number);
    if (message.ok) waiter.resolve(message.result);
    else waiter.reject(new Error(`${name} runner: ${message.error}`));
  });
  child.on("exit", (code, signal) => {
    exited = new Error(`${name} runner exited (code ${code}, signal ${signal}); see ${logFile}`);
    for (const waiter of pending.values()) waiter.reject(exited);
    pending.clear();
  });
  return {
    name,
    call(op, callArgs) {
      if (exited) return Promise.reject(exited);
      const id = ++sequence;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.stdin?.write(`${JSON.stringify({ id, op, args: callArgs })}\n`);
      });
    },
    async stop() {
      if (!exited) {
        const done = new Promise((resolve) => child.once("exit", resolve));
        child.stdin?.end();
        const timer = setTimeout(() => child.kill("SIGTERM"), 10_000);
        await done;
        clearTimeout(timer);
      }
      await new Promise((resolve) => log.end(resolve));
    },
  };
}
