import { z } from "zod";
import type { Components } from "./components.js";
import { type EngramError, ExtractionError } from "./errors.js";
import type { ModelCallOptions } from "./extraction/extract.js";
import type { AiSdkLanguageModel } from "./extraction/language-model.js";
import { mergeWithModel } from "./extraction/merge-cluster.js";
import { normaliseText, textHash } from "./internal/hash.js";
import { textProblem } from "./internal/plain-data.js";
import { callerMetadata, originOf, withOrigin } from "./memory-origin.js";
import { emptyUsage, type Plan, PlanBuilder } from "./plan.js";
import { keywordTerms, stem } from "./retrieval/keywords.js";
import type { Runtime } from "./runtime.js";
import type { ValidScope } from "./scope.js";
import { dotProduct } from "./store-kit/filter.js";
import type { MemoryRecord } from "./stores/vector-store.js";
import type { ErrorContext, Usage } from "./types.js";

/**
 * Cosine similarity two memories need to count as near-duplicates. Measured on REALTALK stored
 * verbatim with the local embedder (bench/consolidate.ts): see docs/lifecycle.md.
 */
export const defaultMergeSimilarity = 0.9;
/** Share of their keywords (stemmed, Jaccard) two memories need in common as well. */
export const defaultMergeKeywordOverlap = 0.5;

export const consolidateSchema = z.strictObject({
  dryRun: z.boolean().optional(),
  similarity: z.number().min(0, "similarity must be between 0 and 1").max(1, "similarity must be between 0 and 1").optional(),
  keywordOverlap: z.number().min(0, "keywordOverlap must be between 0 and 1").max(1, "keywordOverlap must be between 0 and 1").optional(),
});

export interface ConsolidateOptions {
  /** Find the clusters and say what would be merged, changing nothing (and calling no model). @default false */
  dryRun?: boolean;
  /** Cosine similarity two memories need to be near-duplicates. @default 0.9 */
  similarity?: number;
  /** Share of their keywords (Jaccard of stemmed terms) they need in common too. @default 0.5 */
  keywordOverlap?: number;
}

export interface ConsolidationCluster {
  /** The memory the cluster is merged into (it keeps this id; the others are deleted). */
  into: string;
  /** The merged text. Absent in a dry run when a model would write it. */
  memory?: string;
  /** Every member, the one merged into included, oldest first. */
  members: { id: string; memory: string; updatedAt: string }[];
  /** The lowest cosine similarity between two members. */
  similarity: number;
}

export interface ConsolidateResult {
  /** Memories of the scope looked at. */
  memories: number;
  clusters: ConsolidationCluster[];
  /** Memories deleted because they were merged into another (0 in a dry run). */
  merged: number;
  dryRun: boolean;
  usage: Usage;
}

interface Candidate {
  record: MemoryRecord & { vector: Float32Array };
  unit: Float32Array;
  terms: Set<string>;
}

/** Stemmed keywords of a text, for the overlap test. */
function termsOf(text: string): Set<string> {
  return new Set(keywordTerms(text).map(stem));
}

function jaccard(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let shared = 0;
  for (const term of a) if (b.has(term)) shared++;
  return shared / (a.size + b.size - shared);
}

function normalised(vector: Float32Array): Float32Array {
  const norm = Math.sqrt(dotProduct(vector, vector)) || 1;
  return vector.map((value) => value / norm);
}

/**
 * Only memories of exactly one scope, said by one speaker, are ever merged: a fact kept for one
 * run or one agent must not move to another, and two people saying the same words are two facts.
 */
function groupKey(record: MemoryRecord): string {
  const origin = originOf(record.metadata);
  return JSON.stringify([record.userId ?? null, record.agentId ?? null, record.runId ?? null, origin?.role ?? null, origin?.name ?? null]);
}

/**
 * Clusters of near-duplicates among `records`: complete linkage, so every two members of a cluster
 * pass both tests (a chain of small steps never joins two different facts). Pairs are joined most
 * similar first. Each cluster's members are oldest first; clusters in the order of their first member.
 */
