import { jsonrepair } from "jsonrepair";
import { z } from "zod";
import type { Relation } from "../graph/graph-store.js";
import type { ProfileEdit } from "../profile.js";
import type { MemoryEvent } from "../types.js";

export const memoryEvents = ["ADD", "UPDATE", "DELETE", "NONE"] as const satisfies readonly MemoryEvent[];

/**
 * The extraction model's output, exactly. Sent to the provider as the structured-output JSON
 * schema; documented in docs/extraction.md for users of local models. Keep the two in step.
 */
export const extractionOutputSchema = z.strictObject({
  memory: z.array(
    z.strictObject({
      id: z.string().describe('One of the ids of the existing memories shown, or "new" for ADD'),
      event: z.enum(memoryEvents),
      text: z.string().describe("The fact, atomic and self-contained"),
    }),
  ),
  profile: z
    .array(
      z.strictObject({
        field: z.string(),
        value: z.string().nullable().describe("null removes the field"),
      }),
    )
    .optional()
    .describe("Edits to the PROFILE, when it changes"),
});

export type ExtractionOutput = z.infer<typeof extractionOutputSchema>;

/**
 * The output with graph memory on: each entry also carries the relations its fact states. Same
 * call, same reply; one more field per entry.
 */
export const graphExtractionOutputSchema = z.strictObject({
  memory: z.array(
    extractionOutputSchema.shape.memory.element.extend({
      relations: z
        .array(z.strictObject({ source: z.string(), relation: z.string(), target: z.string() }))
        .describe("Relations between named entities that the fact states; [] for none"),
    }),
  ),
  profile: extractionOutputSchema.shape.profile,
});

/** One decision of the model, after lenient normalisation. */
export interface Decision {
  id: string;
  event: MemoryEvent;
  text: string;
  /** The relations the fact states (graph memory), when the model gave them. */
  relations?: Relation[];
}

/** The model's profile edits that could be read, and why the others could not. */
export interface ParsedProfile {
  edits: ProfileEdit[];
  problems: string[];
}

export type ParsedOutput = { ok: true; decisions: Decision[]; warnings: string[]; profile?: ParsedProfile } | { ok: false; reason: string };

/**
 * Reads the model's text tolerantly: the JSON object may be wrapped in prose or a code fence, and
 * may have trailing commas, single quotes, comments or unquoted keys (repaired by `jsonrepair`); a
 * bare array of entries is accepted too. Entries are normalised
 * (numeric ids become strings, event names are upper-cased, a missing text is empty); an entry
 * that still does not fit is dropped with a warning rather than failing the whole output.
 * Fails only when no `{ "memory": [...] }` can be found at all.
 */
export function parseExtractionOutput(text: string): ParsedOutput {
  const value = findJson(text);
  if (value === undefined) {
    return { ok: false, reason: text.trim() === "" ? "the output was empty" : "no JSON object could be read from the output" };
  }
  const object = Array.isArray(value) ? {} : (value as { memory?: unknown; profile?: unknown });
  // A reply with profile edits only is complete: no fact to remember.
  const entries = Array.isArray(value) ? value : object.memory === undefined && object.profile != null ? [] : object.memory;
  if (!Array.isArray(entries)) return { ok: false, reason: 'the JSON object has no "memory" array' };
  const decisions: Decision[] = [];
  const warnings: string[] = [];
  entries.forEach((entry, index) => {
    const decision = normaliseEntry(entry);
    if (typeof decision === "string") warnings.push(`Ignored entry ${index} of the model's output: ${decision}.`);
    else decisions.push(decision);
  });
  const profile = profileEditsOf(object.profile);
  return { ok: true, decisions, warnings, ...(profile.edits.length || profile.problems.length ? { profile } : {}) };
}

const scopeKeys = ["userId", "agentId", "runId", "user_id", "agent_id", "run_id", "scope"];

/**
 * The profile edits of the output, as a list of `{ field, value }` (an object of fields is read
 * too). An edit that does not fit, or that names a scope (the profile edited is always the add's),
 * is dropped and explained.
 */
function profileEditsOf(profile: unknown): ParsedProfile {
  if (profile == null) return { edits: [], problems: [] };
  const entries = Array.isArray(profile)
    ? profile
    : typeof profile === "object"
      ? Object.entries(profile).map(([field, value]) => ({ field, value }))
      : undefined;
  if (!entries) return { edits: [], problems: ['Ignored the model\'s "profile": it is not a list of { "field", "value" } edits.'] };
  const edits: ProfileEdit[] = [];
  const problems: string[] = [];
  entries.forEach((entry, index) => {
    const problem = profileEditProblem(entry);
    if (problem) problems.push(`Ignored profile edit ${index} of the model's output: ${problem}.`);
    else {
      const { field, value } = entry as { field: string; value: string | null };
      edits.push({ field: field.trim(), value });
    }
  });
  return { edits, problems };
}

