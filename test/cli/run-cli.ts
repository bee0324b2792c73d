import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

/** The built CLI: `npm test` builds before it runs the tests. */
export const cliPath = resolve(import.meta.dirname, "../../dist/cli/index.js");

export function assertBuilt(): void {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run npm run build first (npm test does).`);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<CliResult>;
}

/** Starts `engram <args>` under the Node.js running the tests (22.13+), with stdin, stdout and stderr as pipes. */
export function startCli(
  args: string[],
  { input, env, nodeOptions = [] }: { input?: string; env?: Record<string, string>; nodeOptions?: string[] } = {},
): CliProcess {
  const inherited = { ...process.env };
  delete inherited.ENGRAM_DATA_DIR;
  delete inherited.ENGRAM_MCP_TOKEN;
  for (const name of ["OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"]) delete inherited[name];
  const child = spawn(process.execPath, [...nodeOptions, cliPath, ...args], {
    env: { ...inherited, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  child.stdin?.end(input ?? "");
  const done = new Promise<CliResult>((resolvePromise, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

export function runCli(args: string[], options?: Parameters<typeof startCli>[1]): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Runs a command that must succeed with `--json` and returns its parsed output. */
export async function cliJson<T = Record<string, unknown>>(args: string[], options?: Parameters<typeof startCli>[1]): Promise<T> {
  const result = await runCli([...args, "--json"], options);
  if (result.code !== 0) throw new Error(`engram ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}
