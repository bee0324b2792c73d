import { applyPlan, onConflict } from "./apply-plan.js";
import type { Components } from "./components.js";
import { MemoryNotFoundError, StoreError } from "./errors.js";
import { forgetInGraph } from "./graph/graph-index.js";
import type { HistoryEntry } from "./history/history-log.js";
import { historyEntry, PlanBuilder } from "./plan.js";
import { isoNow, type Runtime } from "./runtime.js";
import { scopeOf, type ValidScope } from "./scope.js";
import type { MemoryRecord } from "./stores/vector-store.js";

/** Memories read per page when a whole scope is deleted. */
const PAGE = 500;

/**
 * Erases a memory for good: from the store (leaving a tombstone of its id, so no write racing the
 * purge can bring it back), from its history (whose later entries are kept without text) and from
 * pending turns. A memory deleted earlier is found by its history, which holds its text still.
 */
/** Returns the memory as it was, or undefined when it had been deleted already. */
export async function purgeMemory(
  { store, history, outbox, graph }: Components,
  runtime: Runtime,
  id: string,
  scope: ValidScope,
): Promise<MemoryRecord | undefined> {
  const [existing] = await store.get([id], { scope });
  const entries = await history.list(id, scope);
  // Every text the memory ever had: pending turns repeating an earlier version go too.
  const versions = new Set(existing ? [existing.text] : []);
  for (const entry of entries) for (const value of [entry.previousValue, entry.newValue]) if (value !== null) versions.add(value);
  if (!existing && versions.size === 0) throw new MemoryNotFoundError({ memoryId: id });
  const owner = scopeOf(existing ?? (entries[0] as HistoryEntry));
  await store.write({ delete: [id], erase: true });
  await history.purge({ memoryIds: [id] });
  if (graph) await forgetInGraph(graph, [{ ...owner, id }], true, isoNow(runtime));
  if (existing) await history.append([historyEntry(existing, "DELETE", null, null, isoNow(runtime), runtime.id())]);
  for (const text of versions) await outbox.purgePending({ scope: owner, containing: text });
  return existing;
}

/**
 * Deletes every memory inside the scope, page by page. Without `purge` each keeps its text in
 * history; with it, each is erased by id (tombstoned in the store and in history, so a write racing
 * the purge cannot bring one back), then the scope's history text and queued turns go too.
 */
export async function deleteScope(components: Components, runtime: Runtime, scope: ValidScope, purge: boolean): Promise<number> {
  const { store, history, outbox, graph } = components;
  let deleted = 0;
  // A store that lists a memory again after it was deleted (a damaged index) must not loop forever.
  const attempted = new Set<string>();
  const nextPage = async () => {
    const { records } = await store.list({ filter: { scope }, limit: PAGE });
    if (records.some((record) => attempted.has(record.id))) {
      throw new StoreError({
        message:
          "deleteAll() made no progress: the store still lists memories it was asked to delete. Its index may be damaged: check the database (engram check) and see docs/operations.md.",
      });
    }
    for (const record of records) attempted.add(record.id);
    return records;
  };
  for (let records = await nextPage(); records.length > 0; records = await nextPage()) {
    if (purge) {
      const ids = records.map((record) => record.id);
      const now = isoNow(runtime);
      await store.write({ delete: ids, erase: true });
      await history.purge({ memoryIds: ids });
      if (graph) await forgetInGraph(graph, records, true, now);
      await history.append(records.map((record) => historyEntry(record, "DELETE", null, null, now, runtime.id())));
      deleted += ids.length;
      continue;
    }
    // A page changed by another call meanwhile is read again.
    deleted += await onConflict(async () => {
      const full = await store.get(
        records.map((record) => record.id),
        { scope },
      );
      const builder = new PlanBuilder(runtime);
      for (const record of full) builder.remove(record);
      await applyPlan(components, builder.plan);
      return full.length;
    });
  }
  if (purge) {
    await history.purge({ scope });
    await graph?.purge(scope);
    await outbox.purgePending({ scope });
  }
  return deleted;
}
