import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { z } from "zod";
import { EngramError, InvalidInputError } from "../errors.js";
import { exactScopeKey } from "../graph/entity-key.js";
import type { Relation } from "../graph/graph-store.js";
import type { Message } from "../history/outbox.js";
import { plainData, textProblem } from "../internal/plain-data.js";
import { type Scope, scopeKeys, splitScope, validateScope } from "../scope.js";
import { metadataSchema } from "../validation.js";

/** One message to import, with where it came from (for error messages). */
export interface ImportTurn {
  scope: Scope;
  message: Message;
  /** ISO 8601; the memory's `createdAt`. */
  timestamp?: string;
  metadata?: Record<string, unknown>;
  /** ISO 8601; when the memory expires (lines of `engram export` carry it). */
  expiresAt?: string;
  /** `file:12`, or `file: sample conv-26, session_3, D3:7`. */
  source: string;
}

/** Consecutive turns of one scope, timestamp and metadata, written as one outbox entry (one `add`). */
export interface ImportChunk {
  /** Deterministic idempotency key: the same chunk of the same file gets the same key on every run. */
  key: string;
  scope: Scope;
  messages: Message[];
  timestamp?: string;
  metadata?: Record<string, unknown>;
  expiresAt?: string;
  /** Where its first and last turns came from. */
  sources: [string, string];
}

/** A scope's profile, from a line of `engram export`. */
export interface ImportProfile {
  scope: Scope;
  text: string;
  source: string;
}

/**
 * A relation line of `engram export`, re-attached after the import to the memories of its scope
 * whose text is that of the memory lines its `memoryIds` name (an import gives memories new ids).
 */
export interface ImportRelation {
  scope: Scope;
  relation: Relation;
  /** The texts of the memories that support it, memory lines of the same file and scope. */
  memories: string[];
  source: string;
}

/** What a JSONL file holds besides its turns. */
export interface ImportExtras {
  profiles: ImportProfile[];
  relations: ImportRelation[];
}

export type ImportFormat = "jsonl" | "locomo";

/** A problem in the file being imported: a user error that names the line. */
function fileError(source: string, message: string): InvalidInputError {
  return new InvalidInputError({ message: `${source}: ${message}` });
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "invalid value";
  if (issue.code === "unrecognized_keys") return `unknown key "${issue.keys[0]}"`;
  return `${issue.path.length ? `${issue.path.join(".")}: ` : ""}${issue.message}`;
}

const isoTimestamp = z
  .string()
  .refine((value) => !Number.isNaN(Date.parse(value)), "must be an ISO 8601 date, e.g. 2024-05-08T13:56:00Z")
  .transform((value) => new Date(value).toISOString());

const metadata = metadataSchema as z.ZodType<Record<string, unknown>>;

/** A chat turn: `{ role, content, userId?, agentId?, runId?, timestamp?, metadata? }`. */
const turnLine = z.strictObject({
  role: z.enum(["user", "assistant", "system"]),
  content: z.string().refine((value) => value.trim() !== "", "must not be empty"),
  timestamp: isoTimestamp.optional(),
  metadata: metadata.optional(),
});

/** A line of `engram export`: `{ id, memory, hash, metadata, createdAt, updatedAt, ...scope }`. */
const exportedLine = z.strictObject({
  memory: z.string().refine((value) => value.trim() !== "", "must not be empty"),
  id: z.string().optional(),
  hash: z.string().optional(),
  metadata: metadata.optional(),
  createdAt: isoTimestamp.optional(),
  updatedAt: z.string().optional(),
  expiresAt: isoTimestamp.optional(),
  score: z.number().optional(),
});

/** A profile line of `engram export`: `{ profile, updatedAt, ...scope }`. */
const profileLine = z.strictObject({
  profile: z.string().refine((value) => value.trim() !== "", "must not be empty"),
  updatedAt: z.string().optional(),
});

