import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type ConsumerApp, installConsumer } from "./support/consumer-install.js";

// A separate app installs the packed package (test/fixtures/consumer) and uses it as users do.
// Runs against the build (npm test builds first).

let app: ConsumerApp;
beforeAll(() => {
  app = installConsumer("consumer");
}, 300_000);
afterAll(() => app?.remove(), 300_000);

describe("an app that installs the packed package", () => {
  test("importing it and using the embedded store prints no ExperimentalWarning: a plain script's stderr is empty", () => {
    const dataDir = mkdtempSync(join(tmpdir(), "engram-quiet-"));
    try {
      const run = app.node(["quiet.mjs", dataDir]);
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      expect(run.stdout.trim()).toBe("1");
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("only the SQLite warning is silenced, only while node:sqlite loads: the app's own ExperimentalWarning still prints", () => {
    const dataDir = mkdtempSync(join(tmpdir(), "engram-quiet-"));
    try {
      const run = app.node(["quiet.mjs", dataDir, "warn-after"]);
      expect(run.status).toBe(0);
      expect(run.stderr).toContain("ExperimentalWarning: the app's own experimental feature");
      expect(run.stderr).not.toMatch(/SQLite/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("require() from a .cjs file works for every subpath (no ERR_PACKAGE_PATH_NOT_EXPORTED) and gives what import() gives", () => {
    const run = app.node(["require-every-subpath.cjs"]);
    expect(run.stderr).toBe("");
    const report = JSON.parse(run.stdout) as Record<string, { required: string[]; imported: string[] }>;
    expect(Object.keys(report).sort()).toEqual([
      "engram",
      "engram/ai-sdk",
      "engram/history/postgres",
      "engram/mastra",
      "engram/mcp",
      "engram/openai",
      "engram/openai-agents",
      "engram/store-kit",
      "engram/stores/chroma",
      "engram/stores/pgvector",
      "engram/stores/qdrant",
      "engram/test",
      "engram/test/conformance",
      "engram/ui",
    ]);
    for (const [name, { required, imported }] of Object.entries(report)) {
      expect(required.length, name).toBeGreaterThan(0);
      expect(required, name).toEqual(imported);
    }
  });

  describe("strict TypeScript (strict, moduleResolution nodenext, no skipLibCheck)", () => {
    let errors: string[] = [];
    beforeAll(() => {
      const tsc = app.node([join("node_modules", "typescript", "bin", "tsc"), "-p", "."]);
      errors = tsc.stdout.split("\n").filter((line) => /error TS\d+/.test(line));
    }, 180_000);

    test("every subpath typechecks: no error in the app, in engram's declarations or in the packages they use (json-schema types included)", () => {
      // @mastra/core's own declarations do not typecheck without skipLibCheck, in any app: a file
      // importing only "@mastra/core/agent" gets hundreds of errors (1.71.0). Everything else must be clean.
      const notMastras = errors.filter((line) => !line.startsWith("node_modules/@mastra/"));
      expect(notMastras).toEqual([]);
    });

    test("a .cts file imports engram and compiles to CommonJS that runs", () => {
      const run = app.node([join("out", "require-typed.cjs")]);
      expect(run.stderr).toBe("");
      expect(JSON.parse(run.stdout)).toEqual({ added: 1, found: 1, scopeError: "InvalidScopeError" });
    });
  });
});
