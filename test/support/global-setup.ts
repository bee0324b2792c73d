import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startPgliteServer } from "./pglite-server.js";
import { startPostgres } from "./postgres-cluster.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** postgresql:// URL of a pglite server with pgvector, shared by the run: tests use their own tables. */
    pgliteUrl: string;
    /** postgresql:// URL of a throwaway PostgreSQL cluster: tests create their own databases. */
    postgresUrl: string;
    /** A file the fault tests append their counts to, one JSON object a line (test/reliability/counts.ts). */
    faultCountsFile: string;
  }
}

const columns = [
  "operations",
  "scopes",
  "kills",
  "turns",
  "lost",
  "duplicated",
  "processes",
  "corruptions",
  "timeouts",
  "races",
  "diskFullErrors",
] as const;

type Totals = Record<string, number | string>;

/** Sums the counts the fault tests recorded, per suite and over all of them. */
function summarise(file: string): { suites: Record<string, Totals>; total: Totals } | undefined {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const suites: Record<string, Totals> = {};
  const total: Totals = {};
  // Scopes named by the tests are counted once however many tests used them.
  const named = new Map<string, Set<string>>();
  const allNamed = new Set<string>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const { suite, scopeList, ...counts } = JSON.parse(line) as Record<string, number | string> & { scopeList?: string[] };
    const row = suites[String(suite)] ?? {};
    suites[String(suite)] = row;
    if (scopeList) {
      const seen = named.get(String(suite)) ?? new Set<string>();
      named.set(String(suite), seen);
      for (const scope of scopeList) {
        seen.add(scope);
        allNamed.add(scope);
      }
      row.scopes = seen.size;
    }
    for (const [key, value] of Object.entries(counts)) {
      if (typeof value === "number") {
        row[key] = Number(row[key] ?? 0) + value;
        total[key] = Number(total[key] ?? 0) + value;
      } else {
        row[key] = value;
        total[key] = value;
      }
    }
  }
  if (allNamed.size) total.scopes = Number(total.scopes ?? 0) + allNamed.size;
  return Object.keys(suites).length ? { suites, total } : undefined;
}

const cell = (value: number | string | undefined) => (typeof value === "number" ? value.toLocaleString("en-US") : (value ?? ""));

function table({ suites, total }: { suites: Record<string, Totals>; total: Totals }): string {
  const used = columns.filter((column) => total[column] !== undefined);
  const rows = [
    ["suite", ...used],
    ...Object.entries(suites)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([suite, counts]) => [suite, ...used.map((column) => cell(counts[column]))]),
    ["total", ...used.map((column) => cell(total[column]))],
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
  const line = (row: string[]) =>
    `| ${row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join(" | ")} |`;
  // Markdown, as the README's tables are written: the figures can be pasted as they are.
  const rule = `| ${widths.map((width, i) => (i === 0 ? "-".repeat(width) : `${"-".repeat(width - 1)}:`)).join(" | ")} |`;
  const notes = Object.entries(total)
    .filter(([, value]) => typeof value === "string")
    .map(([key, value]) => `${key}: ${value}`);
  return [line(rows[0] as string[]), rule, ...rows.slice(1).map(line), ...notes].join("\n");
}

/**
 * Starts the database servers the store tests talk to, once per run, and stops them afterwards.
 * At the end it prints what the fault tests exercised (and writes it as JSON to ENGRAM_FAULT_REPORT).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const countsDirectory = mkdtempSync(join(tmpdir(), "engram-fault-counts-"));
  const countsFile = join(countsDirectory, "counts.jsonl");
  writeFileSync(countsFile, "");
  const [pglite, postgres] = await Promise.allSettled([startPgliteServer(), startPostgres()]);
  const stop = async () => {
    await Promise.allSettled([
      pglite.status === "fulfilled" ? pglite.value.stop() : undefined,
      postgres.status === "fulfilled" ? postgres.value.stop() : undefined,
    ]);
  };
  if (pglite.status === "rejected" || postgres.status === "rejected") {
    await stop();
    rmSync(countsDirectory, { recursive: true, force: true });
    throw pglite.status === "rejected" ? pglite.reason : (postgres as PromiseRejectedResult).reason;
  }
  project.provide("pgliteUrl", pglite.value.url);
  project.provide("postgresUrl", postgres.value.url);
  project.provide("faultCountsFile", countsFile);
  return async () => {
    await stop();
    const summary = summarise(countsFile);
    rmSync(countsDirectory, { recursive: true, force: true });
    if (!summary) return;
    console.log(`\nFault suite: what ran (test/reliability)\n${table(summary)}\n`);
    const report = process.env.ENGRAM_FAULT_REPORT;
    if (report) writeFileSync(report, `${JSON.stringify(summary, null, 2)}\n`);
  };
}