const graphName = (what: string) =>
  z.string({ error: "must be a string" }).min(1, `${what} must not be empty`).max(500, `${what} must be at most 500 characters`);

/** A relation line of `engram export`: `{ source, relation, target, memoryIds, ...scope }`. */
const relationLine = z.strictObject({
  source: graphName("source"),
  relation: graphName("relation"),
  target: graphName("target"),
  memoryIds: z.array(z.string()).min(1, "must name at least one memory"),
});

function scopeFor(source: string, lineScope: Record<string, unknown>, defaults: Scope): Scope {
  try {
    return { ...validateScope("import", { ...defaults, ...lineScope }) };
  } catch (error) {
    if (EngramError.isInstance(error) && error.code === "MISSING_SCOPE") {
      throw fileError(source, "no scope: give the line a userId, agentId or runId, or pass --user, --agent or --run");
    }
    throw fileError(source, EngramError.isInstance(error) ? error.message : String(error));
  }
}

/** The turns of a JSONL file; the profile and relation lines of an export go to `extras`. */
export function parseJsonl(
  text: string,
  name: string,
  defaults: Scope,
  extras: ImportExtras = { profiles: [], relations: [] },
): ImportTurn[] {
  const turns: ImportTurn[] = [];
  // Memory lines by exported id: relation lines name the memories that support them this way.
  const memoryLines = new Map<string, { scope: string; text: string | undefined }>();
  const lines = text.split(/\r?\n/);
  lines.forEach((line, index) => {
    if (line.trim() === "") return;
    const source = `${name}:${index + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw fileError(source, "not valid JSON (each line must be one JSON object)");
    }
    if (value == null || typeof value !== "object" || Array.isArray(value)) throw fileError(source, "each line must be a JSON object");
    const { scope, rest } = splitScope(value, source);
    const lineScope = scopeFor(source, scope, defaults);
    const data = plainData(rest, source);
    if (Object.hasOwn(rest, "profile")) {
      const parsed = profileLine.safeParse(data);
      if (!parsed.success) throw fileError(source, firstIssue(parsed.error));
      const problem = textProblem(parsed.data.profile);
      if (problem) throw fileError(source, `profile ${problem}`);
      extras.profiles.push({ scope: lineScope, text: parsed.data.profile, source });
      return;
    }
    if (Object.hasOwn(rest, "relation")) {
      const parsed = relationLine.safeParse(data);
      if (!parsed.success) throw fileError(source, firstIssue(parsed.error));
      const { memoryIds, ...relation } = parsed.data;
      const scopeKey = exactScopeKey(lineScope);
      const memories = new Set<string>();
      for (const id of memoryIds) {
        const line = memoryLines.get(id);
        if (!line) throw fileError(source, `memoryIds: "${id}" is not the id of a memory line above this one`);
        // The scope boundary: a relation only ever attaches to memories of its own scope.
        if (line.scope !== scopeKey) throw fileError(source, `memoryIds: "${id}" is a memory of another scope than this relation's`);
        if (line.text !== undefined) memories.add(line.text);
      }
      // Every memory that supported it has expired: so has the relation.
      if (memories.size > 0) extras.relations.push({ scope: lineScope, relation, memories: [...memories], source });
      return;
    }
    if (Object.hasOwn(rest, "memory")) {
      const parsed = exportedLine.safeParse(data);
      if (!parsed.success) throw fileError(source, firstIssue(parsed.error));
      const { memory, id, metadata: meta, createdAt, expiresAt } = parsed.data;
      // An exported memory that has expired since would never be returned: it is not imported.
      const expired = expiresAt !== undefined && Date.parse(expiresAt) <= Date.now();
      if (id !== undefined) memoryLines.set(id, { scope: exactScopeKey(lineScope), text: expired ? undefined : memory });
      if (expired) return;
      turns.push({
        scope: lineScope,
        message: { role: "user", content: memory },
        timestamp: createdAt,
        metadata: meta,
        ...(expiresAt === undefined ? {} : { expiresAt }),
        source,
      });
      return;
    }
    const parsed = turnLine.safeParse(data);
    if (!parsed.success) throw fileError(source, firstIssue(parsed.error));
    const { role, content, timestamp, metadata: meta } = parsed.data;
    // System messages are instructions, never memories.
    if (role === "system") return;
    turns.push({ scope: lineScope, message: { role, content }, timestamp, metadata: meta, source });
  });
  return turns;
}

