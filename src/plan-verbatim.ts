import type { WrappedEmbedder } from "./embedders/wrap-embedder.js";
import type { Message } from "./history/outbox.js";
import { normaliseText, textHash } from "./internal/hash.js";
import { type Plan, PlanBuilder } from "./plan.js";
import type { Runtime } from "./runtime.js";
import { sameScope, type ValidScope } from "./scope.js";
import type { MemoryRecord, VectorStore } from "./stores/vector-store.js";
import type { Usage } from "./types.js";

export interface VerbatimRequest {
  scope: ValidScope;
  messages: readonly Message[];
  metadata?: Record<string, unknown>;
  /** ISO 8601 date of the turn. */
  timestamp?: string;
  usage: Usage;
}

/**
 * Plans an `add` without a model: each user and assistant message is stored as it is, except a
 * text this exact scope holds already (NONE of it); a text repeated within the call is one memory.
 * ONE embedding call for every new text.
 */
export async function planVerbatim(
  { store, embedder, runtime }: { store: VectorStore; embedder: WrappedEmbedder; runtime: Runtime },
  { scope, messages, metadata, timestamp, usage }: VerbatimRequest,
): Promise<Plan> {
  const builder = new PlanBuilder(runtime, usage);
  const createdAt = timestamp ?? builder.now;
  const fresh: { text: string; hash: string }[] = [];
  const seen = new Set<string>();
  for (const message of messages) {
    if (message.role === "system") continue;
    const text = normaliseText(message.content);
    const hash = textHash(text);
    if (seen.has(hash)) continue;
    seen.add(hash);
    const { records } = await store.list({ filter: { scope, hash }, limit: 50 });
    const duplicate = records.find((record) => sameScope(record, scope));
    if (duplicate) builder.none(duplicate);
    else fresh.push({ text, hash });
  }
  if (messages.every((message) => message.role === "system"))
    builder.warn("Only system messages were given: system messages are never stored.");
  const vectors = await embedder.embed(
    fresh.map((f) => f.text),
    { usage },
  );
  fresh.forEach(({ text, hash }, i) => {
    const record: MemoryRecord = {
      id: runtime.id(),
      text,
      hash,
      vector: vectors[i],
      ...scope,
      metadata: metadata ?? {},
      createdAt,
      updatedAt: createdAt,
    };
    builder.add(record);
  });
  return builder.plan;
}
