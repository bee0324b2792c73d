import { validateScope } from "../../src/index.js";

/**
 * The scope of one AI SDK call, typed: at least one of `userId`, `agentId`, `runId`, and no other
 * key, so `{ user_id: "alice" }` or `{}` is a compile error rather than a refused call.
 */
export type MemoryScope =
  | { userId: string; agentId?: string; runId?: string }
  | { userId?: string; agentId: string; runId?: string }
  | { userId?: string; agentId?: string; runId: string };

/** The part of a call's `providerOptions` that carries its scope. */
export type MemoryProviderOptions = { memory: MemoryScope };

/**
 * `providerOptions` for a call through the memory middleware, checked when written: a misspelled
 * key is a compile error, and at run time an `InvalidScopeError` / `MissingScopeError` here rather
 * than in the middle of the call.
 *
 * @example
 * await generateText({ model, prompt, providerOptions: memoryScope({ userId: "alice", runId: "s-1" }) });
 * // with other providers' options:
 * await generateText({ model, prompt, providerOptions: { ...memoryScope({ userId }), openai: { store: false } } });
 */
export function memoryScope(scope: MemoryScope): MemoryProviderOptions {
  return { memory: { ...validateScope("memoryScope", scope) } as MemoryScope };
}