const months = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];

function utc(year: number, month: number, day: number, hour: number, minute: number, second: number): string | undefined {
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Rejects 31 April and the like instead of rolling over to another day.
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  )
    return undefined;
  return date.toISOString();
}

/**
 * A LoCoMo-schema session date as ISO 8601 (read as UTC, the files give no zone):
 * `29.12.2023, 22:42:04` (REALTALK), `1:56 pm on 8 May, 2023` (LoCoMo; also `p.m.`), or any
 * ISO 8601 date. Undefined when it is none of these (or names a day that does not exist).
 */
export function parseSessionDate(text: string): string | undefined {
  const value = text.trim();
  const dotted = /^(\d{1,2})\.(\d{1,2})\.(\d{4}),?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (dotted) {
    const [, day, month, year, hour, minute, second] = dotted.map(Number) as number[];
    return utc(
      year as number,
      month as number,
      day as number,
      hour as number,
      minute as number,
      Number.isNaN(second) ? 0 : (second as number),
    );
  }
  const spoken = /^(\d{1,2}):(\d{2})\s*([ap])\.?m\.?\s+on\s+(\d{1,2})\s+([a-z]+),?\s+(\d{4})$/i.exec(value);
  if (spoken) {
    const [, h, minute, half, day, monthName, year] = spoken as unknown as string[];
    const name = (monthName as string).toLowerCase();
    const month = months.findIndex((m) => m === name || (name.length >= 3 && m.startsWith(name))) + 1;
    const hour12 = Number(h);
    if (month === 0 || hour12 < 1 || hour12 > 12) return undefined;
    const hour = (hour12 % 12) + ((half as string).toLowerCase() === "p" ? 12 : 0);
    return utc(Number(year), month, Number(day), hour, Number(minute), 0);
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(Date.parse(value))) return new Date(value).toISOString();
  return undefined;
}

const locomoTurn = z.looseObject({
  speaker: z.string().min(1),
  text: z.string().optional(),
  dia_id: z.string().optional(),
  blip_caption: z.string().optional(),
});

const locomoSample = z.looseObject({
  sample_id: z.union([z.string(), z.number()]).transform(String),
  conversation: z.record(z.string(), z.unknown()),
});

/**
 * A LoCoMo-schema file: a list of `{ sample_id, conversation: { speaker_a, speaker_b, session_N: [{
 * speaker, dia_id, text }], session_N_date_time } }` (or one such object). Each conversation is the
 * scope `{ userId: sample_id }` (plus the default agent and run); each turn becomes the message
 * `"<speaker>: <text>"` (the speaker is the message's `name`), dated by its session, with metadata `{ session: N }`.
 */
