/**
 * Remembers the recall of a turn for a short while, so the steps of one tool loop (where the
 * framework calls the model again with the same user message) search once. Concurrent steps
 * share one entry. Bounded: oldest entries go first.
 */
export class TurnCache<T> {
  readonly #entries = new Map<string, { value: T; expires: number }>();

  constructor(
    private readonly ttlMs = 5 * 60_000,
    private readonly maxEntries = 1000,
  ) {}

  get(key: string, compute: () => T): T {
    const now = Date.now();
    const hit = this.#entries.get(key);
    if (hit && hit.expires > now) return hit.value;
    const value = compute();
    this.#entries.delete(key);
    this.#entries.set(key, { value, expires: now + this.ttlMs });
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    return value;
  }

  /**
   * Forgets a turn (after its final step, so a later identical turn searches again), or only
   * `value` when given and still the turn's entry (a failed search, so the next step tries again).
   */
  delete(key: string, value?: T): void {
    if (value === undefined || this.#entries.get(key)?.value === value) this.#entries.delete(key);
  }
}
