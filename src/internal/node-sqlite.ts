import { createRequire } from "node:module";
import { ConfigError } from "../errors.js";

type NodeSqlite = typeof import("node:sqlite");

let loaded: NodeSqlite | undefined;

/** True for the one warning Node.js emits when `node:sqlite` is first loaded. */
function isSqliteExperimentalWarning(warning: string | Error, rest: unknown[]): boolean {
  const text = typeof warning === "string" ? warning : warning.message;
  const type =
    typeof warning === "string"
      ? typeof rest[0] === "string"
        ? rest[0]
        : (rest[0] as { type?: unknown } | undefined)?.type
      : warning.name;
  return type === "ExperimentalWarning" && /\bSQLite\b/.test(text);
}

/**
 * `node:sqlite`, loaded once. Node.js 22 prints "ExperimentalWarning: SQLite is an experimental
 * feature" on the first load, which reaches the stderr of every app using the embedded store. The
 * load is synchronous, so silencing exactly that warning around it touches no other warning, and
 * `process.emitWarning` is restored before anything else runs.
 */
export function loadNodeSqlite(): NodeSqlite {
  if (loaded) return loaded;
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    if (isSqliteExperimentalWarning(warning, rest)) return;
    return (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    loaded = createRequire(import.meta.url)("node:sqlite") as NodeSqlite;
  } catch (cause) {
    throw new ConfigError({
      message: `The embedded store needs the built-in node:sqlite module of Node.js >= 22.13 (this is ${process.version}). Upgrade Node.js, or pass a vectorStore and historyStore.`,
      cause,
    });
  } finally {
    process.emitWarning = emitWarning;
  }
  return loaded;
}
