import { randomUUID } from "node:crypto";
import { TimeoutError } from "../../src/index.js";
import { withDeadline } from "./deadline.js";
import type { AdapterMemory } from "./options.js";

/**
 * Gets a memory ready to answer searches: opens its stores and loads its embedding model (the
 * local one takes about half a second, more on a busy machine). Call it once at start, before
 * serving, so the first replies do not spend their `recallTimeoutMs` on loading and go without
 * memories. It searches a scope of its own that holds nothing; no memory is read or written.
 *
 * @throws the search's error (a broken embedder or store shows at start), or a TimeoutError after `timeoutMs`.
 * @example
 * const memory = new Memory();
 * await warmUp(memory);
 * const model = withMemory(openai("gpt-5-mini"), { memory });
 */
export async function warmUp(memory: AdapterMemory, { timeoutMs = 60_000 }: { timeoutMs?: number } = {}): Promise<void> {
  const search = memory.search("warm up", { runId: `engram-warm-up-${randomUUID()}`, limit: 1 });
  await withDeadline(
    search,
    timeoutMs,
    () =>
      new TimeoutError({
        operation: "warm-up",
        timeoutMs,
        message: `Warming up the memory took longer than ${timeoutMs} ms: check that its embedder and vector store answer.`,
      }),
  );
}
