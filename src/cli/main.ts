import { existsSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import packageJson from "../../package.json" with { type: "json" };
import {
  ConfigError,
  CorruptionError,
  EngramError,
  InvalidInputError,
  isUserError,
  MemoryNotFoundError,
  MissingScopeError,
} from "../errors.js";
import { checkSqliteFile } from "../internal/sqlite.js";
import { Memory } from "../memory.js";
import { type Scope, validateScope } from "../scope.js";
import type { ErrorContext, MemoryItem, PendingTurn } from "../types.js";
import { everyMemory, scopeMemories, type UnreadableScope } from "./every-memory.js";
import { chunkTurns, type ImportFormat, readImportFile } from "./import-file.js";
import { runImport } from "./import-runner.js";
import { serveMcp } from "./mcp-command.js";
import { describeScope, formatDuration, formatScope, memoryTable, print, printJson, recordTable, shortDate, table } from "./output.js";

/** Exit codes: documented in the README, stable for scripts. */
export const exitCodes = {
  ok: 0,
  /** A system failure (store, embedder, a failed import), or a cancelled confirmation. */
  failure: 1,
  /** A usage error: bad flags or input, a missing scope, an unknown id. Fix the command and re-run. */
  usage: 2,
  /** The database file is damaged: see `engram check` and docs/operations.md. */
  corrupt: 3,
  /** Stopped by SIGINT / SIGTERM (an import resumes when run again). */
  interrupted: 130,
} as const;

interface GlobalOptions {
  dataDir: string;
  json?: boolean;
}

interface ScopeFlags {
  user?: string;
  agent?: string;
  run?: string;
  allScopes?: boolean;
}

/** Where background messages go; the import's progress bar swaps it so lines do not break the bar. */
let log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

function onError(error: EngramError, context: ErrorContext): void {
  const next =
    context.willRetry === false ? " Giving up: the turn stays in the outbox (engram pending)." : context.willRetry ? " Retrying." : "";
  log(`engram: ${context.operation}: ${error.message}${next}`);
}

function openMemory(globals: GlobalOptions, { create = false, worker = false }: { create?: boolean; worker?: boolean } = {}): Memory {
  if (!create && !existsSync(join(globals.dataDir, "engram.db"))) {
    throw new ConfigError({
      message: `No memories in ${globals.dataDir}: there is no engram.db there. Check --data-dir (or ENGRAM_DATA_DIR).`,
    });
  }
  return new Memory({
    dataDir: globals.dataDir,
    // Only `import` processes the outbox; a lease short enough that a killed import resumes quickly.
    writeBehind: worker ? { enabled: true, leaseMs: 5_000 } : { enabled: false },
    onError,
  });
}

async function withMemory<T>(globals: GlobalOptions, options: { create?: boolean; worker?: boolean }, run: (memory: Memory) => Promise<T>) {
  const memory = openMemory(globals, options);
  try {
    return await run(memory);
  } finally {
    await memory.close();
  }
}

function scopeFlags(command: Command, { allScopes = false }: { allScopes?: boolean } = {}): Command {
  command
    .option("-u, --user <id>", "user id of the scope")
    .option("-a, --agent <id>", "agent id of the scope")
    .option("-r, --run <id>", "run id of the scope");
  if (allScopes) command.option("--all-scopes", "every scope, explicitly (instead of --user / --agent / --run)");
  return command;
}

function scopeOf(flags: ScopeFlags, command: string): Scope {
  const scope: Scope = {};
  if (flags.user !== undefined) scope.userId = flags.user;
  if (flags.agent !== undefined) scope.agentId = flags.agent;
  if (flags.run !== undefined) scope.runId = flags.run;
  if (Object.keys(scope).length === 0) {
    throw new MissingScopeError({
      call: command,
      message: `${command} needs a scope: pass --user, --agent and/or --run (ids are AND-ed; there is no global namespace).`,
    });
  }
  return { ...validateScope(command, scope) };
}

function scopeOrAll(flags: ScopeFlags, command: string): Scope | { allScopes: true } {
  const given = flags.user !== undefined || flags.agent !== undefined || flags.run !== undefined;
  if (flags.allScopes && given) {
    throw new InvalidInputError({ message: `${command}: pass either --all-scopes or --user / --agent / --run, not both.` });
  }
  if (flags.allScopes) return { allScopes: true };
  if (!given) {
    throw new MissingScopeError({
      call: command,
      message: `${command} needs a scope: pass --user, --agent and/or --run, or --all-scopes for every scope.`,
    });
  }
  return scopeOf(flags, command);
}

const isAllScopes = (scope: Scope | { allScopes: true }): scope is { allScopes: true } => "allScopes" in scope;

function integer(name: string, { min, max }: { min: number; max: number }) {
  return (value: string) => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < min || number > max)
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
    return number;
  };
}

