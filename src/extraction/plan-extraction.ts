import type { WrappedEmbedder } from "../embedders/wrap-embedder.js";
import { type EngramError, ExtractionError } from "../errors.js";
import type { Relation } from "../graph/graph-store.js";
import type { HistoryLog } from "../history/history-log.js";
import type { Message } from "../history/outbox.js";
import { normaliseText } from "../internal/hash.js";
import { stripMemoryBlocks } from "../memory-block.js";
import { type Plan, PlanBuilder } from "../plan.js";
import { applyProfileEdits, currentProfile, profileEntries, profileEntry } from "../profile.js";
import type { Runtime } from "../runtime.js";
import { sameScope, type ValidScope } from "../scope.js";
import type { MemoryRecord, VectorStore } from "../stores/vector-store.js";
import type { ErrorContext, Usage } from "../types.js";
import { extractDecisions, type ModelCallOptions } from "./extract.js";
import type { AiSdkLanguageModel } from "./language-model.js";
import type { ParsedProfile } from "./output.js";
import { type ExtractFrom, extractionInstructions, extractionPrompt } from "./prompt.js";
import { type Operation, reconcile } from "./reconcile.js";

/** How `add` extracts, fixed by the `Memory` options. */
export interface ExtractionSettings {
  model: AiSdkLanguageModel;
  extractFrom: ExtractFrom;
  customInstructions?: string;
  /** How many existing memories of the scope the model sees. */
  similarMemories: number;
  call: ModelCallOptions;
  maxLength: number;
  /** Most decisions of one model reply that are applied; the rest are ignored, with a warning. */
  maxFacts: number;
  /** Whether the call shows the scope's profile and applies the model's edits to it, within `maxTokens`. */
  profile: { enabled: boolean; maxTokens: number };
  /** Graph memory: the same call also returns the relations of each fact it writes. */
  graph?: boolean;
}

/** What the planner needs from `Memory`: its store and embedder (guarded: deadlines, retries, typed errors), its error hook and runtime. */
export interface ExtractionServices {
  store: VectorStore;
  /** Where the profile lives. */
  history: HistoryLog;
  embedder: WrappedEmbedder;
  report(error: EngramError, context: ErrorContext): void;
  runtime: Runtime;
}

export interface ExtractionRequest {
  scope: ValidScope;
  /** Whose profile the model sees and edits. @default scope */
  profileScope?: ValidScope;
  messages: readonly Message[];
  metadata?: Record<string, unknown>;
  /** ISO 8601 date of the turn. */
  timestamp?: string;
  /** Filled in with what the add costs, also when it fails. */
  usage: Usage;
}

/**
 * Plans an `add` with extraction, changing nothing: ONE embedding call for the new messages finds
 * the most similar memories of exactly this scope, ONE model call turns messages and memories
 * into ADD / UPDATE / DELETE / NONE decisions, and ONE embedding call embeds every new and
 * changed text. The plan carries everything it needs to be applied later (ids, vectors, previous
 * records for the revert).
 */
