import type { Embedder } from "../../src/embedders/embedder.js";
import { deterministicEmbedder } from "../../src/testing/deterministic-embedder.js";

/** A promise with its resolve function, for stepping through interleavings by hand. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

type Matcher = string | RegExp;
const matches = (matcher: Matcher, texts: readonly string[]) =>
  texts.some((text) => (typeof matcher === "string" ? text.includes(matcher) : matcher.test(text)));

/**
 * The deterministic embedder, with hooks to stop it: `hold(match)` pauses the next call embedding a
 * matching text until released (to interleave calls by hand); `hang(match)` makes every call
 * embedding a matching text never answer, ignoring its abort signal (the worst a real embedder
 * does); `fail(match)` makes them throw.
 */
export function controllableEmbedder(dimension = 64) {
  const inner = deterministicEmbedder({ dimension });
  const holds: { matcher: Matcher; reached: ReturnType<typeof deferred<void>>; released: ReturnType<typeof deferred<void>> }[] = [];
  const hangs: Matcher[] = [];
  const failures: Matcher[] = [];
  let hung = 0;
  const embedder: Embedder = {
    dimension,
    modelId: inner.modelId,
    async embed(texts) {
      if (hangs.some((matcher) => matches(matcher, texts))) {
        hung++;
        return new Promise<Float32Array[]>(() => {});
      }
      if (failures.some((matcher) => matches(matcher, texts))) throw new Error(`embedder failure for ${JSON.stringify(texts)}`);
      const hold = holds.find((candidate) => matches(candidate.matcher, texts));
      if (hold) {
        holds.splice(holds.indexOf(hold), 1);
        hold.reached.resolve();
        await hold.released.promise;
      }
      return inner.embed(texts);
    },
  };
  return {
    embedder,
    /** Embedding calls that never answered. */
    hungCalls: () => hung,
    /** Pauses the next call that embeds a matching text: `reached` resolves when it is paused. */
    hold(matcher: Matcher): { reached: Promise<void>; release: () => void } {
      const hold = { matcher, reached: deferred(), released: deferred() };
      holds.push(hold);
      return { reached: hold.reached.promise, release: () => hold.released.resolve() };
    },
    hang(matcher: Matcher): void {
      hangs.push(matcher);
    },
    fail(matcher: Matcher): void {
      failures.push(matcher);
    },
    /** Ends every hang and failure: later calls answer again. */
    heal(): void {
      hangs.length = 0;
      failures.length = 0;
    },
  };
}
