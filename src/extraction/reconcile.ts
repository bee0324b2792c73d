import type { Relation } from "../graph/graph-store.js";
import { normaliseText, textHash } from "../internal/hash.js";
import type { MemoryRecord } from "../stores/vector-store.js";
import type { Decision } from "./output.js";

/** What one decision of the model does, once checked against the memories it was shown. */
export type Operation =
  | { event: "ADD"; text: string; hash: string; relations?: Relation[] }
  | { event: "UPDATE"; target: MemoryRecord; text: string; hash: string; relations?: Relation[] }
  | { event: "DELETE"; target: MemoryRecord }
  | { event: "NONE"; target: MemoryRecord };

/**
 * Turns the model's decisions into operations on real records. The model saw each memory under a
 * small id (`shown`: small id → record); any decision that does not fit is left out and explained
 * in `warnings`, never applied:
 * - UPDATE, DELETE and NONE must name a shown id, and one id gets one decision (the first wins);
 * - ADD creates a memory whatever id it carries ("new" is expected); an empty text is ignored;
 * - an ADD whose text a shown memory holds already becomes NONE of it (unless another decision is
 *   about that memory), a repeated ADD is dropped, an UPDATE to the same text is NONE;
 * - texts longer than `maxLength` are ignored.
 */
export function reconcile(
  shown: ReadonlyMap<string, MemoryRecord>,
  decisions: readonly Decision[],
  { maxLength }: { maxLength: number },
): { operations: Operation[]; warnings: string[] } {
  const operations: Operation[] = [];
  const warnings: string[] = [];
  const decided = new Set<string>();
  const added = new Set<string>();
  const byHash = new Map([...shown.values()].map((record) => [record.hash, record]));
  const shownIds = shown.size === 0 ? "none were shown" : `shown: ${[...shown.keys()].join(", ")}`;
  // Shown memories an ADD merely repeats: NONE, unless another decision is about them.
  const repeated: MemoryRecord[] = [];
  const none = (target: MemoryRecord) => {
    if (decided.has(target.id)) return;
    decided.add(target.id);
    operations.push({ event: "NONE", target });
  };

  for (const { id, event, text: rawText, relations } of decisions) {
    const stated = relations ? { relations } : {};
    // A model's text may hold what no store takes (U+0000, lone surrogates): a fact stored is storable everywhere.
    const text = normaliseText(rawText.replaceAll("\u0000", "").replace(/\p{Cs}/gu, "\ufffd"));
    const label = `${event} of id ${JSON.stringify(id)}`;
    if ((event === "ADD" || event === "UPDATE") && text === "") {
      warnings.push(`Ignored ${label}: it has no text.`);
      continue;
    }
    if (text.length > maxLength) {
      warnings.push(`Ignored ${label}: its text is ${text.length} characters long, more than maxMessageLength (${maxLength}).`);
      continue;
    }
    if (event === "ADD") {
      if (id !== "new" && id !== "") warnings.push(`ADD carried id ${JSON.stringify(id)}: the id was ignored and the fact added as new.`);
      const hash = textHash(text);
      const same = byHash.get(hash);
      if (same) repeated.push(same);
      else if (!added.has(hash)) {
        added.add(hash);
        operations.push({ event: "ADD", text, hash, ...stated });
      }
      continue;
    }
    const target = shown.get(id);
    if (!target) {
      warnings.push(`Ignored ${label}: the model was not shown a memory with this id (${shownIds}).`);
      continue;
    }
    if (decided.has(target.id)) {
      warnings.push(`Ignored ${label}: another decision about this memory came first.`);
      continue;
    }
    if (event === "UPDATE") {
      const hash = textHash(text);
      if (hash === target.hash) none(target);
      else {
        decided.add(target.id);
        operations.push({ event: "UPDATE", target, text, hash, ...stated });
      }
    } else if (event === "DELETE") {
      decided.add(target.id);
      operations.push({ event: "DELETE", target });
    } else none(target);
  }
  for (const target of repeated) none(target);
  return { operations, warnings };
}
