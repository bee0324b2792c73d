import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const dist = (file: string) => fileURLToPath(new URL(`../dist/${file}`, import.meta.url));

// Runs the built package in a fresh Node process and lists the bare packages it resolved.
function packagesLoadedBy(file: string, script: string): string[] {
  const program = `
    import { registerHooks } from "node:module";
    const seen = new Set();
    registerHooks({ resolve(specifier, context, next) { seen.add(specifier); return next(specifier, context); } });
    const module = await import(${JSON.stringify(dist(file))});
    ${script}
    console.log(JSON.stringify([...seen].filter((s) => !s.startsWith(".") && !s.startsWith("node:") && !s.startsWith("file:") && !s.startsWith("/"))));
  `;
  const output = execFileSync(process.execPath, ["--input-type=module", "--disable-warning=ExperimentalWarning", "-e", program], {
    encoding: "utf8",
  });
  return JSON.parse(output.trim().split("\n").at(-1) ?? "[]");
}

test("importing engram never loads pg, the Qdrant client or the Chroma client", () => {
  expect(existsSync(dist("index.js")), "build first: npm run build").toBe(true);
  const loaded = packagesLoadedBy("index.js", "");
  expect(loaded).not.toContain("pg");
  expect(loaded).not.toContainEqual(expect.stringMatching(/^@qdrant\//));
  expect(loaded).not.toContainEqual(expect.stringMatching(/^chromadb/));
});

test("the store subpaths load their client only when first used, not when imported or configured", () => {
  const configure = {
    "stores/pgvector-store.js": `module.pgvectorStore({ connectionString: "postgresql://localhost/db" });`,
    "history/postgres-history.js": `module.postgresHistory({ connectionString: "postgresql://localhost/db" });`,
    "stores/qdrant-store.js": `module.qdrantStore({ url: "http://localhost:6333" });`,
    "stores/chroma-store.js": `module.chromaStore({ url: "http://localhost:8000" });`,
  };
  for (const [file, script] of Object.entries(configure)) {
    const loaded = packagesLoadedBy(file, script);
    expect(loaded, file).not.toContain("pg");
    expect(loaded, file).not.toContainEqual(expect.stringMatching(/^@qdrant\//));
    expect(loaded, file).not.toContainEqual(expect.stringMatching(/^chromadb/));
  }
});

test("a store whose client package is not installed says what to install, as a ConfigError", () => {
  // A fresh process in which resolving pg or @qdrant/js-client-rest fails, as when they are not installed.
  const program = `
    import { registerHooks } from "node:module";
    registerHooks({
      resolve(specifier, context, next) {
        if (specifier === "pg" || specifier.startsWith("@qdrant/") || specifier === "chromadb") {
          throw Object.assign(new Error("Cannot find package '" + specifier + "'"), { code: "ERR_MODULE_NOT_FOUND" });
        }
        return next(specifier, context);
      },
    });
    const { pgvectorStore } = await import(${JSON.stringify(dist("stores/pgvector-store.js"))});
    const { postgresHistory } = await import(${JSON.stringify(dist("history/postgres-history.js"))});
    const { qdrantStore } = await import(${JSON.stringify(dist("stores/qdrant-store.js"))});
    const { chromaStore } = await import(${JSON.stringify(dist("stores/chroma-store.js"))});
    const failures = await Promise.all([
      pgvectorStore({ connectionString: "postgresql://localhost/db" }).init({ dimension: 2 }).catch((error) => error),
      postgresHistory({ connectionString: "postgresql://localhost/db" }).init().catch((error) => error),
      qdrantStore({ url: "http://localhost:6333" }).init({ dimension: 2 }).catch((error) => error),
      chromaStore({ url: "http://localhost:8000" }).init({ dimension: 2 }).catch((error) => error),
    ]);
    console.log(JSON.stringify(failures.map((error) => [error.name, error.code, error.message])));
  `;
  const output = execFileSync(process.execPath, ["--input-type=module", "--disable-warning=ExperimentalWarning", "-e", program], {
    encoding: "utf8",
  });
  const failures = JSON.parse(output.trim().split("\n").at(-1) ?? "[]") as [string, string, string][];
  expect(failures.map(([name, code]) => [name, code])).toEqual([
    ["ConfigError", "CONFIG"],
    ["ConfigError", "CONFIG"],
    ["ConfigError", "CONFIG"],
    ["ConfigError", "CONFIG"],
  ]);
  expect(failures[0]?.[2]).toContain("npm install pg");
  expect(failures[1]?.[2]).toContain("npm install pg");
  expect(failures[2]?.[2]).toContain("npm install @qdrant/js-client-rest");
  expect(failures[3]?.[2]).toContain("npm install chromadb");
});