function fraction(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0 || number > 1) throw new InvalidArgumentError("--threshold must be a number from 0 to 1.");
  return number;
}

/** `key=value`, repeatable; the value is read as JSON when it is a number, boolean or null, else as text. */
function collectFilter(entry: string, previous: Record<string, string | number | boolean | null> = {}) {
  const at = entry.indexOf("=");
  if (at <= 0)
    throw new InvalidArgumentError('filters look like key=value, e.g. --filter topic=db or --filter session=3 (quote "3" for text).');
  const key = entry.slice(0, at);
  const raw = entry.slice(at + 1);
  let value: string | number | boolean | null = raw;
  try {
    const parsed = JSON.parse(raw);
    if (parsed === null || ["number", "boolean", "string"].includes(typeof parsed)) value = parsed;
  } catch {
    value = raw;
  }
  return { ...previous, [key]: value };
}

function jsonObject(flag: string) {
  return (value: string) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new InvalidArgumentError(`${flag} must be a JSON object, e.g. '{"topic":"databases"}'.`);
    }
    if (parsed == null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new InvalidArgumentError(`${flag} must be a JSON object, e.g. '{"topic":"databases"}'.`);
    }
    return parsed as Record<string, unknown>;
  };
}

function noInference(): never {
  throw new ConfigError({
    message:
      "--infer needs an extraction model, and the engram CLI has none configured: leave out --infer to store turns as they are, or add from an app created with new Memory({ llm }).",
  });
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of process.stdin) parts.push(part as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

function itemRecord(item: MemoryItem): [string, string][] {
  return [
    ["id", item.id],
    ["memory", item.memory],
    ["scope", formatScope(item)],
    ["metadata", JSON.stringify(item.metadata)],
    ["created", item.createdAt],
    ["updated", item.updatedAt],
  ];
}

function pendingTable(turns: PendingTurn[]): string {
  return table(
    [
      { header: "id", width: 36 },
      { header: "status", width: 10 },
      { header: "tries", width: 5 },
      { header: "scope", width: 18 },
      { header: "next attempt", width: 16 },
      { header: "last error" },
    ],
    turns.map((turn) => [turn.id, turn.status, turn.attempts, formatScope(turn), shortDate(turn.nextAttemptAt), turn.lastError ?? ""]),
    { breakWords: true },
  );
}

async function confirm(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    prompt.close();
  }
}

/** The exit code an action sets when it ends without an error but not successfully. */
export interface RunState {
  code: number;
}

