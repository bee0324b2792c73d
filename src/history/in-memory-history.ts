import { lockKeyOf, type Scope, scopeContains, scopeOf } from "../scope.js";
import type { HistoryEntry, HistoryLog, HistoryScannable, HistoryScopeEnumerable } from "./history-log.js";
import type { Outbox, OutboxEntry } from "./outbox.js";

type MutableOutboxEntry = { -readonly [K in keyof OutboxEntry]: OutboxEntry[K] } & { workerId?: string; leaseUntil: number; dueAt: number };

/**
 * A `HistoryLog` and an `Outbox` in process memory. For tests: the outbox is not durable, so a
 * crash loses pending turns. Use the SQLite or PostgreSQL history in production.
 */
export function inMemoryHistory({
  now: clock = Date.now,
}: {
  now?: () => number;
} = {}): HistoryLog & HistoryScopeEnumerable & HistoryScannable & Outbox {
  const history: HistoryEntry[] = [];
  const erased = new Set<string>();
  const outbox = new Map<string, MutableOutboxEntry>();
  const snapshot = ({ workerId: _w, leaseUntil: _l, dueAt: _d, ...entry }: MutableOutboxEntry): OutboxEntry =>
    structuredClone({ ...entry, nextAttemptAt: new Date(_d).toISOString() });
  const owned = (id: string, workerId: string) => {
    const entry = outbox.get(id);
    return entry && entry.status === "processing" && entry.workerId === workerId ? entry : undefined;
  };

  return {
    async init() {},
    async append(entries) {
      for (const entry of entries) {
        if (history.some((e) => e.id === entry.id)) continue;
        history.push(
          erased.has(entry.memoryId) ? { ...structuredClone(entry), previousValue: null, newValue: null } : structuredClone(entry),
        );
      }
    },
    async list(memoryId, scope) {
      return history
        .filter((e) => e.memoryId === memoryId && scopeContains(scope, e))
        .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0))
        .map((e) => structuredClone(e));
    },
    async entryScopes(prefix: string, scope: Scope) {
      const found = new Map<string, Scope>();
      for (const entry of history) {
        if (!entry.memoryId.startsWith(prefix) || !scopeContains(scope, entry)) continue;
        const exact = scopeOf(entry);
        found.set(JSON.stringify([exact.userId, exact.agentId, exact.runId]), exact);
      }
      return [...found.values()];
    },
    async events({ scope, limit }) {
      const inside = history.filter((entry) => !scope || scopeContains(scope, entry));
      // A stable sort by time keeps append order among equal times.
      const ordered = inside.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
      return ordered.slice(Math.max(0, ordered.length - limit)).map(({ memoryId, event, createdAt, userId, agentId, runId }) => ({
        memoryId,
        event,
        createdAt,
        ...(userId === undefined ? {} : { userId }),
        ...(agentId === undefined ? {} : { agentId }),
        ...(runId === undefined ? {} : { runId }),
      }));
    },
    async purge(target) {
      if ("memoryIds" in target) for (const id of target.memoryIds) erased.add(id);
      history.forEach((entry, i) => {
        const hit = "memoryIds" in target ? target.memoryIds.includes(entry.memoryId) : scopeContains(target.scope, entry);
        if (hit) history[i] = { ...entry, previousValue: null, newValue: null };
      });
    },
    async enqueue({ id, messages, scope, options }) {
      if (outbox.has(id)) return false;
      const now = clock();
      outbox.set(id, {
        id,
        messages: structuredClone(messages),
        ...scope,
        options: structuredClone(options),
        status: "pending",
        attempts: 0,
        createdAt: new Date(now).toISOString(),
        nextAttemptAt: new Date(now).toISOString(),
        leaseUntil: 0,
        dueAt: now,
      });
      return true;
    },
    async claim({ workerId, limit, leaseMs, perKey = 1 }) {
      const now = clock();
      const claimed: OutboxEntry[] = [];
      const busy = new Set<string>();
      for (const entry of outbox.values()) {
        if (entry.status === "processing" && entry.leaseUntil >= now) busy.add(lockKeyOf(entry));
      }
      // Entries handed out so far by lock key: at most `limit` keys, `perKey` entries each.
      const taken = new Map<string, number>();
      for (const entry of outbox.values()) {
        const expired = entry.status === "processing" && entry.leaseUntil < now;
        if (!(entry.status === "pending" && entry.dueAt <= now) && !expired) continue;
        const key = lockKeyOf(entry);
        if (busy.has(key)) continue;
        const count = taken.get(key) ?? 0;
        if (count === 0 && taken.size === limit) continue;
        if (count >= perKey) continue;
        taken.set(key, count + 1);
        if (expired) {
          entry.attempts++;
          entry.lastError = "the worker processing it stopped before finishing";
        }
        entry.status = "processing";
        entry.workerId = workerId;
        entry.leaseUntil = now + leaseMs;
        claimed.push(snapshot(entry));
      }
      return claimed;
    },
    async renew(id, workerId, leaseMs) {
      const entry = owned(id, workerId);
      if (entry) entry.leaseUntil = clock() + leaseMs;
      return entry !== undefined;
    },
    async savePlan(id, workerId, plan) {
      const entry = owned(id, workerId);
      if (!entry || entry.plan !== undefined) return false;
      entry.plan = plan;
      return true;
    },
    async discardPlan(id, workerId) {
      const entry = owned(id, workerId);
      if (entry) entry.plan = undefined;
      return entry !== undefined;
    },
    async complete(id, workerId) {
      const entry = owned(id, workerId);
      if (!entry) return false;
      Object.assign(entry, { status: "done", messages: [], plan: undefined, options: {}, lastError: undefined });
      return true;
    },
    async fail(id, workerId, { error, retryAt }) {
      const entry = owned(id, workerId);
      if (!entry) return false;
      entry.status = retryAt ? "pending" : "failed";
      entry.attempts++;
      entry.lastError = error;
      entry.dueAt = retryAt ? retryAt.getTime() : clock();
      entry.leaseUntil = 0;
      return true;
    },
    async statuses(ids) {
      const map = new Map<string, OutboxEntry["status"]>();
      for (const id of ids) {
        const entry = outbox.get(id);
        if (entry) map.set(id, entry.status);
      }
      return map;
    },
    async pending(scope?: Scope) {
      return [...outbox.values()].filter((e) => e.status !== "done" && (!scope || scopeContains(scope, e))).map(snapshot);
    },
    async retryFailed(scope?: Scope) {
      let count = 0;
      for (const entry of outbox.values()) {
        if (entry.status === "failed" && (!scope || scopeContains(scope, entry))) {
          entry.status = "pending";
          entry.dueAt = clock();
          count++;
        }
      }
      return count;
    },
    async purgePending({ scope, containing }) {
      let count = 0;
      for (const [id, entry] of outbox) {
        if (!scopeContains(scope, entry)) continue;
        if (containing !== undefined && entry.plan?.includes(JSON.stringify(containing).slice(1, -1))) entry.plan = undefined;
        if (containing !== undefined && (entry.status === "done" || !entry.messages.some((m) => m.content.includes(containing)))) continue;
        outbox.delete(id);
        count++;
      }
      return count;
    },
    async pruneDone(olderThan) {
      let count = 0;
      for (const [id, entry] of outbox) {
        if (entry.status === "done" && entry.createdAt < olderThan.toISOString()) {
          outbox.delete(id);
          count++;
        }
      }
      return count;
    },
    async reset() {
      history.length = 0;
      erased.clear();
      outbox.clear();
    },
    async close() {},
  };
}
