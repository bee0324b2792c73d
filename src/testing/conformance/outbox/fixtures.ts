import type { Message, Outbox } from "../../../history/outbox.js";
import type { Scope } from "../../../scope.js";

/** The suite's clock: outboxes read it through their `now` option, and tests move it instead of sleeping. */
export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

export function testClock(start = Date.now()): TestClock {
  let time = start;
  return {
    now: () => time,
    advance(ms) {
      time += ms;
    },
  };
}

/** What each part of the suite gets from `testOutbox`. */
export interface SuiteContext {
  /** A new outbox from `create`, inited (twice: init is idempotent), closed after the test. */
  fresh(): Promise<Outbox>;
  /** The clock the outboxes of this suite were given. */
  clock: TestClock;
}

const clocks = new WeakMap<Outbox, TestClock>();

/** Remembers which clock an outbox reads, for `enqueue`. */
export const usesClock = (store: Outbox, clock: TestClock) => clocks.set(store, clock);

export const turn = (text: string): Message[] => [
  { role: "user", content: text },
  { role: "assistant", content: `reply to ${text}` },
];

export async function enqueue(store: Outbox, id: string, scope: Scope, text = `turn ${id}`): Promise<boolean> {
  const queued = await store.enqueue({ id, messages: turn(text), scope, options: { metadata: { source: id } } });
  // Outbox order is by enqueue time: keep enqueues apart so "oldest first" is well defined.
  clocks.get(store)?.advance(2);
  return queued;
}

export function ids(entries: readonly { id: string }[]): string[] {
  return entries.map((e) => e.id);
}