function profileEditProblem(entry: unknown): string | undefined {
  if (entry == null || typeof entry !== "object" || Array.isArray(entry)) return "it is not an object";
  const scopeKey = scopeKeys.find((key) => Object.hasOwn(entry, key));
  if (scopeKey) return `it names a scope (${scopeKey}); a profile edit applies to the scope of the add only`;
  const { field, value } = entry as Record<string, unknown>;
  if (typeof field !== "string") return "its field is not a string";
  if (value !== null && typeof value !== "string") return "its value is neither a string nor null";
  return undefined;
}

function normaliseEntry(entry: unknown): Decision | string {
  if (entry == null || typeof entry !== "object" || Array.isArray(entry)) return "it is not an object";
  const { id, event, text } = entry as Record<string, unknown>;
  const name = typeof event === "string" ? event.trim().toUpperCase() : undefined;
  if (!name || !(memoryEvents as readonly string[]).includes(name)) {
    return `event ${JSON.stringify(event)} is not one of ${memoryEvents.join(", ")}`;
  }
  if (text !== undefined && text !== null && typeof text !== "string") return "text is not a string";
  const shownId = typeof id === "number" && Number.isInteger(id) ? String(id) : typeof id === "string" ? id.trim() : undefined;
  if (shownId === undefined && name !== "ADD") return `${name} without an id`;
  const decision: Decision = { id: shownId ?? "new", event: name as MemoryEvent, text: typeof text === "string" ? text : "" };
  const relations = relationsOf(entry);
  if (relations) decision.relations = relations;
  return decision;
}

/** Longest entity name or relation label kept from the model's output. */
const MAX_GRAPH_NAME = 200;

/** An entry's relations, read leniently: entries that are not three non-empty strings are left out. */
function relationsOf(entry: object): Relation[] | undefined {
  if (!Object.hasOwn(entry, "relations")) return undefined;
  const given = (entry as { relations?: unknown }).relations;
  if (!Array.isArray(given)) return undefined;
  const relations: Relation[] = [];
  for (const item of given as unknown[]) {
    if (item == null || typeof item !== "object" || Array.isArray(item)) continue;
    const { source, relation: label, target } = item as Record<string, unknown>;
    const fields = [source, label, target].map((value) =>
      typeof value === "string"
        ? value
            .replaceAll("\u0000", "")
            .replace(/\p{Cs}/gu, "\ufffd")
            .replace(/\s+/gu, " ")
            .trim()
        : "",
    );
    if (fields.some((value) => value === "" || value.length > MAX_GRAPH_NAME)) continue;
    const [from, relation, to] = fields as [string, string, string];
    relations.push({ source: from, relation: relation.toLowerCase(), target: to });
  }
  return relations;
}

const MAX_CANDIDATES = 64;

/**
 * The first JSON value in the text that looks like the output: the whole text, a fenced block, or
 * a balanced {…} / […]. Else the first object that is not part of another (for the error message).
 */
function findJson(text: string): unknown {
  const candidates: { text: string; outermost: boolean }[] = [{ text: text.trim(), outermost: true }];
  for (const match of text.matchAll(/```[a-zA-Z0-9_-]*[^\S\n]*\n?([\s\S]*?)```/g)) {
    candidates.push({ text: (match[1] ?? "").trim(), outermost: true });
  }
  let starts = 0;
  for (let i = 0; i < text.length && starts < MAX_CANDIDATES; i++) {
    const char = text[i];
    if (char !== "{" && char !== "[") continue;
    starts++;
    const end = matchingClose(text, i);
    if (end !== -1) candidates.push({ text: text.slice(i, end + 1), outermost: starts === 1 });
  }
  let fallback: unknown;
  for (const candidate of candidates) {
    const value = parseLoose(candidate.text);
    if (value === undefined) continue;
    if (looksLikeOutput(value)) return value;
    if (candidate.outermost && value !== null && typeof value === "object") fallback ??= value;
  }
  return fallback;
}

function looksLikeOutput(value: unknown): boolean {
  if (Array.isArray(value)) return value.every((entry) => entry != null && typeof entry === "object" && "event" in entry);
  if (value == null || typeof value !== "object") return false;
  const { memory, profile } = value as { memory?: unknown; profile?: unknown };
  return Array.isArray(memory) || (memory === undefined && Array.isArray(profile));
}

function parseLoose(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {}
  // Only a complete value is repaired (trailing commas, single quotes, comments, unquoted keys,
  // Python's None / True): a reply cut off mid-way goes back to the model instead.
  if (!/^[[{]/.test(text) || matchingClose(text, 0) !== text.length - 1) return undefined;
  try {
    return JSON.parse(jsonrepair(text));
  } catch {
    return undefined;
  }
}

/** Index of the bracket closing the one at `start`, skipping strings; -1 when unbalanced. */
function matchingClose(text: string, start: number): number {
  const stack: string[] = [];
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (char === "\\") i++;
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === "{") stack.push("}");
    else if (char === "[") stack.push("]");
    else if (char === "}" || char === "]") {
      if (stack.pop() !== char) return -1;
      if (stack.length === 0) return i;
    }
  }
  return -1;
}
