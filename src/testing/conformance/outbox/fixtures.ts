import type { Message, Outbox } from "../../../history/outbox.js";
import type { Scope } from "../../../scope.js";

/** What each part of the suite gets from `testOutbox`. */
export interface SuiteContext {
  /** A new outbox from `create`, inited (twice: init is idempotent), closed after the test. */
  fresh(): Promise<Outbox>;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const turn = (text: string): Message[] => [
  { role: "user", content: text },
  { role: "assistant", content: `reply to ${text}` },
];

export async function enqueue(store: Outbox, id: string, scope: Scope, text = `turn ${id}`): Promise<boolean> {
  const queued = await store.enqueue({ id, messages: turn(text), scope, options: { metadata: { source: id } } });
  // Outbox order is by enqueue time: keep enqueues a millisecond apart so "oldest first" is well defined.
  await sleep(2);
  return queued;
}

export function ids(entries: readonly { id: string }[]): string[] {
  return entries.map((e) => e.id);
}
