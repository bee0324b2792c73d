import { ConfigError } from "../errors.js";
import type { Memory } from "../memory.js";
import type { Scope } from "../scope.js";
import type { HistoryRecord, MemoryItem } from "../types.js";

// What the inspector's plots show, computed from the public Memory API. Each function returns a
// chart description the page hands to the bundled client as data (never as code).

/** A bar chart the client draws with Chart.js: labels on x, one series per dataset. */
export interface BarChart {
  kind: "bar";
  title: string;
  labels: string[];
  datasets: { label: string; data: number[] }[];
  stacked?: boolean;
  xTitle: string;
  yTitle: string;
}

/** Histories read for the per-day plot at most: a bound on the page's cost in a large scope. */
export const HISTORY_SAMPLE = 500;

export type Events = "ADD" | "UPDATE" | "DELETE";
const events: Events[] = ["ADD", "UPDATE", "DELETE"];

/** Changes per day (UTC), one series per event, days without a change included between the first and the last. */
export function perDayByEvent(records: readonly Pick<HistoryRecord, "event" | "createdAt">[], title: string): BarChart {
  const counts = new Map<string, Record<Events, number>>();
  for (const record of records) {
    const day = record.createdAt.slice(0, 10);
    const entry = counts.get(day) ?? { ADD: 0, UPDATE: 0, DELETE: 0 };
    if (events.includes(record.event as Events)) entry[record.event as Events]++;
    counts.set(day, entry);
  }
  const days = [...counts.keys()].sort();
  const labels: string[] = [];
  if (days.length > 0) {
    const last = Date.parse(`${days.at(-1)}T00:00:00Z`);
    // At most a year of empty days between the first and the last change: older ones are skipped over.
    for (let time = Math.max(Date.parse(`${days[0]}T00:00:00Z`), last - 365 * 86_400_000); time <= last; time += 86_400_000) {
      labels.push(new Date(time).toISOString().slice(0, 10));
    }
  }
  return {
    kind: "bar",
    title,
    labels,
    datasets: events.map((event) => ({ label: event, data: labels.map((day) => counts.get(day)?.[event] ?? 0) })),
    stacked: true,
    xTitle: "day (UTC)",
    yTitle: "changes",
  };
}

const lengthBins = [20, 50, 100, 200, 500, 1000, 2000] as const;

/** How many memories have a text of each length (in characters). */
export function lengthDistribution(items: readonly Pick<MemoryItem, "memory">[]): BarChart {
  const labels = [...lengthBins.map((top, i) => `${i === 0 ? 0 : (lengthBins[i - 1] as number)}–${top - 1}`), `${lengthBins.at(-1)}+`];
  const data = labels.map(() => 0);
  for (const item of items) {
    const at = lengthBins.findIndex((top) => item.memory.length < top);
    data[at < 0 ? lengthBins.length : at] = (data[at < 0 ? lengthBins.length : at] as number) + 1;
  }
  return { kind: "bar", title: "Memory length", labels, datasets: [{ label: "memories", data }], xTitle: "characters", yTitle: "memories" };
}

/** How a search's results spread over the score range [0, 1], in tenths. */
export function scoreDistribution(scores: readonly number[]): BarChart {
  const labels = Array.from({ length: 10 }, (_, i) => `${(i / 10).toFixed(1)}–${((i + 1) / 10).toFixed(1)}`);
  const data = labels.map(() => 0);
  for (const score of scores) {
    const at = Math.min(9, Math.max(0, Math.floor(score * 10)));
    data[at] = (data[at] as number) + 1;
  }
  return {
    kind: "bar",
    title: "Scores of this search",
    labels,
    datasets: [{ label: "results", data }],
    xTitle: "score",
    yTitle: "results",
  };
}

/** Changes read for a plot at most. */
export const CHANGES_LIMIT = 100_000;

/**
 * The changes of a scope (every scope without one) for the per-day plot, and whether that is all
 * of them: from the history log at once when it can list them (deleted memories included), else
 * from the histories of the first `HISTORY_SAMPLE` of `items` (`items` are read only then).
 */
export async function scopeChanges(
  memory: Memory,
  scope: Scope | undefined,
  items: () => Promise<readonly MemoryItem[]>,
): Promise<{ records: Pick<HistoryRecord, "event" | "createdAt">[]; complete: boolean }> {
  try {
    const records = await memory.changes(scope ?? { allScopes: true }, { limit: CHANGES_LIMIT });
    return { records, complete: records.length < CHANGES_LIMIT };
  } catch (error) {
    if (!ConfigError.isInstance(error)) throw error;
  }
  const all = await items();
  const sample = all.slice(0, HISTORY_SAMPLE);
  const records: HistoryRecord[] = [];
  for (const item of sample) {
    const itemScope = scope ?? {
      ...(item.userId ? { userId: item.userId } : {}),
      ...(item.agentId ? { agentId: item.agentId } : {}),
      ...(item.runId ? { runId: item.runId } : {}),
    };
    try {
      records.push(...(await memory.history(item.id, itemScope)));
    } catch {
      // Deleted meanwhile: it has no history to show in this scope any more.
    }
  }
  return { records, complete: false };
}
