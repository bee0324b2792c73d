import { randomUUID } from "node:crypto";
import type { AgentInputItem } from "@openai/agents";
import type { Scope } from "../../src/index.js";
import { objectEntries, readScope } from "../shared/scope.js";
import { turnKey } from "../shared/turn.js";

const missingScope =
  'run() needs a scope: pass userId (or agentId, runId) in the run context, e.g. run(agent, input, { context: { userId: "alice" } }). ' +
  "Engram has no global namespace.";

/** The scope of a run, from its context (`RunContext.context`): `userId` / `agentId` / `runId`. */
export function runScope(context: unknown): Scope {
  return readScope("run()", objectEntries(context), { missing: missingScope });
}

/** A run's input as items: a plain string is one user message. */
export type RunInput = string | readonly AgentInputItem[] | readonly unknown[];

function messageOf(item: unknown): { role: string; text: string } | undefined {
  if (item == null || typeof item !== "object") return undefined;
  const { role, content, type } = item as { role?: unknown; content?: unknown; type?: unknown };
  if ((type !== undefined && type !== "message") || typeof role !== "string") return undefined;
  if (typeof content === "string") return { role, text: content };
  if (!Array.isArray(content)) return undefined;
  const text = content
    .map((part: { type?: unknown; text?: unknown }) =>
      (part?.type === "input_text" || part?.type === "output_text") && typeof part.text === "string" ? part.text : "",
    )
    .filter((piece) => piece !== "")
    .join("\n");
  return { role, text };
}

function messagesOf(input: RunInput | undefined): { role: string; text: string }[] {
  if (input === undefined) return [];
  if (typeof input === "string") return [{ role: "user", text: input }];
  return input.flatMap((item) => messageOf(item) ?? []);
}

/** The latest user message of a run's input: what the memory is searched with. */
export function latestUserText(input: RunInput | undefined): string | undefined {
  return messagesOf(input)
    .filter((message) => message.role === "user")
    .at(-1)?.text;
}

/**
 * The key of a user turn's search: the scope and the messages up to the latest user one. The
 * steps of a tool loop and the agents a run hands off to share it, so they search once.
 */
export function conversationKey(scope: Scope, input: RunInput | undefined): string {
  const messages = messagesOf(input);
  const lastUser = messages.findLastIndex((message) => message.role === "user");
  return turnKey(
    scope,
    messages.slice(0, lastUser + 1).map((message) => [message.role, message.text]),
  );
}

const runIds = new WeakMap<object, string>();

/**
 * The identity of a run: one per RunContext (one run, resumed or not), shared by `withMemory` and
 * `memoryRunConfig`, so a run both of them cover is still written once. The write's key adds the
 * run's input and output to it, so runs that reuse one RunContext are each written.
 */
export function runWriteKey(scope: Scope, runContext: object): string {
  let id = runIds.get(runContext);
  if (id === undefined) {
    id = randomUUID();
    runIds.set(runContext, id);
  }
  return turnKey(scope, ["run", id]);
}

/** Runs (RunContexts, or the app's context objects) whose final output `memoryRunConfig` writes. */
export const writtenByRunConfig = new WeakSet<object>();

/** The agent's instructions with the memory block after them. */
export function withBlock(instructions: string | undefined, block: string | undefined): string | undefined {
  if (!block) return instructions;
  return instructions ? `${instructions}\n\n${block}` : block;
}
