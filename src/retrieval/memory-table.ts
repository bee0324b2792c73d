import type { RecordStamp } from "../stores/vector-store.js";

/** What a table keeps of a memory's stamp besides its id, as one flat string. */
const stampText = (stamp: RecordStamp) => [stamp.hash, stamp.createdAt, stamp.updatedAt].join("\u0000");

/**
 * What a large scope's statistics keep of each memory version, by position, in flat arrays: per
 * memory its id and one string of the rest of its stamp; its stems and their counts in arrays shared
 * by the whole scope. A scope of a million memories is then a few million objects on the heap
 * rather than tens of millions: a full collection marks every one of them, in the pause of a search.
 */
export class MemoryTable {
  readonly count: number;
  readonly ids: readonly string[];
  /** Where each memory's stems start in `terms` and `termCounts` (count + 1 entries). */
  readonly termStart: Int32Array;
  /** Each memory's stems (vocabulary ids, distinct), memory after memory. */
  readonly terms: Int32Array;
  /** How often each of those occurs in its memory. */
  readonly termCounts: Int32Array;
  /** Each memory's length in words. */
  readonly lengths: Float64Array;
  /** Per memory: hash, createdAt and updatedAt joined by NUL (one flat string). */
  readonly #stamps: readonly string[];
  /** Per memory: the index of its speaker's name in `#names`, or −1. */
  readonly #speakers: Int32Array;
  readonly #names: readonly string[];
  /** Per memory: when it expires (ms), or +∞. */
  readonly #expires: Float64Array;

  constructor(columns: {
    ids: string[];
    stamps: string[];
    termStart: Int32Array;
    terms: Int32Array;
    termCounts: Int32Array;
    lengths: Float64Array;
    speakers: Int32Array;
    names: string[];
    expires: Float64Array;
  }) {
    this.count = columns.ids.length;
    this.ids = columns.ids;
    this.#stamps = columns.stamps;
    this.termStart = columns.termStart;
    this.terms = columns.terms;
    this.termCounts = columns.termCounts;
    this.lengths = columns.lengths;
    this.#speakers = columns.speakers;
    this.#names = columns.names;
    this.#expires = columns.expires;
  }