export async function planExtraction(
  settings: ExtractionSettings,
  services: ExtractionServices,
  request: ExtractionRequest,
): Promise<Plan> {
  const { scope, usage } = request;
  const builder = new PlanBuilder(services.runtime, usage);
  const { plan } = builder;
  const conversation = conversationOf(request.messages);
  const isSource = (message: Message) => message.role === "user" || settings.extractFrom === "user-and-assistant";
  const sources = conversation.filter(isSource);
  const messages = conversation.map((message) => (isSource(message) ? message : { ...message, content: shortened(message.content) }));
  if (sources.length === 0) {
    plan.warnings.push(
      settings.extractFrom === "user"
        ? 'No user message to extract from: system messages and memory blocks are never remembered, and assistant messages only with extractFrom: "user-and-assistant".'
        : "No user or assistant message to extract from: system messages and memory blocks are never remembered.",
    );
    return plan;
  }

  const sourceTexts = sources.map((message) => normaliseText(message.content));
  const vectorOf = new Map<string, Float32Array>();
  const [similar, profile] = await Promise.all([
    similarMemories(settings, services, scope, sourceTexts, vectorOf, usage),
    settings.profile.enabled
      ? profileEntries(services.history, request.profileScope ?? scope).then((entries) => currentProfile(entries)?.text)
      : undefined,
  ]);
  const shown = new Map(similar.map((record, i) => [String(i), record]));

  const date = new Date(request.timestamp ?? services.runtime.now());
  const output = await extractDecisions(
    settings.model,
    {
      instructions: extractionInstructions({ ...settings, profile: settings.profile.enabled }),
      prompt: extractionPrompt({
        date,
        profile: settings.profile.enabled ? (profile ?? null) : undefined,
        memories: similar.map((record, i) => ({ id: String(i), text: record.text })),
        messages,
      }),
    },
    settings.graph ? { ...settings.call, graph: true } : settings.call,
    { usage, report: services.report },
  );
  const { decisions, warnings } = output;
  plan.warnings.push(...warnings);
  if (decisions.length > settings.maxFacts) {
    const warning = `The model returned ${decisions.length} decisions for one add; only the first ${settings.maxFacts} were considered (maxFactsPerAdd), the rest were ignored.`;
    plan.warnings.push(warning);
    services.report(new ExtractionError({ message: warning }), { operation: "extract", willRetry: false });
  }
  const reconciled = reconcile(shown, decisions.slice(0, settings.maxFacts), { maxLength: settings.maxLength });
  plan.warnings.push(...reconciled.warnings);
  const operations = await withoutStoredDuplicates(services, scope, reconciled.operations);

  // Records as stored, with their vectors, so that the plan can restore them.
  const targets = operations.flatMap((operation) =>
    operation.event === "UPDATE" || operation.event === "DELETE" ? [operation.target.id] : [],
  );
  const current = new Map(targets.length === 0 ? [] : (await services.store.get(targets, { scope })).map((record) => [record.id, record]));

  const texts = operations.flatMap((operation) => (operation.event === "ADD" || operation.event === "UPDATE" ? [operation.text] : []));
  const missing = [...new Set(texts.filter((text) => !vectorOf.has(text)))];
  const vectors = await services.embedder.embed(missing, { usage });
  missing.forEach((text, i) => {
    vectorOf.set(text, vectors[i] as Float32Array);
  });

  const stated = request.timestamp ?? builder.now;
  const relationsOf = (id: string, operation: Operation) => {
    if (!settings.graph || !("relations" in operation) || operation.relations === undefined) return;
    plan.graph ??= Object.create(null) as Record<string, Relation[]>;
    plan.graph[id] = operation.relations;
  };
  for (const operation of operations) {
    if (operation.event === "ADD") {
      const record: MemoryRecord = {
        id: services.runtime.id(),
        text: operation.text,
        hash: operation.hash,
        vector: vectorOf.get(operation.text),
        ...scope,
        metadata: request.metadata ?? {},
        createdAt: stated,
        updatedAt: stated,
      };
      builder.add(record);
      relationsOf(record.id, operation);
      continue;
    }
    if (operation.event === "NONE") {
      builder.none(operation.target);
      continue;
    }
    const previous = current.get(operation.target.id);
    if (!previous?.vector) {
      plan.warnings.push(`Ignored ${operation.event} of memory ${operation.target.id}: it was deleted while the model decided.`);
      continue;
    }
    if (operation.event === "UPDATE") {
      const updated: MemoryRecord = {
        ...previous,
        text: operation.text,
        hash: operation.hash,
        vector: vectorOf.get(operation.text),
        updatedAt: stated,
      };
      builder.update(previous, updated);
      relationsOf(updated.id, operation);
    } else builder.remove(previous);
  }
  // Last: a saved plan is found applied by its first history entry, which must be of the turn's scope.
  if (settings.profile.enabled) planProfile(settings, services, builder, request.profileScope ?? scope, profile, output.profile);
  return plan;
}

/**
 * The model's edits of the profile of `scope` (the add's, or its user's with `profileAcrossRuns`;
 * never one the model names), as one history entry of the plan: written
 * with the memories, all or nothing. Edits that cannot apply are left out and reported.
 */
