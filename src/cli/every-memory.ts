import type { Memory } from "../memory.js";
import type { MemoryItem } from "../types.js";

/**
 * Every memory of every scope, each exactly once: a pass per user (which covers all of that user's
 * agents and runs), then per agent for memories without a user, then per run for the rest. Reads
 * stay scoped queries; only the list of scopes crosses the boundary (`scopes({ allScopes: true })`).
 */
export async function* everyMemory(memory: Memory): AsyncGenerator<MemoryItem> {
  const scopes = await memory.scopes({ allScopes: true });
  const distinct = (values: (string | undefined)[]) => [...new Set(values.filter((value): value is string => value !== undefined))];
  for (const userId of distinct(scopes.map((scope) => scope.userId))) yield* memory.iterate({ userId });
  const agentOnly = scopes.filter((scope) => scope.userId === undefined);
  for (const agentId of distinct(agentOnly.map((scope) => scope.agentId))) {
    for await (const item of memory.iterate({ agentId })) if (item.userId === undefined) yield item;
  }
  const runOnly = agentOnly.filter((scope) => scope.agentId === undefined);
  for (const runId of distinct(runOnly.map((scope) => scope.runId))) {
    for await (const item of memory.iterate({ runId })) if (item.userId === undefined && item.agentId === undefined) yield item;
  }
}
