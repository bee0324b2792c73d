import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const dist = fileURLToPath(new URL("../../dist/index.js", import.meta.url));

// Runs the built package in a fresh Node process and lists the packages it resolved.
function packagesLoadedBy(script: string): string[] {
  const program = `
    import { registerHooks } from "node:module";
    const seen = new Set();
    registerHooks({ resolve(specifier, context, next) { seen.add(specifier); return next(specifier, context); } });
    const engram = await import(${JSON.stringify(dist)});
    ${script}
    console.log(JSON.stringify([...seen].filter((s) => !s.startsWith(".") && !s.startsWith("node:") && !s.startsWith("file:") && !s.startsWith("/"))));
  `;
  const output = execFileSync(process.execPath, ["--input-type=module", "--disable-warning=ExperimentalWarning", "-e", program], {
    encoding: "utf8",
  });
  return JSON.parse(output.trim().split("\n").at(-1) ?? "[]");
}

test("importing engram, even configuring an llm, never loads the optional ai package", () => {
  expect(existsSync(dist), "build first: npm run build").toBe(true);
  const loaded = packagesLoadedBy(`
    new engram.Memory({ llm: { specificationVersion: "v4", provider: "p", modelId: "m", doGenerate: async () => { throw new Error("unused"); } }, writeBehind: { enabled: false } });
  `);
  expect(loaded).not.toContainEqual(expect.stringMatching(/^ai(\/|$)/));
  expect(loaded).toContain("zod");
});
