import { type Command, InvalidArgumentError } from "commander";
import { InvalidInputError } from "../../errors.js";
import type { ReviewItem } from "../../review.js";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { integer, type ScopeFlags, scopeFlags, scopeOf, scopeOrAll } from "../options.js";
import { formatScope, print, printJson, shortDate } from "../output.js";

interface ReviewFlags extends ScopeFlags {
  since: string;
  limit: number;
  unreviewed?: boolean;
  purge?: boolean;
}

function sourceText(item: ReviewItem): string {
  const { source } = item;
  if (source.kind === "verbatim") return `said by ${source.name ?? source.role} (stored as said)`;
  if (source.kind === "extracted") return `extracted by ${source.model ?? "a model"}${source.turn ? ` from:\n${source.turn}` : ""}`;
  return "not recorded (stored before sources were kept)";
}

function historyText(item: ReviewItem): string {
  return item.history
    .map((entry) => `${shortDate(entry.createdAt)} ${entry.event}${entry.newValue === null ? "" : `: ${entry.newValue}`}`)
    .join("\n");
}

/** One block per memory: its text, scope, source and history, each on lines of their own (too much for table cells). */
function reviewBlocks(items: ReviewItem[]): string {
  const indent = (text: string) => text.replace(/\n/g, "\n            ");
  return items
    .map((item) =>
      [
        `${item.id}  ${formatScope(item)}  updated ${shortDate(item.updatedAt)}`,
        `  memory:   ${indent(item.memory)}`,
        `  source:   ${indent(sourceText(item))}`,
        `  history:  ${indent(historyText(item))}`,
        `  reviewed: ${item.reviewedAt ? shortDate(item.reviewedAt) : "no"}${item.expiresAt ? `   expires: ${shortDate(item.expiresAt)}` : ""}`,
      ].join("\n"),
    )
    .join("\n\n");
}

export const reviewCommand: RegisterCommand = (program) => {
  scopeFlags(
    program
      .command("review")
      .description("check the newest memories and where each came from; accept or reject them")
      .argument("[action]", "accept <id> (mark reviewed) or reject <id> (delete); none: list")
      .argument("[id]", "memory id, for accept and reject")
      .option("--since <when>", 'memories added or changed since: a duration back ("7d", "24h") or an ISO date', "7d")
      .option("-l, --limit <n>", "how many, newest first, 1-1000", integer("--limit", { min: 1, max: 1000 }), 50)
      .option("--unreviewed", "leave out memories accepted already")
      .option("--purge", "with reject: erase the text from history too")
      .addHelpText(
        "after",
        `
Examples:
  engram review --user alice --since 7d        the last week's memories of alice, with their sources
  engram review --all-scopes --json            every scope (operator), for tooling
  engram review accept <id> --user alice       mark a memory as checked
  engram review reject <id> --user alice       delete it (its text stays in history unless --purge)`,
      ),
    { allScopes: true },
  ).action(async (action: string | undefined, id: string | undefined, options: ReviewFlags, command: Command) => {
    const globals = globalsOf(command);
    if (action === undefined) {
      const target = scopeOrAll(options, "review");
      const { results } = await withMemory(globals, {}, (memory) =>
        memory.review(target, { since: options.since, limit: options.limit, unreviewedOnly: options.unreviewed === true }),
      );
      if (globals.json) return printJson({ results });
      print(results.length ? reviewBlocks(results) : `No memories added or changed since ${options.since}.`);
      return;
    }
    if (action !== "accept" && action !== "reject") {
      throw new InvalidArgumentError(`review takes no action, "accept <id>" or "reject <id>", not "${action}".`);
    }
    if (id === undefined)
      throw new InvalidInputError({ message: `review ${action} needs the memory id: engram review ${action} <id> --user <id>.` });
    if (options.allScopes)
      throw new InvalidInputError({
        message: `review ${action} works on one memory: pass its scope (--user / --agent / --run), not --all-scopes.`,
      });
    const scope = scopeOf(options, `review ${action}`);
    if (action === "accept") {
      const item = await withMemory(globals, {}, (memory) => memory.markReviewed(id, scope));
      if (globals.json) return printJson({ id, reviewed: true, reviewedAt: item.reviewedAt });
      print(`Marked ${id} as reviewed.`);
      return;
    }
    const deleted = await withMemory(globals, {}, (memory) => memory.delete(id, { ...scope, purge: options.purge === true }));
    if (globals.json) return printJson({ id, rejected: true, deleted: true, purged: deleted.purged });
    print(`Rejected ${id}: deleted${deleted.purged ? " and its text erased for good" : " (its text stays in history)"}.`);
  });
};
