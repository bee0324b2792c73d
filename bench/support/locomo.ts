// Reads conversation benchmarks in the LoCoMo schema (LoCoMo itself, REALTALK converted to it):
// a list of { sample_id, conversation: { speaker_a, speaker_b, session_N: [turns], session_N_date_time },
// qa: [{ question, answer, evidence: [dia_id…], category }] }. Real files are messy: session dates
// come in several formats and evidence lists hold joined, zero-padded, ranged or unknown ids.
// Everything cleaned is counted, never silently fixed.
import { readFileSync } from "node:fs";
import { parseSessionDate as parseImportDate } from "../../src/cli/import-file.js";

export interface Turn {
  /** Normalised `D<session>:<turn>`, without leading zeros. */
  diaId: string;
  session: number;
  speaker: string;
  text: string;
}

export interface Session {
  number: number;
  /** Undefined when the file's date could not be read (counted in `ReadStats.undatedSessions`). */
  date?: Date;
  rawDate?: string;
  turns: Turn[];
}

export interface Question {
  question: string;
  answer: string;
  category: string;
  /** Clean, existing, distinct evidence ids; may be empty. */
  evidence: string[];
  /**
   * Set when the file gives no `answer`, only an `adversarial_answer` (LoCoMo's unanswerable
   * questions): `answer` then holds the tempting wrong answer, not a gold one.
   */
  adversarial?: true;
}

export interface Sample {
  sampleId: string;
  speakers: [string, string];
  sessions: Session[];
  questions: Question[];
}

export interface ReadStats {
  samples: number;
  sessions: number;
  turns: number;
  questions: number;
  undatedSessions: number;
  /** Raw evidence entries as found in the file. */
  evidenceEntries: number;
  /** Ids kept after cleaning (a range counts once per id it stands for). */
  evidenceIds: number;
  /** Entries that held several ids (`"D8:6; D9:17"`). */
  splitEntries: number;
  /** Ids written with leading zeros (`D30:05`). */
  zeroPadded: number;
  /** Ranges (`D12:3-D12:5`) expanded into their ids. */
  expandedRanges: number;
  /** Ids dropped because no turn has them. */
  droppedUnknown: number;
  /** Text that reads as no id at all (`"D17;39"`, `""`). */
  droppedMalformed: number;
  /** Questions left without any evidence (not scored for evidence metrics). */
  questionsWithoutEvidence: number;
  /** A few examples of what was dropped, for the report. */
  droppedExamples: string[];
}

/**
 * A session date of a LoCoMo-schema file, read as UTC: the parser `engram import` uses
 * (`"1:56 pm on 8 May, 2023"`, `"29.12.2023, 22:42:04"`, ISO 8601), as a Date.
 */
export function parseSessionDate(text: string): Date | undefined {
  const iso = parseImportDate(text);
  return iso === undefined ? undefined : new Date(iso);
}

const idPattern = /D\s*(\d+)\s*:\s*(\d+)(?:\s*-\s*(?:D\s*(\d+)\s*:\s*)?(\d+))?/gi;

export interface CleanedEvidence {
  ids: string[];
  split: boolean;
  zeroPadded: number;
  expandedRanges: number;
  droppedUnknown: string[];
  droppedMalformed: string[];
}

/**
 * Cleans one question's evidence list against the ids that exist. Each entry may hold several
 * ids separated by `;`, `,` or spaces; ids lose leading zeros (`D30:05` → `D30:5`); a range
 * within one session (`D12:3-D12:5`) stands for every id in it; ids no turn has are dropped;
 * text left over that reads as no id is dropped as malformed.
 */
export function cleanEvidence(entries: readonly unknown[], existing: ReadonlySet<string>): CleanedEvidence {
  const result: CleanedEvidence = { ids: [], split: false, zeroPadded: 0, expandedRanges: 0, droppedUnknown: [], droppedMalformed: [] };
  const keep = (id: string) => {
    if (!existing.has(id)) result.droppedUnknown.push(id);
    else if (!result.ids.includes(id)) result.ids.push(id);
  };
  for (const entry of entries) {
    if (typeof entry !== "string") {
      result.droppedMalformed.push(JSON.stringify(entry));
      continue;
    }
    let found = 0;
    const leftover = entry.replace(idPattern, (match, session: string, turn: string, endSession?: string, endTurn?: string) => {
      found++;
      if (/(^|\D)0\d/.test(`${session}:${turn}`)) result.zeroPadded++;
      const s = Number(session);
      const from = Number(turn);
      if (endTurn === undefined) {
        keep(`D${s}:${from}`);
      } else if ((endSession === undefined || Number(endSession) === s) && Number(endTurn) >= from && Number(endTurn) - from < 100) {
        result.expandedRanges++;
        for (let t = from; t <= Number(endTurn); t++) keep(`D${s}:${t}`);
      } else {
        // A range across sessions cannot be expanded: keep its two ends.
        keep(`D${s}:${from}`);
        keep(`D${Number(endSession ?? s)}:${Number(endTurn)}`);
      }
      return " ".repeat(match.length);
    });
    if (found > 1) result.split = true;
    const junk = leftover.replace(/[\s;,.:&/|()[\]-]+/g, "").replace(/\band\b/gi, "");
    if (junk !== "" || found === 0) result.droppedMalformed.push(entry);
  }
  return result;
}