export function parseLocomo(data: unknown, name: string, defaults: Scope): ImportTurn[] {
  const samples = Array.isArray(data) ? data : [data];
  if (defaults.userId !== undefined) {
    throw new InvalidInputError({
      message: `${name} is a LoCoMo-schema file: each conversation's userId is its sample_id, so --user cannot be used with it (--agent and --run can).`,
    });
  }
  const turns: ImportTurn[] = [];
  samples.forEach((raw, index) => {
    const parsed = locomoSample.safeParse(raw);
    if (!parsed.success) throw fileError(`${name}: conversation ${index + 1}`, firstIssue(parsed.error));
    const { sample_id: sampleId, conversation } = parsed.data;
    const where = `${name}: conversation "${sampleId}"`;
    const scope = scopeFor(where, { userId: sampleId }, defaults);
    const sessions = Object.keys(conversation)
      .map((key) => /^session_(\d+)$/.exec(key))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => Number(match[1]))
      .sort((a, b) => a - b);
    if (sessions.length === 0) throw fileError(where, "no session_N lists in conversation: is this a LoCoMo-schema file?");
    for (const session of sessions) {
      const list = conversation[`session_${session}`];
      if (!Array.isArray(list)) throw fileError(`${where}, session_${session}`, "must be a list of turns");
      const dateText = conversation[`session_${session}_date_time`];
      let timestamp: string | undefined;
      if (dateText !== undefined) {
        timestamp = typeof dateText === "string" ? parseSessionDate(dateText) : undefined;
        if (!timestamp) {
          throw fileError(
            `${where}, session_${session}_date_time`,
            `cannot read the date ${JSON.stringify(dateText)}: expected e.g. "29.12.2023, 22:42:04", "1:56 pm on 8 May, 2023" or ISO 8601`,
          );
        }
      }
      list.forEach((rawTurn, turnIndex) => {
        const turn = locomoTurn.safeParse(rawTurn);
        const source = `${where}, session_${session}, turn ${turnIndex + 1}`;
        if (!turn.success) throw fileError(source, firstIssue(turn.error));
        const { speaker, text = "", dia_id: diaId, blip_caption: caption } = turn.data;
        for (const [field, value] of [
          ["speaker", speaker],
          ["text", text],
          ["blip_caption", caption ?? ""],
        ]) {
          const problem = textProblem(value as string);
          if (problem) throw fileError(source, `${field} ${problem}`);
        }
        const said = [text.trim(), caption ? `[shares a photo: ${caption.trim()}]` : ""].filter(Boolean).join(" ");
        if (said === "") return;
        turns.push({
          scope,
          message: { role: "user", name: speaker, content: said },
          timestamp,
          metadata: { session },
          source: diaId ? `${where}, ${diaId}` : source,
        });
      });
    }
  });
  return turns;
}

