/**
 * Installs the packed package into a separate app, as a user would: `npm pack` of the build, then
 * `npm install` of the tarball next to a fixture's own dependencies, in a temporary folder OUTSIDE
 * the repository. Outside, because Node.js and TypeScript look for packages in every parent
 * folder: inside, the repository's own node_modules (ai@7, @types/json-schema, …) would stand in
 * for what the app failed to install, and hide exactly what these tests are for.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");

export interface ConsumerApp {
  readonly dir: string;
  /** Runs `node <args>` in the app with the tests' Node.js; never throws. */
  node(args: string[]): { status: number | null; stdout: string; stderr: string };
  remove(): void;
}

/** `fixture`: a folder of test/fixtures with a package.json; its files are copied into the app. */
export function installConsumer(fixture: string): ConsumerApp {
  if (!existsSync(join(root, "dist", "index.js"))) throw new Error("dist/ is missing: run npm run build first");
  const dir = mkdtempSync(join(tmpdir(), `engram-${fixture}-`));
  try {
    const source = join(root, "test", "fixtures", fixture);
    for (const name of readdirSync(source)) {
      if (name !== "node_modules" && name !== "package-lock.json") cpSync(join(source, name), join(dir, name), { recursive: true });
    }
    const tarball = execFileSync("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: root, encoding: "utf8" })
      .trim()
      .split("\n")
      .pop();
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    manifest.dependencies = { ...manifest.dependencies, engram: `file:./${tarball}` };
    writeFileSync(join(dir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], {
      cwd: dir,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    node(args) {
      const { status, stdout, stderr } = spawnSync(process.execPath, args, {
        cwd: dir,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
      return { status, stdout, stderr };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