export function findClusters(
  records: readonly (MemoryRecord & { vector: Float32Array })[],
  { similarity, keywordOverlap }: { similarity: number; keywordOverlap: number },
): { members: (MemoryRecord & { vector: Float32Array })[]; similarity: number }[] {
  const groups = new Map<string, Candidate[]>();
  for (const record of records) {
    const key = groupKey(record);
    const group = groups.get(key) ?? [];
    group.push({ record, unit: normalised(record.vector), terms: termsOf(record.text) });
    groups.set(key, group);
  }
  const clusters: { members: (MemoryRecord & { vector: Float32Array })[]; similarity: number }[] = [];
  for (const group of groups.values()) {
    const edges: { i: number; j: number; cosine: number }[] = [];
    const linked = new Map<number, number>();
    const pairKey = (i: number, j: number) => (i < j ? i * group.length + j : j * group.length + i);
    for (let i = 0; i < group.length; i++) {
      const a = group[i] as Candidate;
      for (let j = i + 1; j < group.length; j++) {
        const b = group[j] as Candidate;
        const cosine = dotProduct(a.unit, b.unit);
        if (cosine < similarity || jaccard(a.terms, b.terms) < keywordOverlap) continue;
        edges.push({ i, j, cosine });
        linked.set(pairKey(i, j), cosine);
      }
    }
    edges.sort((x, y) => y.cosine - x.cosine || x.i - y.i || x.j - y.j);
    const clusterOf = group.map((_, i) => i);
    const members = new Map<number, number[]>(group.map((_, i) => [i, [i]]));
    const lowest = new Map<number, number>();
    for (const { i, j, cosine } of edges) {
      const a = clusterOf[i] as number;
      const b = clusterOf[j] as number;
      if (a === b) continue;
      const left = members.get(a) as number[];
      const right = members.get(b) as number[];
      let weakest = cosine;
      const complete = left.every((x) =>
        right.every((y) => {
          const value = linked.get(pairKey(x, y));
          if (value === undefined) return false;
          weakest = Math.min(weakest, value);
          return true;
        }),
      );
      if (!complete) continue;
      for (const y of right) clusterOf[y] = a;
      left.push(...right);
      members.delete(b);
      lowest.set(a, Math.min(weakest, lowest.get(a) ?? 1, lowest.get(b) ?? 1));
    }
    for (const [id, list] of members) {
      if (list.length < 2) continue;
      const sorted = list.map((index) => (group[index] as Candidate).record).sort(byAge);
      clusters.push({ members: sorted, similarity: lowest.get(id) ?? 1 });
    }
  }
  return clusters.sort((x, y) => byAge(x.members[0] as MemoryRecord, y.members[0] as MemoryRecord));
}

const byAge = (a: MemoryRecord, b: MemoryRecord) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id);

/**
 * Without a model, the text kept verbatim: the most recently changed member's (what was said last
 * wins when variants differ); between members changed at the same moment, the longest.
 */
export function survivorOf(members: readonly MemoryRecord[]): MemoryRecord {
  return members.reduce((best, member) => {
    const order = member.updatedAt.localeCompare(best.updatedAt) || member.text.length - best.text.length;
    return order > 0 ? member : best;
  });
}

export interface ConsolidationSettings {
  runtime: Runtime;
  /** The extraction model, when the Memory has one: it writes each cluster's merged fact. */
  model?: AiSdkLanguageModel;
  call?: ModelCallOptions;
  maxLength: number;
  report(error: EngramError, context: ErrorContext): void;
}

const PAGE = 500;

