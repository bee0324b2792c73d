/**
 * A map that keeps about its `size` most recently used entries: each read or write stamps the entry
 * with a clock, and once the map holds a quarter more than `size` the least recently stamped are
 * dropped in one pass, leaving `size`. (Moving an entry to a Map's end at each use, and dropping the
 * first entry at each write, leave deleted slots that later lookups and evictions walk past.)
 */
export class RecentMap<K, V> {
  #entries = new Map<K, { value: V; used: number }>();
  #clock = 0;

  constructor(readonly size: number) {}

  get entries(): number {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    entry.used = ++this.#clock;
    return entry.value;
  }

  set(key: K, value: V): void {
    const entry = this.#entries.get(key);
    if (entry) {
      entry.value = value;
      entry.used = ++this.#clock;
      return;
    }
    this.#entries.set(key, { value, used: ++this.#clock });
    if (this.#entries.size > this.size + (this.size >> 2)) this.#trim();
  }

  #trim(): void {
    // The `size`-th latest stamp, from a native sort of the stamps alone; the entries stamped since are kept.
    const stamps = new Float64Array(this.#entries.size);
    let k = 0;
    for (const entry of this.#entries.values()) stamps[k++] = entry.used;
    const floor = stamps.sort()[stamps.length - this.size] as number;
    const kept = new Map<K, { value: V; used: number }>();
    for (const [key, entry] of this.#entries) if (entry.used >= floor) kept.set(key, entry);
    this.#entries = kept;
  }
}