function planProfile(
  { profile: { maxTokens } }: ExtractionSettings,
  { report, runtime }: ExtractionServices,
  builder: PlanBuilder,
  scope: ValidScope,
  current: string | undefined,
  proposed: ParsedProfile = { edits: [], problems: [] },
): void {
  const { text, problems } = applyProfileEdits(current, proposed.edits, maxTokens);
  for (const problem of [...proposed.problems, ...problems]) {
    builder.warn(problem);
    report(new ExtractionError({ message: problem }), { operation: "extract", willRetry: false });
  }
  if (text === current) return;
  builder.plan.history.push(profileEntry(runtime.id(), scope, current, text, builder.now));
  builder.plan.profile = { text: text ?? null, previousText: current ?? null };
}

/** Longest context-only message (an assistant reply when facts come from the user) shown to the model. */
export const MAX_CONTEXT_CHARACTERS = 1_200;

/** A context-only message is there to make the user's words understandable: its start and end are enough. */
function shortened(text: string): string {
  if (text.length <= MAX_CONTEXT_CHARACTERS) return text;
  const half = MAX_CONTEXT_CHARACTERS / 2;
  return `${text.slice(0, half)} […] ${text.slice(-half)}`;
}

/** The messages the model may read: no system messages, no memory blocks, nothing left empty. */
function conversationOf(messages: readonly Message[]): Message[] {
  const conversation: Message[] = [];
  for (const message of messages) {
    if (message.role === "system") continue;
    const content = stripMemoryBlocks(message.content);
    if (content !== "") conversation.push({ role: message.role, content });
  }
  return conversation;
}

/**
 * The existing memories of exactly `scope` most similar to any of the texts, best first: one
 * embedding call for all texts, one store search per text, merged by best similarity. The texts'
 * vectors are kept in `vectorOf`, for facts stated word for word.
 */
async function similarMemories(
  { similarMemories: limit }: ExtractionSettings,
  { store, embedder }: ExtractionServices,
  scope: ValidScope,
  texts: string[],
  vectorOf: Map<string, Float32Array>,
  usage: Usage,
): Promise<MemoryRecord[]> {
  if (limit === 0) return [];
  const unique = [...new Set(texts)];
  const vectors = await embedder.embed(unique, { usage });
  unique.forEach((text, i) => {
    vectorOf.set(text, vectors[i] as Float32Array);
  });
  // The store filter also matches memories of narrower scopes (an agent's, a run's); those are
  // not this scope's to change, so fetch a few more and keep exact matches.
  const hits = await Promise.all(vectors.map((vector) => store.search({ vector, filter: { scope }, limit: limit * 2 })));
  const best = new Map<string, { record: MemoryRecord; score: number }>();
  for (const hit of hits.flat()) {
    if (!sameScope(hit.record, scope)) continue;
    const known = best.get(hit.record.id);
    if (!known || hit.score > known.score) best.set(hit.record.id, hit);
  }
  return [...best.values()]
    .sort((a, b) => b.score - a.score || (a.record.id < b.record.id ? -1 : 1))
    .slice(0, limit)
    .map((hit) => hit.record);
}

/** An ADD of a text this scope already holds (beyond the memories shown) is a NONE of that memory. */
async function withoutStoredDuplicates({ store }: ExtractionServices, scope: ValidScope, operations: Operation[]): Promise<Operation[]> {
  const decided = new Set(operations.flatMap((operation) => (operation.event === "ADD" ? [] : [operation.target.id])));
  return Promise.all(
    operations.map(async (operation): Promise<Operation | undefined> => {
      if (operation.event !== "ADD") return operation;
      const { records } = await store.list({ filter: { scope, hash: operation.hash }, limit: 50 });
      const duplicate = records.find((record) => sameScope(record, scope));
      if (!duplicate) return operation;
      if (decided.has(duplicate.id)) return undefined;
      decided.add(duplicate.id);
      return { event: "NONE", target: duplicate };
    }),
  ).then((all) => all.filter((operation): operation is Operation => operation !== undefined));
}
