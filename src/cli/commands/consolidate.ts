import { type Command, InvalidArgumentError } from "commander";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { extractionModel, type ModelFlags, modelFlags } from "../model.js";
import { type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { print, printJson, shortDate, table } from "../output.js";

const share = (flag: string) => (value: string) => {
  const number = Number(value);
  if (value.trim() === "" || !Number.isFinite(number) || number < 0 || number > 1) {
    throw new InvalidArgumentError(`${flag} must be a number from 0 to 1.`);
  }
  return number;
};

type ConsolidateFlags = ScopeFlags & ModelFlags & { dryRun?: boolean; similarity?: number; keywordOverlap?: number; infer?: boolean };

export const consolidateCommand: RegisterCommand = (program) => {
  scopeFlags(
    modelFlags(
      program
        .command("consolidate")
        .description(
          "merge near-duplicate memories of a scope into one each (the newest text kept as it is, or with --infer written by a model); every original stays in history",
        )
        .option("--dry-run", "print the clusters that would be merged, change nothing")
        .option("--similarity <0-1>", "cosine similarity near-duplicates need (default 0.9)", share("--similarity"))
        .option("--keyword-overlap <0-1>", "share of keywords they need in common (default 0.5)", share("--keyword-overlap")),
    ),
  ).action(async (options: ConsolidateFlags, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOf(options, "consolidate");
    const llm = options.infer && !options.dryRun ? await extractionModel(options) : undefined;
    const result = await withMemory(globals, llm ? { llm } : {}, (memory) =>
      memory.consolidate(scope, {
        dryRun: options.dryRun === true,
        ...(options.similarity === undefined ? {} : { similarity: options.similarity }),
        ...(options.keywordOverlap === undefined ? {} : { keywordOverlap: options.keywordOverlap }),
      }),
    );
    if (globals.json) return printJson(result);
    for (const [i, cluster] of result.clusters.entries()) {
      print(`cluster ${i + 1} → ${cluster.into}${cluster.memory === undefined ? "" : `: ${cluster.memory}`}`);
      print(
        table(
          [{ header: "id", width: 36 }, { header: "memory" }, { header: "changed (UTC)", width: 16 }],
          cluster.members.map((member) => [
            member.id === cluster.into ? `${member.id} *` : member.id,
            member.memory,
            shortDate(member.updatedAt),
          ]),
        ),
      );
    }
    const clusters = `${result.clusters.length} ${result.clusters.length === 1 ? "cluster" : "clusters"}`;
    const wouldMerge = result.clusters.reduce((sum, cluster) => sum + cluster.members.length - 1, 0);
    print(
      result.dryRun
        ? `${result.memories} memories, ${clusters} of near-duplicates: ${wouldMerge} would be merged (* the memory each is merged into). Nothing was changed.`
        : `${result.memories} memories, ${clusters}: ${result.merged} merged into another (their texts stay in history: engram history <id>).`,
    );
  });
};
