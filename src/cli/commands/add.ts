import type { Command } from "commander";
import { globalsOf, log, type RegisterCommand, withMemory } from "../context.js";
import { extractionModel, type ModelFlags, modelFlags } from "../model.js";
import { jsonObject, type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { print, printJson, table } from "../output.js";

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of process.stdin) parts.push(part as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

export const addCommand: RegisterCommand = (program) => {
  scopeFlags(
    modelFlags(
      program
        .command("add")
        .description("remember a text: stored as it is, or with --infer as facts extracted by a model")
        .argument("<text...>", 'what to remember; "-" reads it from stdin')
        .option("--metadata <json>", "JSON object stored with the memory", jsonObject("--metadata"))
        .option("--timestamp <date>", "when it was said, ISO 8601 (default now)")
        .option("--ttl <duration>", 'how long it lives: "30m", "12h", "7d", "2w" (default: never expires)')
        .option("--expires-at <date>", "when it expires, ISO 8601 (instead of --ttl)"),
    ),
  ).action(
    async (
      words: string[],
      options: ScopeFlags &
        ModelFlags & { metadata?: Record<string, unknown>; timestamp?: string; infer?: boolean; ttl?: string; expiresAt?: string },
      command: Command,
    ) => {
      const globals = globalsOf(command);
      const scope = scopeOf(options, "add");
      const llm = options.infer ? await extractionModel(options) : undefined;
      const text = words.length === 1 && words[0] === "-" ? await readStdin() : words.join(" ");
      const result = await withMemory(globals, { create: true, llm }, (memory) =>
        memory.add(text, {
          ...scope,
          metadata: options.metadata,
          timestamp: options.timestamp,
          infer: Boolean(llm),
          ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
          ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }),
        }),
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
};
