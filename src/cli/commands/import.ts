import { type Command, Option } from "commander";
import { EngramError, InvalidInputError } from "../../errors.js";
import type { Scope } from "../../scope.js";
import { exitCodes, globalsOf, log, type RegisterCommand, redirectLog, withMemory } from "../context.js";
import { attachRelations } from "../graph-lines.js";
import { chunkTurns, type ImportFormat, readImportFile } from "../import-file.js";
import { runImport } from "../import-runner.js";
import { extractionModel, type ModelFlags, modelFlags } from "../model.js";
import { givenScope, integer, type ScopeFlags, scopeFlags } from "../options.js";
import { formatDuration, formatScope, print, printJson } from "../output.js";

export const importCommand: RegisterCommand = (program, state) => {
  scopeFlags(
    modelFlags(
      program
        .command("import")
        .description("import chat turns from JSONL, an engram export, or a LoCoMo-schema file; resumable, never stores a turn twice")
        .argument("<file>", "JSONL ({ role, content, userId?, agentId?, runId?, timestamp? } per line) or LoCoMo-schema JSON")
        .addOption(new Option("--format <format>", "file format").choices(["auto", "jsonl", "locomo"]).default("auto"))
        .option(
          "--graph",
          "derive graph memory (docs/graph.md) for what is imported: on by itself when the data dir keeps a graph or the file is an export that carries one",
        )
        .option(
          "--batch-size <n>",
          "turns written together (one outbox entry, one embedding call, one transaction); resume with the same value",
          integer("--batch-size", { min: 1, max: 100 }),
          50,
        )
        .addHelpText(
          "after",
          `
Scope flags fill in ids a JSONL line does not give; a LoCoMo conversation's userId is its sample_id.
Stop it at any time (Ctrl-C) and run the same command again to resume: turns already imported are skipped.`,
        ),
    ),
  ).action(
    async (
      file: string,
      options: ScopeFlags & ModelFlags & { format: ImportFormat | "auto"; batchSize: number; infer?: boolean; graph?: boolean },
      command: Command,
    ) => {
      const globals = globalsOf(command);
      const llm = options.infer ? await extractionModel(options) : undefined;
      const defaults: Scope = givenScope(options);
      const { format, turns, profiles, relations } = await readImportFile(file, { format: options.format, defaults });
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
      let restoreLog = () => {};
      try {
        const summary = await withMemory(
          globals,
          // Undefined: on when the data dir already keeps a graph.
          { create: true, worker: true, llm, graph: options.graph || relations.length > 0 || undefined },
          async (memory) => {
            const imported = await runImport(memory, chunks, {
              infer: Boolean(llm),
              batchSize: options.batchSize,
              showProgress: !globals.json && Boolean(process.stderr.isTTY),
              signal: stop.signal,
              onProgress: (progress) => {
                restoreLog = redirectLog(progress.log);
              },
            });
            // After the turns: the exported profile is the one kept, whatever an extraction made of them.
            if (imported.interrupted) return imported;
            for (const { scope, text, source } of profiles) {
              try {
                await memory.setProfile(scope, text);
              } catch (error) {
                if (EngramError.isInstance(error) && error.isUserError) {
                  throw new InvalidInputError({ message: `${source}: ${error.message}`, cause: error });
                }
                throw error;
              }
            }
            // With --infer the model rewrote the memories, and its extraction derived their relations anew.
            const attached = llm || relations.length === 0 ? 0 : await attachRelations(memory, globals.dataDir, relations);
            return { ...imported, ...(profiles.length ? { profiles: profiles.length } : {}), ...(attached ? { relations: attached } : {}) };
          },
        );
        restoreLog();
        if (globals.json) printJson({ file, format, scopes, ...summary });
        else {
          const parts = [`${summary.imported} imported`];
          if ("profiles" in summary) parts.push(`${summary.profiles} ${summary.profiles === 1 ? "profile" : "profiles"} set`);
          if ("relations" in summary)
            parts.push(`${summary.relations} graph ${summary.relations === 1 ? "relation" : "relations"} attached`);
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
        restoreLog();
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    },
  );
};
