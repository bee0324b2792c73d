/**
 * A throwaway Chroma server for tests and benchmarks: the CLI of the `chromadb` npm package
 * (Chroma 1.0 in one Node process, through the native bindings pinned in package.json's
 * `overrides`) serving a temporary directory on a free loopback port, stopped by its process id and
 * deleted afterwards.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./postgres-cluster.js";

export interface ChromaServer {
  /** http:// URL of the server. */
  readonly url: string;
  readonly port: number;
  /** Process id of the server. */
  readonly pid: number;
  /** The directory the server persists to (chroma.sqlite3 and one directory per HNSW index). */
  readonly path: string;
  /** Stops the server; its directory stays until `remove()`. */
  stop(): Promise<void>;
  /** Stops the server and deletes its directory. */
  remove(): Promise<void>;
}

/** The chromadb package's CLI script, next to its client (it has no `exports` entry of its own). */
function cliPath(): string {
  return join(dirname(fileURLToPath(import.meta.resolve("chromadb"))), "cli.mjs");
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/api/v2/heartbeat`, { signal: AbortSignal.timeout(1_000) });
    return response.ok;
  } catch {
    return false;
  }
}

/** Starts Chroma on `path` (a new temporary directory by default) and waits until it answers. */
export async function startChroma({
  path,
  startTimeoutMs = 60_000,
}: {
  path?: string;
  startTimeoutMs?: number;
} = {}): Promise<ChromaServer> {
  const directory = path ?? mkdtempSync(join(tmpdir(), "engram-chroma-"));
  const log = join(directory, "..", `${directory.split("/").at(-1)}.log`);
  // Another process may take the port between our probe and the server's bind: try a few.
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const out = openSync(log, "w");
    const child: ChildProcess = spawn(
      process.execPath,
      [cliPath(), "run", "--path", directory, "--host", "127.0.0.1", "--port", String(port)],
      {
        stdio: ["ignore", out, out],
      },
    );
    closeSync(out);
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const started = Date.now();
    let up = false;
    while (!up && child.exitCode === null && child.signalCode === null && Date.now() - started < startTimeoutMs) {
      up = await answers(url);
      if (!up) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const pid = child.pid as number;
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, "SIGTERM");
      const killer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(pid, "SIGKILL");
      }, 10_000);
      await exited;
      clearTimeout(killer);
    };
    if (up) {
      return {
        url,
        port,
        pid,
        path: directory,
        stop,
        async remove() {
          await stop();
          rmSync(directory, { recursive: true, force: true });
          rmSync(log, { force: true });
        },
      };
    }
    await stop();
    if (attempt >= 2) {
      const output = readFileSync(log, "utf8");
      if (!path) rmSync(directory, { recursive: true, force: true });
      rmSync(log, { force: true });
      throw new Error(`Chroma did not start on 127.0.0.1:${port}:\n${output}`);
    }
  }
}
