import type { RequestContext } from "@mastra/core/request-context";
import { MissingScopeError, type Scope, validateScope } from "../../src/index.js";
import { ownValue } from "../../src/internal/plain-data.js";
import { objectEntries, readScope } from "../shared/scope.js";

/** Mastra's own memory ids of a call: `memory: { resource, thread }`. */
export interface MastraMemoryIds {
  resourceId?: string | undefined;
  threadId?: string | undefined;
}

/** The RequestContext keys Mastra's server sets for the authenticated resource and thread. */
const resourceKey = "mastra__resourceId";
const threadKey = "mastra__threadId";

const missingScope = (call: string) =>
  `${call} needs a scope: set "userId" (or "agentId", "runId") on the requestContext, e.g. requestContext.set("userId", "alice"), ` +
  `or pass Mastra memory ids, memory: { resource: "alice", thread: "t-1" }. Engram has no global namespace.`;

/** Key/value pairs of a RequestContext (or of a plain object standing in for one). */
function entriesOf(requestContext: RequestContext | undefined): Iterable<readonly [string, unknown]> {
  if (requestContext == null) return [];
  if (typeof requestContext.entries === "function") return requestContext.entries();
  return objectEntries(requestContext);
}

function stringAt(requestContext: RequestContext | undefined, key: string): string | undefined {
  if (requestContext == null || typeof requestContext.get !== "function") return undefined;
  const value = requestContext.get(key);
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * The scope of one agent call (`call` names it in errors, e.g. "agent.generate()"): `userId` / `agentId` / `runId` from the RequestContext; when it has
 * none, Mastra's own memory ids (resource → userId, thread → runId).
 *
 * @throws MissingScopeError when neither is given; InvalidScopeError for a misspelled key or a bad id.
 */
export function callScope(call: string, requestContext: RequestContext | undefined, ids: MastraMemoryIds): Scope {
  try {
    return readScope(call, entriesOf(requestContext), { missing: missingScope(call) });
  } catch (error) {
    if (!MissingScopeError.isInstance(error)) throw error;
  }
  // Mastra itself prefers the server-set keys over the call's memory option.
  const userId = stringAt(requestContext, resourceKey) ?? ids.resourceId;
  const runId = stringAt(requestContext, threadKey) ?? ids.threadId;
  if (!userId && !runId) throw new MissingScopeError({ call, message: missingScope(call) });
  return validateScope(call, { userId: userId || undefined, runId: runId || undefined });
}

/** The ids of a call's `memory` option (`thread` is an id or a `{ id }`), read by own properties only. */
export function memoryIdsOf(memory: unknown): MastraMemoryIds {
  if (memory == null || typeof memory !== "object") return {};
  const resource = ownValue(memory, "resource", "agent call", "memory.resource");
  const thread = ownValue(memory, "thread", "agent call", "memory.thread");
  const id = thread != null && typeof thread === "object" ? ownValue(thread, "id", "agent call", "memory.thread.id") : thread;
  return { resourceId: typeof resource === "string" ? resource : undefined, threadId: typeof id === "string" ? id : undefined };
}
