import type { WrappedEmbedder } from "./embedders/wrap-embedder.js";
import type { Message } from "./history/outbox.js";
import { textHash } from "./internal/hash.js";
import { type MemoryOrigin, originOf, withOrigin } from "./memory-origin.js";
import { type Plan, PlanBuilder } from "./plan.js";
import type { Runtime } from "./runtime.js";
import { sameScope, type ValidScope } from "./scope.js";
import { isTimeOrdered, type MemoryRecord, type VectorStore } from "./stores/vector-store.js";
import type { Usage } from "./types.js";
import { type Burst, burstsOf, burstText, SESSION_GAP_MS, wordCount } from "./verbatim/turns.js";

export interface VerbatimRequest {
  scope: ValidScope;
  messages: readonly Message[];
  metadata?: Record<string, unknown>;
  /** ISO 8601 date of the turn. */
  timestamp?: string;
  usage: Usage;
}

/** Largest metadata a memory may grow to by recording the adds that joined it. */
const MAX_METADATA_JSON = 16_384;

/**
 * Plans an `add` without a model. Filler ("ok", "Sure, noted.", "haha") is not stored; consecutive
 * messages of one speaker (same role and name) become one memory, `"<name>: <texts>"`, while their
 * words stay within `BURST_WORDS`. The first of them continue the scope's latest memory (an UPDATE,
 * its previous text kept in history) when it is the same named speaker's, of this exact scope, said at
 * most `SESSION_GAP_MS` before, and there is room. A memory text this exact scope holds already is
 * NONE of it; a text repeated within the call is one memory. New memories of one add are a
 * millisecond apart, in message order. ONE embedding call for every new or changed text.
 */
export async function planVerbatim(
  { store, embedder, runtime }: { store: VectorStore; embedder: WrappedEmbedder; runtime: Runtime },
  { scope, messages, metadata = {}, timestamp, usage }: VerbatimRequest,
): Promise<Plan> {
  const builder = new PlanBuilder(runtime, usage);
  const at = Date.parse(timestamp ?? builder.now);
  if (messages.every((message) => message.role === "system"))
    builder.warn("Only system messages were given: system messages are never stored.");
  const latest = messages.some((message) => message.role !== "system") ? await continuable(store, scope, at) : undefined;
  const { bursts, repeats } = burstsOf(messages, latest ? { open: latest.burst } : {});

  const unchanged = new Set<string>();
  const none = (record: MemoryRecord) => {
    if (!unchanged.has(record.id)) builder.none(record);
    unchanged.add(record.id);
  };
  const changed: { text: string; hash: string; record: (vector: Float32Array) => MemoryRecord; previous?: MemoryRecord }[] = [];
  let remaining = bursts;
  if (latest) {
    const [open, ...rest] = bursts as [Burst, ...Burst[]];
    remaining = rest;
    const added = open.parts.length - latest.burst.parts.length;
    if (added > 0) {
      const text = burstText(open);
      const origin: MemoryOrigin = {
        ...latest.origin,
        messages: latest.origin.messages + added,
        joined: [...(latest.origin.joined ?? []), metadata],
      };
      const previous = latest.record;
      changed.push({
        text,
        hash: textHash(text),
        previous,
        record: (vector) => ({
          ...previous,
          text,
          hash: textHash(text),
          vector,
          metadata: withOrigin(previous.metadata, origin),
          updatedAt: new Date(at).toISOString(),
        }),
      });
    } else if (repeats > 0) {
      none(latest.record);
    }
  }

  const seen = new Set<string>();
  for (const burst of remaining) {
    const text = burstText(burst);
    const hash = textHash(text);
    if (seen.has(hash)) continue;
    seen.add(hash);
    const { records } = await store.list({ filter: { scope, hash }, limit: 50 });
    const duplicate = records.find((record) => sameScope(record, scope));
    if (duplicate) {
      none(duplicate);
      continue;
    }
    const createdAt = new Date(at + changed.filter((change) => !change.previous).length).toISOString();
    const origin: MemoryOrigin = {
      role: burst.role,
      ...(burst.name === undefined ? {} : { name: burst.name }),
      messages: burst.parts.length,
    };
    changed.push({
      text,
      hash,
      record: (vector) => ({
        id: runtime.id(),
        text,
        hash,
        vector,
        ...scope,
        metadata: withOrigin(metadata, origin),
        createdAt,
        updatedAt: createdAt,
      }),
    });
  }

  const vectors = await embedder.embed(
    changed.map((change) => change.text),
    { usage },
  );
  changed.forEach((change, i) => {
    const record = change.record(vectors[i] as Float32Array);
    if (change.previous) builder.update(change.previous, record);
    else builder.add(record);
  });
  return builder.plan;
}

/**
 * The scope's latest memory when a message said at `at` may continue it: a verbatim memory of a
 * named speaker in this exact scope, last said at most `SESSION_GAP_MS` before `at` (and not after it), with room left
 * under the burst cap and in its metadata. Needs a `TimeOrdered` store.
 */
async function continuable(
  store: VectorStore,
  scope: ValidScope,
  at: number,
): Promise<{ record: MemoryRecord; origin: MemoryOrigin; burst: Burst } | undefined> {
  if (!isTimeOrdered(store)) return undefined;
  const [record] = await store.latest({ filter: { scope }, limit: 1 });
  if (!record || !sameScope(record, scope)) return undefined;
  const origin = originOf(record.metadata);
  // Only a named speaker's utterance runs on across adds: unnamed adds (a fact from the CLI, a
  // tool or a string add) are separate memories however close together they come.
  if (origin?.name === undefined) return undefined;
  const lastSaid = Date.parse(record.updatedAt);
  if (!(at >= lastSaid && at - lastSaid <= SESSION_GAP_MS)) return undefined;
  if (JSON.stringify(record.metadata).length > MAX_METADATA_JSON / 2) return undefined;
  const prefix = origin.name === undefined ? "" : `${origin.name}: `;
  if (!record.text.startsWith(prefix)) return undefined;
  const body = record.text.slice(prefix.length);
  const burst: Burst = {
    role: origin.role,
    ...(origin.name === undefined ? {} : { name: origin.name }),
    parts: [body],
    words: wordCount(body),
  };
  return { record, origin, burst };
}
