import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { entries } from "../tsup.config.js";

const root = join(import.meta.dirname, "..");
const typedoc = JSON.parse(readFileSync(join(root, "typedoc.json"), "utf8")) as { entryPoints: string[] };

test("the API reference covers every exports subpath: typedoc.json's entry points are the build entries", () => {
  expect([...typedoc.entryPoints].sort()).toEqual(Object.values(entries).sort());
});

test("npm run docs:api generates the API reference without a warning (broken links, misnamed @param)", { timeout: 180_000 }, () => {
  const bin = join(root, "node_modules", "typedoc", "bin", "typedoc");
  // --emit none: the whole conversion and its checks, without writing the HTML.
  const output = execFileSync(process.execPath, [bin, "--treatWarningsAsErrors", "--emit", "none"], { cwd: root, encoding: "utf8" });
  expect(output).not.toMatch(/\[warning\]|\[error\]/);
});
