/**
 * Turns texts into vectors. Engram calls `embed` with every text of one operation in ONE call
 * (an `add` embeds all its new and changed memories together; a `search` embeds its query), so
 * an implementation should batch requests to its backend rather than loop one text at a time.
 *
 * Any AI SDK `EmbeddingModel` is accepted wherever an `Embedder` is, and adapted.
 *
 * @example
 * const embedder: Embedder = {
 *   dimension: 3,
 *   async embed(texts) { return texts.map(() => new Float32Array([1, 0, 0])) },
 * };
 */
export interface Embedder {
  /**
   * Length of every vector this embedder returns, when known before the first call. When it is
   * undefined, Engram learns it from the first vectors returned. Stores are created with it, and a
   * data dir created with one dimension refuses an embedder of another.
   */
  readonly dimension?: number;

  /**
   * A stable name of the model (e.g. `"use-lite-512"`, `"openai:text-embedding-3-small"`), recorded
   * by stores so that vectors of different models are never mixed. @default undefined
   */
  readonly modelId?: string;

  /**
   * Returns one vector per text, in order. Vectors need not be normalised: Engram compares them
   * by cosine similarity. Must reject (not return partial results) when any text fails.
   *
   * `signal` is aborted when Engram stops waiting (the call missed its deadline,
   * `timeouts.embedMs`): pass it on to the backend's request so it ends too. Engram never waits past
   * the deadline, whether the embedder honours the signal or not.
   */
  embed(texts: string[], options?: { signal?: AbortSignal }): Promise<Float32Array[]>;
}
