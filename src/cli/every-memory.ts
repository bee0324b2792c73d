import { CorruptionError } from "../errors.js";
import type { Memory } from "../memory.js";
import type { Scope } from "../scope.js";
import type { ScopeCount } from "../stores/vector-store.js";
import type { MemoryItem } from "../types.js";

/** A scope a damaged database file keeps from being read in full. */
export interface UnreadableScope {
  scope: Scope;
  /** Memories of the scope read (and passed on) before the damage stopped the read. */
  read: number;
  /** How many the scope holds, when the scope list could say. */
  total?: number;
  error: CorruptionError;
}

/** Called for each scope that cannot be read in full; the pass goes on with the next one. */
export type OnUnreadable = (unreadable: UnreadableScope) => void;

const scopeOf = ({ count: _count, ...scope }: ScopeCount): Scope => scope;
const exactly = (scope: Scope) => (item: MemoryItem) =>
  item.userId === scope.userId && item.agentId === scope.agentId && item.runId === scope.runId;

/**
 * Every memory of every scope, each exactly once: a pass per user (which covers all of that user's
 * agents and runs), then per agent for memories without a user, then per run for the rest. Reads
 * stay scoped queries; only the list of scopes crosses the boundary (`scopes({ allScopes: true })`).
 *
 * With `onUnreadable`, a pass that hits damaged pages (`CorruptionError`) is read again scope by
 * exact scope, so damage in one scope's rows does not hide another's, and what cannot be read is
 * reported instead of ending the whole pass.
 */
export async function* everyMemory(memory: Memory, { onUnreadable }: { onUnreadable?: OnUnreadable } = {}): AsyncGenerator<MemoryItem> {
  const scopes = await memory.scopes({ allScopes: true });
  const distinct = (values: (string | undefined)[]) => [...new Set(values.filter((value): value is string => value !== undefined))];

  async function* pass(scope: Scope, keep: (item: MemoryItem) => boolean, parts: ScopeCount[]): AsyncGenerator<MemoryItem> {
    const passed = new Set<string>();
    try {
      for await (const item of memory.iterate(scope)) {
        if (!keep(item)) continue;
        passed.add(item.id);
        yield item;
      }
    } catch (error) {
      if (!onUnreadable || !CorruptionError.isInstance(error)) throw error;
      for (const part of parts) {
        const exact = exactly(scopeOf(part));
        let read = 0;
        try {
          for await (const item of memory.iterate(scopeOf(part))) {
            if (!exact(item)) continue;
            read++;
            if (!passed.has(item.id)) yield item;
          }
        } catch (partError) {
          if (!CorruptionError.isInstance(partError)) throw partError;
          onUnreadable({ scope: scopeOf(part), read, total: part.count, error: partError as CorruptionError });
        }
      }
    }
  }

  for (const userId of distinct(scopes.map((scope) => scope.userId))) {
    yield* pass(
      { userId },
      () => true,
      scopes.filter((scope) => scope.userId === userId),
    );
  }
  const agentOnly = scopes.filter((scope) => scope.userId === undefined);
  for (const agentId of distinct(agentOnly.map((scope) => scope.agentId))) {
    yield* pass(
      { agentId },
      (item) => item.userId === undefined,
      agentOnly.filter((scope) => scope.agentId === agentId),
    );
  }
  const runOnly = agentOnly.filter((scope) => scope.agentId === undefined);
  for (const runId of distinct(runOnly.map((scope) => scope.runId))) {
    yield* pass(
      { runId },
      (item) => item.userId === undefined && item.agentId === undefined,
      runOnly.filter((scope) => scope.runId === runId),
    );
  }
}

/** The memories of one scope; with `onUnreadable`, damage ends the read with a report instead of an error. */
export async function* scopeMemories(memory: Memory, scope: Scope, { onUnreadable }: { onUnreadable?: OnUnreadable } = {}) {
  let read = 0;
  try {
    for await (const item of memory.iterate(scope)) {
      read++;
      yield item;
    }
  } catch (error) {
    if (!onUnreadable || !CorruptionError.isInstance(error)) throw error;
    onUnreadable({ scope, read, error: error as CorruptionError });
  }
}