function normaliseDiaId(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  const match = /^\s*D\s*(\d+)\s*:\s*(\d+)\s*$/i.exec(raw);
  return match ? `D${Number(match[1])}:${Number(match[2])}` : undefined;
}

/** Reads a LoCoMo-schema file, cleaning dates and evidence, and counts what it cleaned. */
export function readLocomo(path: string): { samples: Sample[]; stats: ReadStats } {
  const raw = JSON.parse(readFileSync(path, "utf8")) as unknown;
  if (!Array.isArray(raw)) throw new Error(`${path}: expected a JSON list of samples ({ sample_id, conversation, qa })`);
  const stats: ReadStats = {
    samples: 0,
    sessions: 0,
    turns: 0,
    questions: 0,
    undatedSessions: 0,
    evidenceEntries: 0,
    evidenceIds: 0,
    splitEntries: 0,
    zeroPadded: 0,
    expandedRanges: 0,
    droppedUnknown: 0,
    droppedMalformed: 0,
    questionsWithoutEvidence: 0,
    droppedExamples: [],
  };
  const samples = raw.map((item, index): Sample => {
    const {
      sample_id: sampleId,
      conversation,
      qa,
    } = (item ?? {}) as { sample_id?: unknown; conversation?: Record<string, unknown>; qa?: unknown };
    if (!conversation || typeof conversation !== "object") throw new Error(`${path}: sample ${index} has no conversation object`);
    const id = String(sampleId ?? `sample-${index}`);
    const sessionNumbers = Object.keys(conversation)
      .map((key) => /^session_(\d+)$/.exec(key)?.[1])
      .filter((n): n is string => n !== undefined && Array.isArray(conversation[`session_${n}`]))
      .map(Number)
      .sort((a, b) => a - b);
    const existing = new Set<string>();
    const sessions = sessionNumbers.map((number): Session => {
      const rawDate = conversation[`session_${number}_date_time`];
      const date = typeof rawDate === "string" ? parseSessionDate(rawDate) : undefined;
      if (!date) stats.undatedSessions++;
      const turns: Turn[] = [];
      for (const turn of conversation[`session_${number}`] as Record<string, unknown>[]) {
        const diaId = normaliseDiaId(turn?.dia_id);
        let text = typeof turn?.text === "string" ? turn.text : "";
        // LoCoMo turns that share a photo carry its caption: part of what was said.
        if (typeof turn?.blip_caption === "string" && turn.blip_caption.trim())
          text = `${text} [shares a photo: ${turn.blip_caption.trim()}]`.trim();
        if (!diaId || !text.trim()) continue;
        existing.add(diaId);
        turns.push({ diaId, session: number, speaker: String(turn.speaker ?? ""), text });
      }
      stats.turns += turns.length;
      return { number, ...(date ? { date } : {}), ...(typeof rawDate === "string" ? { rawDate } : {}), turns };
    });
    const questions = (Array.isArray(qa) ? qa : []).map((q: Record<string, unknown>): Question => {
      const entries = Array.isArray(q.evidence) ? q.evidence : q.evidence === undefined ? [] : [q.evidence];
      const cleaned = cleanEvidence(entries, existing);
      stats.evidenceEntries += entries.length;
      stats.evidenceIds += cleaned.ids.length;
      if (cleaned.split) stats.splitEntries++;
      stats.zeroPadded += cleaned.zeroPadded;
      stats.expandedRanges += cleaned.expandedRanges;
      stats.droppedUnknown += cleaned.droppedUnknown.length;
      stats.droppedMalformed += cleaned.droppedMalformed.length;
      for (const dropped of [...cleaned.droppedUnknown, ...cleaned.droppedMalformed]) {
        if (stats.droppedExamples.length < 8) stats.droppedExamples.push(`${id}: ${JSON.stringify(dropped)}`);
      }
      if (cleaned.ids.length === 0) stats.questionsWithoutEvidence++;
      return {
        question: String(q.question ?? ""),
        answer: String(q.answer ?? q.adversarial_answer ?? ""),
        category: String(q.category ?? "none"),
        evidence: cleaned.ids,
        ...(q.answer === undefined && q.adversarial_answer !== undefined ? { adversarial: true as const } : {}),
      };
    });
    stats.samples++;
    stats.sessions += sessions.length;
    stats.questions += questions.length;
    return {
      sampleId: id,
      speakers: [String(conversation.speaker_a ?? ""), String(conversation.speaker_b ?? "")],
      sessions,
      questions,
    };
  });
  return { samples, stats };
}

/** The session number of a dia_id (`D12:3` → 12). */
export function sessionOf(diaId: string): number {
  return Number(/^D(\d+):/.exec(diaId)?.[1]);
}
