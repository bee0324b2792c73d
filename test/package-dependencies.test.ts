import { readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, test } from "vitest";
import packageJson from "../package.json" with { type: "json" };
import { binEntries } from "../tsup.config.js";

// Runs after `npm run build` (npm test builds first): it reads the built files.
const root = resolve(import.meta.dirname, "..");
const frameworks = ["ai", "@ai-sdk/openai", "@mastra/core", "@openai/agents", "openai", "@modelcontextprotocol/sdk"];
const packageOf = (specifier: string) =>
  specifier
    .split("/")
    .slice(0, specifier.startsWith("@") ? 2 : 1)
    .join("/");

/**
 * Bare specifiers a built file loads when it is imported: its static imports, followed through
 * relative ones. Dynamic `import()` inside a factory (the AI SDK embedder's `ai`) loads only when used.
 */
function loadedPackages(file: string, seen = new Set<string>()): Set<string> {
  const packages = new Set<string>();
  if (seen.has(file)) return packages;
  seen.add(file);
  const source = readFileSync(file, "utf8");
  for (const [, specifier] of source.matchAll(/(?:\bfrom\s*|^\s*import\s*)["']([^"']+)["']/gm)) {
    if (specifier === undefined) continue;
    if (specifier.startsWith(".")) {
      for (const name of loadedPackages(join(dirname(file), specifier), seen)) packages.add(name);
    } else {
      packages.add(packageOf(specifier));
    }
  }
  return packages;
}

const subpaths = Object.entries(packageJson.exports)
  .filter(([subpath]) => subpath !== "./package.json")
  .map(([subpath, target]) => [subpath, (target as { import: string }).import] as const);

// The exports map and the build entries are kept in step by package-exports.test.ts.
describe("package dependencies", () => {
  test("framework packages are optional peer dependencies", () => {
    for (const name of ["ai", "@mastra/core", "@openai/agents", "openai", "@modelcontextprotocol/sdk"]) {
      expect(packageJson.peerDependencies).toHaveProperty([name]);
      expect(packageJson.peerDependenciesMeta).toHaveProperty([name, "optional"], true);
      expect(packageJson.dependencies).not.toHaveProperty([name]);
    }
  });

  test("importing engram loads no framework, and each adapter loads no other adapter's framework", () => {
    const loaded = Object.fromEntries(subpaths.map(([subpath, file]) => [subpath, [...loadedPackages(join(root, file))].sort()]));
    expect(loaded["."]?.filter((name) => frameworks.includes(name))).toEqual([]);
    expect(loaded["./mastra"]?.filter((name) => frameworks.includes(name) && name !== "@mastra/core")).toEqual([]);
    expect(loaded["./openai-agents"]?.filter((name) => frameworks.includes(name) && name !== "@openai/agents")).toEqual([]);
    expect(loaded["./openai"]?.filter((name) => frameworks.includes(name) && name !== "openai")).toEqual([]);
    expect(loaded["./ai-sdk"]?.filter((name) => frameworks.includes(name) && name !== "ai")).toEqual([]);
    expect(loaded["./mcp"]?.filter((name) => frameworks.includes(name) && name !== "@modelcontextprotocol/sdk")).toEqual([]);
    // The scan itself works: the AI SDK adapter does load `ai`.
    expect(loaded["./ai-sdk"]).toContain("ai");
    expect(loaded["./mcp"]).toContain("@modelcontextprotocol/sdk");
    expect(loaded["./openai"]).toContain("openai");
  });
});

test("@opentelemetry/api is an optional peer dependency that no subpath loads on import (tracing loads it on first use)", () => {
  expect(packageJson.peerDependenciesMeta).toHaveProperty(["@opentelemetry/api", "optional"], true);
  expect(packageJson.dependencies).not.toHaveProperty(["@opentelemetry/api"]);
  for (const [subpath, file] of subpaths) expect(loadedPackages(join(root, file)).has("@opentelemetry/api"), subpath).toBe(false);
});

test("vitest is an optional peer dependency, loaded by engram/test/conformance only (engram/test works without it)", () => {
  expect(packageJson.peerDependenciesMeta).toHaveProperty(["vitest", "optional"], true);
  expect(packageJson.dependencies).not.toHaveProperty(["vitest"]);
  for (const [subpath, file] of subpaths) {
    const loaded = loadedPackages(join(root, file));
    if (subpath === "./test/conformance") expect(loaded, subpath).toContain("vitest");
    else expect(loaded.has("vitest"), subpath).toBe(false);
  }
});

test("the engram bin is a build entry, an executable with a node shebang", () => {
  expect(packageJson.bin).toEqual({ engram: "dist/cli/index.js" });
  expect(Object.keys(binEntries)).toEqual(["cli/index"]);
  const bin = join(root, packageJson.bin.engram);
  expect(readFileSync(bin, "utf8").split("\n")[0]).toBe("#!/usr/bin/env node");
  expect(statSync(bin).mode & 0o111).not.toBe(0);
});
