import type { WrappedEmbedder } from "./embedders/wrap-embedder.js";
import type { Message } from "./history/outbox.js";
import { type Plan, versionOf } from "./plan.js";
import { planVerbatim } from "./plan-verbatim.js";
import type { Runtime } from "./runtime.js";
import type { ValidScope } from "./scope.js";
import { matchesFilter } from "./store-kit/filter.js";
import { isTimeOrdered, type MemoryRecord, type StoreFilter, type VectorStore, type WriteExpectation } from "./stores/vector-store.js";

/** One verbatim add of a batch, validated. */
export interface BatchTurn {
  scope: ValidScope;
  messages: Message[];
  metadata?: Record<string, unknown>;
  /** ISO 8601. */
  timestamp?: string;
}

/**
 * Plans verbatim adds as if they ran one after another, with ONE embedding call for all of them:
 * each add is decided against the store as the adds before it leave it (a burst it continues, a
 * text it repeats), and the vectors of what the batch writes are filled in once every add is
 * planned (a memory changed by several adds is embedded once, with its final text; the plans of
 * the adds before keep a zero vector for it, which is never written).
 */
export async function planVerbatimBatch(
  { store, embedder, runtime, dimension }: { store: VectorStore; embedder: WrappedEmbedder; runtime: Runtime; dimension: number },
  turns: readonly BatchTurn[],
): Promise<Plan[]> {
  const overlay = new PendingWrites(store);
  const texts: string[] = [];
  const placeholders: Float32Array[] = [];
  // Hands out vectors to fill in later: planning one add never waits for the embedder.
  const deferred: WrappedEmbedder = {
    dimension,
    ...(embedder.modelId === undefined ? {} : { modelId: embedder.modelId }),
    embed: async (batch) =>
      batch.map((text) => {
        const vector = new Float32Array(dimension);
        texts.push(text);
        placeholders.push(vector);
        return vector;
      }),
  };
  const plans: Plan[] = [];
  for (const turn of turns) {
    const usage = { llmCalls: 0, inputTokens: 0, outputTokens: 0, embeddingCalls: 0 };
    const plan = await planVerbatim({ store: overlay.view, embedder: deferred, runtime }, { ...turn, usage });
    overlay.apply(plan);
    plans.push(plan);
  }
  // A burst that grows over several adds is written once, with its last text: only the vectors
  // the batch writes are embedded, not every text the burst had on the way.
  const written = new Set(mergePlans(plans).upsert.map((record) => record.vector));
  const needed = placeholders.flatMap((placeholder, i) => (written.has(placeholder) ? [i] : []));
  if (needed.length > 0) {
    const first = plans.find((plan) => plan.upsert.length > 0);
    const vectors = await embedder.embed(
      needed.map((i) => texts[i] as string),
      first ? { usage: first.usage } : {},
    );
    needed.forEach((index, i) => {
      (placeholders[index] as Float32Array).set(vectors[i] as Float32Array);
    });
  }
  return plans;
}

/**
 * One plan doing what `plans` do one after another: each memory written once (its last version),
 * each checked against the state it had before the first of them, every history entry in order.
 */
export function mergePlans(plans: readonly Plan[]): Plan {
  const expect = new Map<string, WriteExpectation>();
  const upsert = new Map<string, MemoryRecord>();
  const revertUpsert = new Map<string, MemoryRecord>();
  const revertDelete = new Set<string>();
  const revertExpect = new Map<string, WriteExpectation>();
  for (const plan of plans) {
    for (const expectation of plan.expect) if (!expect.has(expectation.id)) expect.set(expectation.id, expectation);
    for (const record of plan.upsert) {
      upsert.delete(record.id);
      upsert.set(record.id, record);
      revertExpect.set(record.id, { id: record.id, version: versionOf(record) });
    }
    for (const record of plan.revert.upsert)
      if (!revertUpsert.has(record.id) && !revertDelete.has(record.id)) revertUpsert.set(record.id, record);
    for (const id of plan.revert.delete) if (!revertUpsert.has(id)) revertDelete.add(id);
  }
  return {
    results: plans.flatMap((plan) => plan.results),
    upsert: [...upsert.values()],
    delete: [...new Set(plans.flatMap((plan) => plan.delete))],
    expect: [...expect.values()],
    history: plans.flatMap((plan) => plan.history),
    revert: { upsert: [...revertUpsert.values()], delete: [...revertDelete], expect: [...revertExpect.values()] },
    usage: plans.reduce(
      (sum, plan) => ({
        llmCalls: sum.llmCalls + plan.usage.llmCalls,
        inputTokens: sum.inputTokens + plan.usage.inputTokens,
        outputTokens: sum.outputTokens + plan.usage.outputTokens,
        embeddingCalls: sum.embeddingCalls + plan.usage.embeddingCalls,
      }),
      { llmCalls: 0, inputTokens: 0, outputTokens: 0, embeddingCalls: 0 },
    ),
    warnings: plans.flatMap((plan) => plan.warnings),
  };
}

/** The store as it will be once the plans so far are applied: what a verbatim plan reads (latest, list by hash). */
class PendingWrites {
  readonly #records = new Map<string, MemoryRecord>();
  /** Ids of stored records the batch changed (its own new records aside). */
  readonly #replaced = new Set<string>();
  readonly view: VectorStore;

  constructor(store: VectorStore) {
    const pending = this.#records;
    const replaced = this.#replaced;
    const mine = (filter: StoreFilter) => [...pending.values()].filter((record) => matchesFilter(record, filter));
    const list: VectorStore["list"] = async (request) => {
      const { records } = await store.list(request);
      return { records: [...records.filter((record) => !pending.has(record.id)), ...mine(request.filter)].slice(0, request.limit) };
    };
    const ordered = isTimeOrdered(store) && {
      stamps: (filter: StoreFilter) => store.stamps(filter),
      latest: async ({ filter, limit }: { filter: StoreFilter; limit: number }) => {
        // Only a stored record the batch changed can drop out of the store's newest: read that many more.
        const stored = await store.latest({ filter, limit: limit + replaced.size });
        return [...stored.filter((record) => !pending.has(record.id)), ...mine(filter)]
          .sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1))
          .slice(0, limit);
      },
    };
    // Only what planVerbatim reads: nothing else may be called on it.
    const view = { list, ...ordered } as unknown as VectorStore;
    this.view = view;
  }

  apply(plan: Plan): void {
    for (const { id, version } of plan.expect) if (version !== null && !this.#records.has(id)) this.#replaced.add(id);
    for (const record of plan.upsert) this.#records.set(record.id, record);
  }
}