  /** The stamp of the memory at `position`, as read. */
  stamp(position: number): RecordStamp {
    const [hash, createdAt, updatedAt] = (this.#stamps[position] as string).split("\u0000") as [string, string, string];
    return { id: this.ids[position] as string, hash, createdAt, updatedAt };
  }

  /** Whether the memory at `position` is `stamp`'s version: the same id, hash, createdAt and updatedAt. */
  holds(position: number, stamp: RecordStamp): boolean {
    return this.ids[position] === stamp.id && this.#stamps[position] === stampText(stamp);
  }

  speaker(position: number): string | undefined {
    const name = this.#speakers[position] as number;
    return name < 0 ? undefined : (this.#names[name] as string);
  }

  /** When the memory at `position` expires (ms), if it does. */
  expires(position: number): number | undefined {
    const at = this.#expires[position] as number;
    return at === Number.POSITIVE_INFINITY ? undefined : at;
  }

  /** What `MemoryTableBuilder.copy` reads of one memory. */
  static columnsOf(table: MemoryTable, position: number) {
    return {
      stamp: table.#stamps[position] as string,
      speaker: table.#speakers[position] as number,
      names: table.#names,
      expires: table.#expires[position] as number,
    };
  }
}

/** A typed array twice as long (at least `least`), holding `array`'s values. */
function grown<T extends Int32Array | Float64Array>(array: T, least: number, make: (length: number) => T): T {
  const larger = make(Math.max(least, 2 * array.length));
  larger.set(array);
  return larger;
}

/**
 * A `MemoryTable` filled memory by memory, then built once: in typed arrays sized from the hints
 * and doubled when they fill (a copy of a large scope after a write knows its sizes; growing plain
 * arrays of millions of numbers left the collector most of a rebuild's time).
 */
export class MemoryTableBuilder {
  readonly #ids: string[] = [];
  readonly #stamps: string[] = [];
  #termStart: Int32Array;
  #terms: Int32Array;
  #termCounts: Int32Array;
  #lengths: Float64Array;
  #speakers: Int32Array;
  #expires: Float64Array;
  #termCount = 0;
  readonly #names: string[] = [];
  readonly #nameIndex = new Map<string, number>();

  /** `memories` and `terms`: about how many memories, and stems over all of them, it will hold. */
  constructor({ memories = 64, terms = 1_024 }: { memories?: number; terms?: number } = {}) {
    this.#termStart = new Int32Array(memories + 1);
    this.#terms = new Int32Array(terms);
    this.#termCounts = new Int32Array(terms);
    this.#lengths = new Float64Array(memories);
    this.#speakers = new Int32Array(memories);
    this.#expires = new Float64Array(memories);
  }

  get count(): number {
    return this.#ids.length;
  }

  /** Adds a memory (`counts`: vocabulary id → how often it occurs); returns its position. */
  add(
    stamp: RecordStamp,
    counts: ReadonlyMap<number, number>,
    length: number,
    speaker: string | undefined,
    expires: number | undefined,
  ): number {
    this.#reserveTerms(counts.size);
    for (const [term, count] of counts) {
      this.#terms[this.#termCount] = term;
      this.#termCounts[this.#termCount++] = count;
    }
    return this.#push(
      stamp.id,
      stampText(stamp),
      length,
      speaker === undefined ? -1 : this.#name(speaker),
      expires ?? Number.POSITIVE_INFINITY,
    );
  }

  /** Adds the memory at `position` of `table` as it is there; returns its position here. */
  copy(table: MemoryTable, position: number): number {
    const { stamp, speaker, names, expires } = MemoryTable.columnsOf(table, position);
    const { termStart, terms, termCounts } = table;
    const first = termStart[position] as number;
    const end = termStart[position + 1] as number;
    this.#reserveTerms(end - first);
    // Term by term: a memory holds a few stems, and subarrays would make two objects per memory.
    for (let k = first; k < end; k++) {
      this.#terms[this.#termCount] = terms[k] as number;
      this.#termCounts[this.#termCount++] = termCounts[k] as number;
    }
    const name = speaker < 0 ? -1 : this.#name(names[speaker] as string);
    return this.#push(table.ids[position] as string, stamp, table.lengths[position] as number, name, expires);
  }

  build(): MemoryTable {
    const count = this.#ids.length;
    return new MemoryTable({
      ids: this.#ids,
      stamps: this.#stamps,
      termStart: this.#termStart.slice(0, count + 1),
      terms: this.#terms.slice(0, this.#termCount),
      termCounts: this.#termCounts.slice(0, this.#termCount),
      lengths: this.#lengths.slice(0, count),
      speakers: this.#speakers.slice(0, count),
      names: this.#names,
      expires: this.#expires.slice(0, count),
    });
  }

  #reserveTerms(more: number): void {
    const least = this.#termCount + more;
    if (least <= this.#terms.length) return;
    this.#terms = grown(this.#terms, least, (length) => new Int32Array(length));
    this.#termCounts = grown(this.#termCounts, least, (length) => new Int32Array(length));
  }

  #push(id: string, stamp: string, length: number, speaker: number, expires: number): number {
    const position = this.#ids.length;
    if (position === this.#lengths.length) {
      this.#termStart = grown(this.#termStart, position + 2, (size) => new Int32Array(size));
      this.#lengths = grown(this.#lengths, position + 1, (size) => new Float64Array(size));
      this.#speakers = grown(this.#speakers, position + 1, (size) => new Int32Array(size));
      this.#expires = grown(this.#expires, position + 1, (size) => new Float64Array(size));
    }
    this.#ids.push(id);
    this.#stamps.push(stamp);
    this.#lengths[position] = length;
    this.#speakers[position] = speaker;
    this.#expires[position] = expires;
    this.#termStart[position + 1] = this.#termCount;
    return position;
  }

  #name(speaker: string): number {
    let index = this.#nameIndex.get(speaker);
    if (index === undefined) {
      index = this.#names.length;
      this.#names.push(speaker);
      this.#nameIndex.set(speaker, index);
    }
    return index;
  }
}
