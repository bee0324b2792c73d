/**
 * A map that keeps about its `size` most recently used entries: a read or a write moves the entry
 * to the end, and once the map holds a quarter more than `size` the oldest are dropped in one pass,
 * leaving `size`. (Dropping the first entry at every write walks a Map's front past every entry
 * deleted before it, and lookups slow down among the deleted slots.)
 */
export class RecentMap<K, V> {
  #entries = new Map<K, V>();

  constructor(readonly size: number) {}

  get entries(): number {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.size + (this.size >> 2)) this.#trim();
  }

  #trim(): void {
    const kept = new Map<K, V>();
    let dropped = this.#entries.size - this.size;
    for (const [key, value] of this.#entries) {
      if (dropped > 0) dropped--;
      else kept.set(key, value);
    }
    this.#entries = kept;
  }
}
