import Table from "cli-table3";
import type { Scope } from "../scope.js";
import type { MemoryItem } from "../types.js";

export interface Column {
  header: string;
  /** Fixed width in characters; columns without one share what is left of the terminal. */
  width?: number;
}

/** Writes a line (or a JSON document) to stdout. */
export function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

export function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}

/** A bordered table, wrapped to the terminal width. No colours: output stays plain in pipes and logs. */
export function table(columns: Column[], rows: (string | number)[][], { breakWords = false }: { breakWords?: boolean } = {}): string {
  const total = Math.max(60, process.stdout.columns || 120);
  const fixed = columns.reduce((sum, column) => sum + (column.width ?? 0), 0);
  const flexible = columns.filter((column) => column.width === undefined).length;
  // Each column costs its borders and one space of padding on either side.
  const share = flexible ? Math.max(12, Math.floor((total - fixed - (columns.length + 1) - 2 * columns.length) / flexible)) : 0;
  const rendered = new Table({
    head: columns.map((column) => column.header),
    colWidths: columns.map((column) => (column.width ?? share) + 2),
    wordWrap: true,
    // Ids have no spaces: break them rather than cut them off.
    wrapOnWordBoundary: !breakWords,
    style: { head: [], border: [], compact: false },
  });
  for (const row of rows) rendered.push(row.map((cell) => String(cell)));
  return rendered.toString();
}

/** `user=alice agent=coder`: a scope in one short cell. */
export function formatScope(scope: Scope): string {
  const parts: string[] = [];
  if (scope.userId !== undefined) parts.push(`user=${scope.userId}`);
  if (scope.agentId !== undefined) parts.push(`agent=${scope.agentId}`);
  if (scope.runId !== undefined) parts.push(`run=${scope.runId}`);
  return parts.join(" ");
}

/** `user "alice", agent "coder"`: a scope in a sentence. */
export function describeScope(scope: Scope): string {
  const parts: string[] = [];
  if (scope.userId !== undefined) parts.push(`user "${scope.userId}"`);
  if (scope.agentId !== undefined) parts.push(`agent "${scope.agentId}"`);
  if (scope.runId !== undefined) parts.push(`run "${scope.runId}"`);
  return parts.join(", ");
}

/** `2024-05-08 13:56`: ISO timestamps shortened for tables (UTC). */
export function shortDate(iso: string | null | undefined): string {
  if (!iso) return "";
  return iso.replace("T", " ").replace(/:\d{2}(\.\d+)?Z$/, "");
}

export function memoryTable(items: MemoryItem[], { score = false }: { score?: boolean } = {}): string {
  const columns: Column[] = [
    ...(score ? [{ header: "score", width: 5 }] : []),
    { header: "id", width: 36 },
    { header: "memory" },
    { header: "scope", width: 18 },
    { header: "created (UTC)", width: 16 },
  ];
  return table(
    columns,
    items.map((item) => [
      ...(score ? [(item.score ?? 0).toFixed(2)] : []),
      item.id,
      item.memory,
      formatScope(item),
      shortDate(item.createdAt),
    ]),
  );
}

/** A two-column key/value table for one record. */
export function recordTable(entries: [string, string][]): string {
  return table([{ header: "field", width: 10 }, { header: "value" }], entries);
}

/** One memory as the rows of a `recordTable`. */
export function itemRecord(item: MemoryItem): [string, string][] {
  return [
    ["id", item.id],
    ["memory", item.memory],
    ["scope", formatScope(item)],
    ["metadata", JSON.stringify(item.metadata)],
    ["created", item.createdAt],
    ["updated", item.updatedAt],
  ];
}

/** `1.2 s`, `3 min 04 s`, `1 h 02 min`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(Math.round(seconds % 60)).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}