/** Every memory of exactly the scopes inside `scope`, with vectors. */
async function recordsOf(components: Components, scope: ValidScope): Promise<(MemoryRecord & { vector: Float32Array })[]> {
  const records: (MemoryRecord & { vector: Float32Array })[] = [];
  let cursor: string | undefined;
  do {
    const page = await components.store.list({ filter: { scope }, limit: PAGE, cursor });
    const ids = page.records.map((record) => record.id);
    const full = ids.length ? await components.store.get(ids, { scope }) : [];
    for (const record of full) if (record.vector) records.push(record as MemoryRecord & { vector: Float32Array });
    cursor = page.cursor;
  } while (cursor);
  return records;
}

/**
 * Plans the consolidation of a scope: finds the clusters and, unless it is a dry run, decides each
 * merged memory (with the model, one call per cluster, or verbatim). Changes nothing.
 */
export async function planConsolidation(
  settings: ConsolidationSettings,
  components: Components,
  scope: ValidScope,
  { dryRun = false, similarity = defaultMergeSimilarity, keywordOverlap = defaultMergeKeywordOverlap }: ConsolidateOptions,
): Promise<{ result: ConsolidateResult; plan: Plan | undefined }> {
  const usage = emptyUsage();
  const records = await recordsOf(components, scope);
  const found = findClusters(records, { similarity, keywordOverlap });
  const withModel = settings.model !== undefined && settings.call !== undefined;
  const clusters: ConsolidationCluster[] = found.map(({ members, similarity: lowest }) => {
    const survivor = survivorOf(members);
    return {
      into: survivor.id,
      ...(withModel && dryRun ? {} : { memory: survivor.text }),
      members: members.map((member) => ({ id: member.id, memory: member.text, updatedAt: member.updatedAt })),
      similarity: lowest,
    };
  });
  const result: ConsolidateResult = { memories: records.length, clusters, merged: 0, dryRun, usage };
  if (dryRun || found.length === 0) return { result, plan: undefined };

  const texts: string[] = [];
  for (const { members } of found) {
    if (!withModel) {
      texts.push(survivorOf(members).text);
      continue;
    }
    const text = normaliseText(
      await mergeWithModel(
        settings.model as AiSdkLanguageModel,
        members.map((member) => member.text),
        settings.call as ModelCallOptions,
        {
          usage,
          report: settings.report,
        },
      ),
    );
    const problem =
      text.trim() === ""
        ? "is empty"
        : text.length > settings.maxLength
          ? `is longer than ${settings.maxLength} characters`
          : textProblem(text);
    if (problem) {
      throw new ExtractionError({
        message: `The model's merged memory ${problem}. Nothing was changed; run consolidate again, or without an llm to keep one text verbatim.`,
        rawOutput: text,
      });
    }
    texts.push(text);
  }
  const changed = found.flatMap(({ members }, i) => (texts[i] === survivorOf(members).text ? [] : [i]));
  const vectors = changed.length ? await components.embedder.embed(changed.map((i) => texts[i] as string)) : [];
  if (changed.length) usage.embeddingCalls++;
  const vectorOf = new Map(changed.map((i, k) => [i, vectors[k] as Float32Array]));

  const builder = new PlanBuilder(settings.runtime, usage);
  found.forEach(({ members }, i) => {
    const survivor = survivorOf(members) as MemoryRecord & { vector: Float32Array };
    const absorbed = members.filter((member) => member.id !== survivor.id);
    const text = texts[i] as string;
    const vector = vectorOf.get(i) ?? survivor.vector;
    const origin = originOf(survivor.metadata);
    // A verbatim memory keeps where every merged message came from (`sources` of the item).
    const joined = absorbed.flatMap((member) => [callerMetadata(member.metadata), ...(originOf(member.metadata)?.joined ?? [])]);
    const merged: MemoryRecord = {
      ...survivor,
      text,
      hash: textHash(text),
      vector,
      ...(origin ? { metadata: withOrigin(survivor.metadata, { ...origin, joined: [...(origin.joined ?? []), ...joined] }) } : {}),
      updatedAt: builder.now,
    };
    builder.merge(survivor, merged, absorbed);
    (clusters[i] as ConsolidationCluster).memory = text;
    result.merged += absorbed.length;
  });
  return { result, plan: builder.plan };
}
