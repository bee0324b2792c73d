import type { Command } from "commander";
import { globalsOf, log, type RegisterCommand, withMemory } from "../context.js";
import { jsonObject, noInference, type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { print, printJson, table } from "../output.js";

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of process.stdin) parts.push(part as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

export const addCommand: RegisterCommand = (program) => {
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
};