export function buildProgram(state: RunState = { code: exitCodes.ok }): Command {
  const program = new Command("engram");
  program
    .description("Engram: long-term memory for LLM apps, scoped by user, agent and run. Inspect, import, export and serve it.")
    .version(packageJson.version)
    .addOption(new Option("-d, --data-dir <path>", "where memories are stored (engram.db)").env("ENGRAM_DATA_DIR").default("./.engram"))
    .option("--json", "machine-readable JSON output")
    .showSuggestionAfterError()
    .exitOverride()
    .configureHelp({ showGlobalOptions: true })
    .addHelpText(
      "after",
      `
Every command that reads or writes memory needs a scope: --user, --agent and/or --run.
Exit codes: 0 ok, 1 failure, 2 usage error (bad input, missing scope, unknown id), 3 damaged database
(see engram check), 130 interrupted.`,
    );

  const globalsOf = (command: Command) => command.optsWithGlobals() as GlobalOptions;

  scopeFlags(
    program
      .command("add")
      .description("remember a text, stored as it is (the CLI has no extraction model)")
      .argument("<text...>", 'what to remember; "-" reads it from stdin')
      .option("--metadata <json>", "JSON object stored with the memory", jsonObject("--metadata"))
      .option("--timestamp <date>", "when it was said, ISO 8601 (default now)")
      .option("--infer", "extract facts with an LLM (needs a configured model)"),
  ).action(
    async (
      words: string[],
      options: ScopeFlags & { metadata?: Record<string, unknown>; timestamp?: string; infer?: boolean },
      command: Command,
    ) => {
      const globals = globalsOf(command);
      const scope = scopeOf(options, "add");
      if (options.infer) noInference();
      const text = words.length === 1 && words[0] === "-" ? await readStdin() : words.join(" ");
      const result = await withMemory(globals, { create: true }, (memory) =>
        memory.add(text, { ...scope, metadata: options.metadata, timestamp: options.timestamp }),
      );
      if (globals.json) return printJson(result);
      print(
        table(
          [{ header: "event", width: 6 }, { header: "id", width: 36 }, { header: "memory" }],
          result.results.map((item) => [item.event, item.id, item.memory]),
        ),
      );
      for (const warning of result.warnings ?? []) log(`engram: ${warning}`);
    },
  );

  scopeFlags(
    program
      .command("search")
      .description("find memories by meaning and keywords, best first")
      .argument("<query>", "what to look for")
      .option("-l, --limit <n>", "how many results, 1-100", integer("--limit", { min: 1, max: 100 }), 10)
      .option("--threshold <score>", "minimum score, 0-1", fraction)
      .option("--filter <key=value>", "metadata equality filter, repeatable", collectFilter),
  ).action(
    async (
      query: string,
      options: ScopeFlags & { limit: number; threshold?: number; filter?: Record<string, never> },
      command: Command,
    ) => {
      const globals = globalsOf(command);
      const scope = scopeOf(options, "search");
      const result = await withMemory(globals, {}, (memory) =>
        memory.search(query, { ...scope, limit: options.limit, threshold: options.threshold, filters: options.filter }),
      );
      if (globals.json) return printJson(result);
      print(result.results.length ? memoryTable(result.results, { score: true }) : "No memories found.");
    },
  );

  scopeFlags(
    program
      .command("list")
      .description("list memories, oldest first (engram export for all of them)")
      .option("-l, --limit <n>", "how many, 1-1000", integer("--limit", { min: 1, max: 1000 }), 100)
      .option("--filter <key=value>", "metadata equality filter, repeatable", collectFilter),
  ).action(async (options: ScopeFlags & { limit: number; filter?: Record<string, never> }, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOf(options, "list");
    const result = await withMemory(globals, {}, (memory) => memory.getAll({ ...scope, limit: options.limit, filters: options.filter }));
    if (globals.json) return printJson(result);
    print(result.results.length ? memoryTable(result.results) : "No memories in this scope.");
  });

  scopeFlags(program.command("get").description("show one memory").argument("<id>", "memory id")).action(
    async (id: string, options: ScopeFlags, command: Command) => {
      const globals = globalsOf(command);
      const scope = scopeOf(options, "get");
      const item = await withMemory(globals, {}, (memory) => memory.get(id, scope));
      if (!item) throw new MemoryNotFoundError({ memoryId: id });
      if (globals.json) return printJson(item);
      print(recordTable(itemRecord(item)));
    },
  );

  scopeFlags(
    program
      .command("update")
      .description("replace a memory's text (the old text stays in its history)")
      .argument("<id>", "memory id")
      .argument("<text>", "the new text"),
  ).action(async (id: string, text: string, options: ScopeFlags, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOf(options, "update");
    const item = await withMemory(globals, {}, (memory) => memory.update(id, text, scope));
    if (globals.json) return printJson(item);
    print(recordTable(itemRecord(item)));
  });

  scopeFlags(
    program
      .command("delete")
      .description("delete one memory (its text stays in history unless --purge)")
      .argument("<id>", "memory id")
      .option("--purge", "erase the text for good, from history and the database file too"),
  ).action(async (id: string, options: ScopeFlags & { purge?: boolean }, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOf(options, "delete");
    await withMemory(globals, {}, (memory) => memory.delete(id, { ...scope, purge: options.purge }));
    if (globals.json) return printJson({ id, deleted: true, purged: Boolean(options.purge) });
    print(`Deleted ${id}${options.purge ? " and erased its text for good" : ""}.`);
  });

  scopeFlags(
    program
      .command("forget")
      .description("the right to be forgotten: delete every memory of a scope, with its history text and queued turns, for good")
      .option("-y, --yes", "do not ask for confirmation"),
  ).action(async (options: ScopeFlags & { yes?: boolean }, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOf(options, "forget");
    return withMemory(globals, {}, async (memory) => {
      if (!options.yes) {
        if (!process.stdin.isTTY || !process.stderr.isTTY) {
          throw new InvalidInputError({
            message: "forget deletes for good and asks for confirmation first, but there is no terminal to ask on: pass --yes to confirm.",
          });
        }
        let count = 0;
        for await (const _ of memory.iterate(scope)) count++;
        const ok = await confirm(
          `Forget ${describeScope(scope)} for good: ${count} ${count === 1 ? "memory" : "memories"}, their history text and queued turns? This cannot be undone.`,
        );
        if (!ok) {
          log("Cancelled: nothing was deleted.");
          state.code = exitCodes.failure;
          return;
        }
      }
      const { deleted } = await memory.deleteAll({ ...scope, purge: true });
      if (globals.json) printJson({ ...scope, deleted, purged: true });
      else
        print(
          `Forgot ${describeScope(scope)}: ${deleted} ${deleted === 1 ? "memory" : "memories"} deleted, history text and queued turns erased.`,
        );
    });
  });

  scopeFlags(program.command("history").description("every change of a memory, oldest first").argument("<id>", "memory id")).action(
    async (id: string, options: ScopeFlags, command: Command) => {
      const globals = globalsOf(command);
      const scope = scopeOf(options, "history");
      const history = await withMemory(globals, {}, (memory) => memory.history(id, scope));
      if (globals.json) return printJson({ history });
      print(
        table(
          [{ header: "event", width: 6 }, { header: "previous" }, { header: "new" }, { header: "when (UTC)", width: 16 }],
          history.map((entry) => [entry.event, entry.previousValue ?? "", entry.newValue ?? "", shortDate(entry.createdAt)]),
        ),
      );
    },
  );

  scopeFlags(
    program
      .command("pending")
      .description("turns in the write-behind outbox that are not done yet: waiting, in progress, or failed")
      .option("--retry", "put turns that failed every attempt back in the queue"),
    { allScopes: true },
  ).action(async (options: ScopeFlags & { retry?: boolean }, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOrAll(options, "pending");
    await withMemory(globals, {}, async (memory) => {
      if (options.retry) {
        const { requeued } = await memory.retryFailed(scope);
        if (globals.json) return printJson({ requeued });
        return print(
          `Requeued ${requeued} failed ${requeued === 1 ? "turn" : "turns"}: the next process with a write-behind worker (e.g. engram import) writes them.`,
        );
      }
      const pending = await memory.pending(scope);
      if (globals.json) return printJson({ pending });
      print(pending.length ? pendingTable(pending) : "Nothing pending.");
    });
  });

  scopeFlags(
    program
      .command("import")
      .description("import chat turns from JSONL, an engram export, or a LoCoMo-schema file; resumable, never stores a turn twice")
      .argument("<file>", "JSONL ({ role, content, userId?, agentId?, runId?, timestamp? } per line) or LoCoMo-schema JSON")
      .addOption(new Option("--format <format>", "file format").choices(["auto", "jsonl", "locomo"]).default("auto"))
      .option(
        "--batch-size <n>",
        "turns written together (one embedding call); resume with the same value",
        integer("--batch-size", { min: 1, max: 100 }),
        50,
      )
      .option("--infer", "extract facts with an LLM (needs a configured model)")
      .addHelpText(
        "after",
        `
Scope flags fill in ids a JSONL line does not give; a LoCoMo conversation's userId is its sample_id.
Stop it at any time (Ctrl-C) and run the same command again to resume: turns already imported are skipped.`,
      ),
  ).action(
    async (file: string, options: ScopeFlags & { format: ImportFormat | "auto"; batchSize: number; infer?: boolean }, command: Command) => {
      const globals = globalsOf(command);
      if (options.infer) noInference();
      const defaults: Scope = {};
      if (options.user !== undefined) defaults.userId = options.user;
      if (options.agent !== undefined) defaults.agentId = options.agent;
      if (options.run !== undefined) defaults.runId = options.run;
      const { format, turns } = await readImportFile(file, { format: options.format, defaults });
      const chunks = chunkTurns(turns, options.batchSize);
      const scopes = new Set(chunks.map((chunk) => formatScope(chunk.scope))).size;
      const stop = new AbortController();
      const onSignal = () => {
        // A second signal leaves at once; the outbox keeps every write consistent either way.
        if (stop.signal.aborted) process.exit(exitCodes.interrupted);
        stop.abort();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      const previousLog = log;
      try {
        const summary = await withMemory(globals, { create: true, worker: true }, (memory) =>
          runImport(memory, chunks, {
            infer: false,
            showProgress: !globals.json && Boolean(process.stderr.isTTY),
            signal: stop.signal,
            onProgress: (progress) => {
              log = progress.log;
            },
          }),
        );
        log = previousLog;
        if (globals.json) printJson({ file, format, scopes, ...summary });
        else {
          const parts = [`${summary.imported} imported`];
          if (summary.resumed) parts.push(`${summary.resumed} already imported by an earlier run`);
          if (summary.failed) parts.push(`${summary.failed} failed`);
          print(
            `${summary.interrupted ? "Stopped" : "Done"}: ${summary.imported + summary.resumed + summary.failed} of ${summary.turns} turns from ${file} (${format}, ${scopes} ${scopes === 1 ? "scope" : "scopes"}): ${parts.join(", ")}, in ${formatDuration(summary.seconds)}.`,
          );
        }
        if (summary.interrupted) {
          log("engram: import interrupted: run the same command again to resume; turns already imported are skipped.");
          state.code = exitCodes.interrupted;
          return;
        }
        if (summary.failed) {
          log(
            `engram: ${summary.failed} turns failed every attempt and stay in the outbox: see engram pending --all-scopes, fix the cause, run engram pending --retry --all-scopes, then this import again.`,
          );
          state.code = exitCodes.failure;
        }
      } finally {
        log = previousLog;
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    },
  );

  scopeFlags(
    program
      .command("export")
      .description("write memories as JSONL (one memory with its scope and metadata per line), for backups and moving between stores")
      .option("-o, --output <file>", "write to this file instead of stdout"),
    { allScopes: true },
  ).action(async (options: ScopeFlags & { output?: string }, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOrAll(options, "export");
    const file = options.output ? await open(options.output, "w") : undefined;
    let exported = 0;
    // A damaged file: export what is readable, scope by scope, and say what was not.
    const unreadable: UnreadableScope[] = [];
    const onUnreadable = (entry: UnreadableScope) => {
      unreadable.push(entry);
    };
    try {
      await withMemory(globals, {}, async (memory) => {
        const items = isAllScopes(scope) ? everyMemory(memory, { onUnreadable }) : scopeMemories(memory, scope, { onUnreadable });
        for await (const { score: _score, ...item } of items) {
          const line = `${JSON.stringify(item)}\n`;
          if (file) await file.write(line);
          else if (!process.stdout.write(line)) await new Promise((resolve) => process.stdout.once("drain", resolve));
          exported++;
        }
      });
    } finally {
      await file?.close();
    }
    for (const { scope: damaged, read, total } of unreadable) {
      log(
        `engram: export: ${describeScope(damaged)}: ${read}${total === undefined ? "" : ` of ${total}`} memories read, the rest is on damaged pages and was skipped.`,
      );
    }
    if (unreadable.length > 0) {
      log(
        `engram: ${unreadable[0]?.error.path} is damaged: the export holds what was readable. Keep the damaged file, then restore a backup or import this export into a new data dir (docs/operations.md).`,
      );
      state.code = exitCodes.corrupt;
    }
    if (!options.output) return;
    const skipped = unreadable.map(({ scope: damaged, read, total }) => ({ ...damaged, read, ...(total === undefined ? {} : { total }) }));
    if (globals.json) printJson({ exported, file: options.output, ...(skipped.length ? { unreadable: skipped } : {}) });
    else print(`Exported ${exported} ${exported === 1 ? "memory" : "memories"} to ${options.output}.`);
  });

  program
    .command("check")
    .description("check the database file for damage (SQLite integrity check): prints ok or what is wrong; exit 3 when damaged")
    .action(async (_options: unknown, command: Command) => {
      const globals = globalsOf(command);
      const file = resolve(globals.dataDir, "engram.db");
      if (!existsSync(file)) {
        throw new ConfigError({
          message: `No memories in ${globals.dataDir}: there is no engram.db there. Check --data-dir (or ENGRAM_DATA_DIR).`,
        });
      }
      const { ok, problems } = await checkSqliteFile(file);
      if (globals.json) printJson({ file, ok, problems });
      else if (ok) print(`ok: ${file} passed the integrity check.`);
      else print([`damaged: ${file}`, ...problems.map((problem) => `  ${problem}`)].join("\n"));
      if (ok) return;
      log(
        "engram: recovery: stop every process using the file, keep a copy of it, export what is readable (engram export --all-scopes -o salvage.jsonl), then restore a backup or import the export into a new data dir (docs/operations.md).",
      );
      state.code = exitCodes.corrupt;
    });

  scopeFlags(program.command("stats").description("how many memories and queued turns a scope (or every scope) holds"), {
    allScopes: true,
  }).action(async (options: ScopeFlags, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOrAll(options, "stats");
    const stats = await withMemory(globals, {}, async (memory) => {
      let scopes: (Scope & { count: number })[];
      if (isAllScopes(scope)) scopes = await memory.scopes({ allScopes: true });
      else {
        let count = 0;
        for await (const _ of memory.iterate(scope)) count++;
        scopes = [{ ...scope, count }];
      }
      const outbox = { pending: 0, processing: 0, failed: 0 };
      for (const turn of await memory.pending(scope)) outbox[turn.status]++;
      return {
        memories: scopes.reduce((sum, entry) => sum + entry.count, 0),
        scopes,
        outbox,
        databaseBytes: statSync(join(globals.dataDir, "engram.db")).size,
      };
    });
    if (globals.json) return printJson(stats);
    print(
      table(
        [{ header: "user" }, { header: "agent" }, { header: "run" }, { header: "memories", width: 9 }],
        stats.scopes.map((entry) => [entry.userId ?? "", entry.agentId ?? "", entry.runId ?? "", entry.count]),
      ),
    );
    print(
      `${stats.memories} ${stats.memories === 1 ? "memory" : "memories"}${isAllScopes(scope) ? ` in ${stats.scopes.length} ${stats.scopes.length === 1 ? "scope" : "scopes"}` : ""}; outbox: ${stats.outbox.pending} pending, ${stats.outbox.processing} in progress, ${stats.outbox.failed} failed; database ${(stats.databaseBytes / 1024 / 1024).toFixed(1)} MB.`,
    );
  });

  scopeFlags(
    program
      .command("mcp")
      .description("serve memory as MCP tools, over stdio (default) or Streamable HTTP")
      .option(
        "--scope-from-arguments",
        "take the scope from each tool call (required on every call) instead of fixing it with --user / --agent / --run",
      )
      .option("--http", "serve Streamable HTTP at /mcp instead of stdio")
      .option("-p, --port <n>", "HTTP port (0 picks a free one)", integer("--port", { min: 0, max: 65535 }), 8765)
      .option("--host <address>", "HTTP bind address; anything but loopback requires --token", "127.0.0.1")
      .addOption(new Option("--token <token>", "bearer token every HTTP request must carry (16+ characters)").env("ENGRAM_MCP_TOKEN"))
      .addHelpText(
        "after",
        `
The scope is a security boundary: with --user / --agent / --run it is fixed for every tool call and a
call cannot widen it. Only --scope-from-arguments takes it from the calls, for trusted clients.`,
      ),
  ).action(
    async (
      options: ScopeFlags & { scopeFromArguments?: boolean; http?: boolean; port: number; host: string; token?: string },
      command: Command,
    ) => {
      const globals = globalsOf(command);
      const given = options.user !== undefined || options.agent !== undefined || options.run !== undefined;
      if (options.scopeFromArguments && given) {
        throw new InvalidInputError({ message: "mcp: pass either --scope-from-arguments or --user / --agent / --run, not both." });
      }
      if (!options.scopeFromArguments && !given) {
        throw new MissingScopeError({
          call: "mcp",
          message:
            "mcp needs a scope: pass --user, --agent and/or --run (fixed for every tool call), or --scope-from-arguments to require one in every call.",
        });
      }
      if (!options.http && ["port", "host", "token"].some((name) => command.getOptionValueSource(name) === "cli")) {
        throw new InvalidInputError({ message: "mcp: --port, --host and --token apply to --http only." });
      }
      const scope = options.scopeFromArguments ? undefined : scopeOf(options, "mcp");
      await withMemory(globals, { create: true }, (memory) =>
        serveMcp(memory, {
          scope,
          scopeFromArguments: options.scopeFromArguments,
          http: options.http,
          port: options.port,
          host: options.host,
          token: options.token,
        }),
      );
    },
  );

  return program;
}

/** One line, whatever the error: the message says what to do. */
function report(error: unknown, json: boolean): number {
  const engram = EngramError.isInstance(error);
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, " ");
  const code = engram ? (error as EngramError).code : "INTERNAL";
  if (json) process.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
  else process.stderr.write(`engram: ${message}\n`);
  if (CorruptionError.isInstance(error)) return exitCodes.corrupt;
  return engram && isUserError(error) ? exitCodes.usage : exitCodes.failure;
}

/** Runs the CLI on `argv` (as `process.argv`) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const state: RunState = { code: exitCodes.ok };
  const program = buildProgram(state);
  try {
    await program.parseAsync(argv);
    return state.code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
    return report(error, argv.includes("--json"));
  }
}
