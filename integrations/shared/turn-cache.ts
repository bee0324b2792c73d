/**
 * Remembers the recall of a turn for a short while, so the steps of one tool loop (where the
 * framework calls the model again with the same user message) search once. Holds promises, so
 * concurrent steps share one search. Bounded: oldest entries go first.
 */
export class TurnCache<T> {
  readonly #entries = new Map<string, { value: Promise<T>; expires: number }>();

  constructor(
    private readonly ttlMs = 5 * 60_000,
    private readonly maxEntries = 1000,
  ) {}

  get(key: string, compute: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = this.#entries.get(key);
    if (hit && hit.expires > now) return hit.value;
    const value = compute();
    // A failed search is not cached: the next step may try again.
    value.catch(() => this.#entries.delete(key));
    this.#entries.delete(key);
    this.#entries.set(key, { value, expires: now + this.ttlMs });
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    return value;
  }

  /** Forgets a turn (after its final step, so a later identical turn searches again). */
  delete(key: string): void {
    this.#entries.delete(key);
  }
}
