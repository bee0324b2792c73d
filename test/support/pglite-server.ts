/**
 * A PostgreSQL wire-protocol server over PGlite (real Postgres compiled to WASM) with the real
 * pgvector extension, for tests and benchmarks: `pg` clients connect to it over TCP like to any
 * Postgres.
 *
 * Run as a script it serves until SIGTERM and prints `listening <port>`; `startPgliteServer()`
 * spawns it as a child process on a free port and stops it by process id.
 *
 * PGlite is one backend shared by every connection, so connections must take turns by whole units
 * of work. pglite-socket's own queue hands the backend over between single protocol messages (so
 * one client's Parse could land between another's Parse and Bind), and its stock server stopped
 * answering under concurrent transactions from a pg pool; this server reuses pglite-socket's
 * connection handler with a queue that gives one connection the backend from its first message
 * until a Sync or simple Query leaves no transaction open.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

type Handler = { attach(socket: Socket): Promise<unknown> };
type Backend = {
  runExclusive<T>(fn: () => Promise<T>): Promise<T>;
  execProtocolRawStream(message: Uint8Array, options: { onRawData: (data: Uint8Array) => void }): Promise<void>;
  isInTransaction(): boolean;
  exec(sql: string): Promise<unknown>;
};

interface Waiting {
  handlerId: number;
  message: Uint8Array;
  onData: (data: Uint8Array) => void;
  resolve: (bytes: number) => void;
  reject: (error: unknown) => void;
}

const SYNC = 0x53; // 'S'
const QUERY = 0x51; // 'Q'
const TERMINATE = 0x58; // 'X'

/** The queue interface pglite-socket's handler calls, granting the backend per unit of work. */
class UnitQueue {
  #owner: number | undefined;
  #waiting: Waiting[] = [];
  #running = false;

  constructor(private readonly db: Backend) {}

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ handlerId, message, onData, resolve, reject });
      void this.#run();
    });
  }

  getQueueLength(): number {
    return this.#waiting.length;
  }

  clearQueueForHandler(handlerId: number): void {
    this.#waiting = this.#waiting.filter((item) => {
      if (item.handlerId !== handlerId) return true;
      item.reject(new Error("Handler disconnected"));
      return false;
    });
  }

  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.#owner !== handlerId) return;
    await this.db.runExclusive(async () => {
      if (this.db.isInTransaction()) await this.db.exec("ROLLBACK");
    });
    this.#owner = undefined;
    void this.#run();
  }

  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (;;) {
        const index = this.#owner === undefined ? 0 : this.#waiting.findIndex((item) => item.handlerId === this.#owner);
        const item = index === -1 ? undefined : this.#waiting.splice(index, 1)[0];
        if (!item) return;
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item.message, {
              onRawData: (data) => {
                bytes += data.length;
                item.onData(data);
              },
            }),
          );
        } catch (error) {
          item.reject(error);
          continue;
        }
        const type = item.message[0];
        // A startup packet begins with its length, whose first byte is 0: it is a unit by itself.
        const endsUnit = type === SYNC || type === QUERY || type === TERMINATE || type === 0;
        this.#owner = endsUnit && !this.db.isInTransaction() ? undefined : item.handlerId;
        item.resolve(bytes);
      }
    } finally {
      this.#running = false;
    }
  }
}

async function serve(port: number): Promise<void> {
  const [{ PGlite }, { vector }, { PGLiteSocketHandler }] = await Promise.all([
    import("@electric-sql/pglite"),
    import("@electric-sql/pglite-pgvector"),
    import("@electric-sql/pglite-socket"),
  ]);
  // Initialising a cluster inside WASM takes seconds; a dump of a fresh one loads several times faster.
  const version = JSON.parse(
    readFileSync(join(dirname(fileURLToPath(import.meta.resolve("@electric-sql/pglite"))), "../package.json"), "utf8"),
  ).version as string;
  const cache = join(tmpdir(), "engram-pglite-cache", `pglite-${version}-pgvector.tar.gz`);
  const db = existsSync(cache)
    ? new PGlite("memory://", { extensions: { vector }, loadDataDir: new Blob([readFileSync(cache)]) })
    : new PGlite("memory://", { extensions: { vector } });
  await db.waitReady;
  if (!existsSync(cache)) {
    const dump = await db.dumpDataDir("gzip");
    mkdirSync(dirname(cache), { recursive: true });
    const partial = `${cache}.${process.pid}.partial`;
    writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
    renameSync(partial, cache);
  }
  const queue = new UnitQueue(db as unknown as Backend);
  const server = createServer((socket) => {
    const handler = new PGLiteSocketHandler({
      queryQueue: queue as unknown as ConstructorParameters<typeof PGLiteSocketHandler>[0]["queryQueue"],
      closeOnDetach: true,
    }) as unknown as Handler;
    handler.attach(socket).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  process.stdout.write(`listening ${typeof address === "object" && address ? address.port : port}\n`);
  const shutdown = () => {
    server.close();
    void db.close().finally(() => process.exit(0));
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

export interface PgliteServer {
  /** postgresql:// URL of the server. */
  readonly url: string;
  readonly pid: number;
  /** Stops the server process (by its process id) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Spawns the server as a child process on a free port. */
export async function startPgliteServer({ startTimeoutMs = 180_000 }: { startTimeoutMs?: number } = {}): Promise<PgliteServer> {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--serve"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pglite server did not start within ${startTimeoutMs} ms`)), startTimeoutMs);
    child.once("exit", (code) => reject(new Error(`pglite server exited with code ${code} before listening`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const match = /^listening (\d+)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
  }).catch((error) => {
    if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    throw error;
  });
  const pid = child.pid as number;
  return {
    url: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`,
    pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, "SIGTERM");
      const killer = setTimeout(() => {
        if (child.exitCode === null) process.kill(pid, "SIGKILL");
      }, 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

if (process.argv.includes("--serve")) {
  serve(0).catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
