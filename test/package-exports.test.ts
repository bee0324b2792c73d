import { readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { beforeAll, expect, test } from "vitest";
import packageJson from "../package.json" with { type: "json" };
import { binEntries, entries } from "../tsup.config.js";
import { assertBuilt } from "./cli/run-cli.js";

const root = resolve(import.meta.dirname, "..");
beforeAll(assertBuilt);

test("every exports subpath has a build entry and every build entry an exports subpath", () => {
  const fromExports = Object.entries(packageJson.exports)
    .filter(([subpath]) => subpath !== "./package.json")
    .map(([subpath, target]) => [subpath, (target as { import: string }).import.replace(/^\.\/dist\//, "").replace(/\.js$/, "")]);
  expect(fromExports.map(([, entry]) => entry).sort()).toEqual(Object.keys(entries).sort());
  for (const [subpath, target] of Object.entries(packageJson.exports)) {
    if (subpath === "./package.json") continue;
    expect((target as { types: string }).types).toBe((target as { import: string }).import.replace(/\.js$/, ".d.ts"));
  }
});

test("the engram bin is a build entry, an executable with a node shebang", () => {
  expect(packageJson.bin).toEqual({ engram: "dist/cli/index.js" });
  expect(Object.keys(binEntries)).toEqual(["cli/index"]);
  const bin = join(root, packageJson.bin.engram);
  expect(readFileSync(bin, "utf8").split("\n")[0]).toBe("#!/usr/bin/env node");
  expect(statSync(bin).mode & 0o111).not.toBe(0);
});

test("the MCP SDK is an optional peer dependency that importing engram never loads", () => {
  expect(packageJson.peerDependencies).toHaveProperty("@modelcontextprotocol/sdk");
  expect(packageJson.peerDependenciesMeta).toHaveProperty(["@modelcontextprotocol/sdk", "optional"], true);
  // Walk the static import graph of the root entry: no file in it may import the SDK.
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = readFileSync(file, "utf8");
    expect(code, file).not.toMatch(/from\s+["']@modelcontextprotocol/);
    for (const [, specifier] of code.matchAll(/(?:^|\n)\s*import\s[^;]*?from\s+["'](\.[^"']+)["']/g))
      visit(resolve(dirname(file), specifier as string));
  };
  visit(join(root, "dist/index.js"));
  expect(seen.size).toBeGreaterThan(1);
  expect(readFileSync(join(root, "dist/mcp/index.js"), "utf8")).toMatch(/from\s+["']@modelcontextprotocol\/sdk\/server\/mcp\.js["']/);
});