/** Reads a JSONL or LoCoMo-schema file (`format` "auto" tells them apart by content). */
export async function readImportFile(
  path: string,
  { format = "auto", defaults = {} }: { format?: ImportFormat | "auto"; defaults?: Scope } = {},
): Promise<{ format: ImportFormat; turns: ImportTurn[] } & ImportExtras> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new InvalidInputError({
      message: code === "ENOENT" ? `No file ${path}: check the path.` : `Cannot read ${path}: ${(cause as Error).message}.`,
      cause,
    });
  }
  const name = basename(path);
  const extras: ImportExtras = { profiles: [], relations: [] };
  if (format === "jsonl") return { format, turns: parseJsonl(text, name, defaults, extras), ...extras };
  let whole: unknown;
  const looksLikeJson = /^\s*[[{]/.test(text);
  if (looksLikeJson) {
    try {
      whole = JSON.parse(text);
    } catch {
      whole = undefined;
    }
  }
  const isLocomo = (value: unknown) =>
    value != null && typeof value === "object" && Object.hasOwn(value, "conversation") && Object.hasOwn(value, "sample_id");
  if (format === "locomo" || Array.isArray(whole) || isLocomo(whole)) {
    if (whole === undefined) {
      throw new InvalidInputError({ message: `${name} is not valid JSON: a LoCoMo-schema file is one JSON list of conversations.` });
    }
    if (Array.isArray(whole) && !whole.every(isLocomo)) {
      throw new InvalidInputError({
        message: `${name} is a JSON list, but not of LoCoMo conversations ({ sample_id, conversation }): for chat turns, write one JSON object per line (JSONL).`,
      });
    }
    return { format: "locomo", turns: parseLocomo(whole, name, defaults), ...extras };
  }
  return { format: "jsonl", turns: parseJsonl(text, name, defaults, extras), ...extras };
}

const canonicalScope = (scope: Scope) => scopeKeys.map((key) => scope[key] ?? null);

/**
 * Groups consecutive turns of the same scope, timestamp and metadata into chunks of at most
 * `batchSize` messages (one `add`, one embedding call each), with idempotency keys derived from
 * the content: re-running the same import gives the same keys, so nothing is stored twice.
 */
export function chunkTurns(turns: ImportTurn[], batchSize: number): ImportChunk[] {
  const chunks: Omit<ImportChunk, "key">[] = [];
  let current: Omit<ImportChunk, "key"> | undefined;
  let currentGroup = "";
  for (const turn of turns) {
    const group = JSON.stringify([
      canonicalScope(turn.scope),
      turn.timestamp ?? null,
      turn.metadata ?? null,
      ...(turn.expiresAt === undefined ? [] : [turn.expiresAt]),
    ]);
    if (!current || group !== currentGroup || current.messages.length >= batchSize) {
      current = {
        scope: turn.scope,
        messages: [],
        timestamp: turn.timestamp,
        metadata: turn.metadata,
        ...(turn.expiresAt === undefined ? {} : { expiresAt: turn.expiresAt }),
        sources: [turn.source, turn.source],
      };
      currentGroup = group;
      chunks.push(current);
    }
    current.messages.push(turn.message);
    current.sources[1] = turn.source;
  }
  const seen = new Map<string, number>();
  return chunks.map((chunk) => {
    const content = JSON.stringify([
      1,
      canonicalScope(chunk.scope),
      chunk.timestamp ?? null,
      chunk.metadata ?? null,
      chunk.messages.map((m) => [m.role, m.content]),
      ...(chunk.expiresAt === undefined ? [] : [chunk.expiresAt]),
    ]);
    const hash = createHash("sha256").update(content).digest("hex");
    // The same chunk twice in one file is two chunks: the nth copy gets the nth key.
    const occurrence = seen.get(hash) ?? 0;
    seen.set(hash, occurrence + 1);
    return { ...chunk, key: `import:${hash}${occurrence ? `:${occurrence}` : ""}` };
  });
}

/** Consecutive chunks of one scope written as ONE outbox entry (`enqueueMany`: one embedding call, one transaction). */
export interface ImportBatch {
  /** A lone chunk's own key; for several, derived from theirs: the same on every run of the same import. */
  key: string;
  scope: Scope;
  chunks: ImportChunk[];
  /** Messages in it. */
  size: number;
}

/** At most this many chunks (adds) in one batch: what `enqueueMany` takes. */
const MAX_BATCH_CHUNKS = 100;

/**
 * Groups consecutive chunks of the same scope into batches of at most `batchSize` messages (a
 * chunk is never split). With `infer`, every chunk is a batch of its own: extraction takes one
 * add at a time.
 */
export function batchChunks(chunks: ImportChunk[], batchSize: number, { infer = false }: { infer?: boolean } = {}): ImportBatch[] {
  const groups: ImportChunk[][] = [];
  let current: ImportChunk[] = [];
  let size = 0;
  let scopeKey = "";
  for (const chunk of chunks) {
    const key = JSON.stringify(canonicalScope(chunk.scope));
    if (
      current.length > 0 &&
      (infer ||
        key !== scopeKey ||
        size + chunk.messages.length > batchSize ||
        current.length === MAX_BATCH_CHUNKS ||
        // enqueueMany carries no expiry: a memory that expires is queued on its own.
        chunk.expiresAt !== undefined ||
        (current[0] as ImportChunk).expiresAt !== undefined)
    ) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(chunk);
    size += chunk.messages.length;
    scopeKey = key;
  }
  if (current.length > 0) groups.push(current);
  return groups.map((group) => {
    const first = group[0] as ImportChunk;
    const key =
      group.length === 1
        ? first.key
        : `import-batch:${createHash("sha256")
            .update(JSON.stringify(group.map((chunk) => chunk.key)))
            .digest("hex")}`;
    return { key, scope: first.scope, chunks: group, size: group.reduce((sum, chunk) => sum + chunk.messages.length, 0) };
  });
}
