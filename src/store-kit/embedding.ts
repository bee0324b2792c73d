import { ConfigError } from "../errors.js";

/** What a store's vectors are, as far as it knows: a field it has not recorded yet is undefined. */
export interface EmbeddingSpace {
  /** Vector length; a string as read back from a settings table. */
  readonly dimension?: number | string;
  readonly modelId?: string;
}

/**
 * Refuses an embedder whose vectors cannot be compared with those a store is made for: another
 * dimension, or another embedding model (when both sides name theirs). Stores call it from `init`,
 * so every one of them says the same thing.
 *
 * @param made what the store is made for; leave a field out when nothing fixes it yet (an empty store).
 * @param given what `init` was called with.
 * @param names `holder`: the store as a subject, e.g. `"The table engram_memories"`; `elsewhere`:
 *   the other place to use instead, e.g. `"another table"`.
 * @throws ConfigError naming both sides and what to do.
 *
 * @example
 * assertSameEmbedding({ dimension: stored.dimension, modelId: stored.model }, { dimension, modelId }, {
 *   holder: `The collection "${name}"`,
 *   elsewhere: "another collection",
 * });
 */
export function assertSameEmbedding(
  made: EmbeddingSpace,
  given: { dimension: number; modelId?: string },
  names: { holder: string; elsewhere: string },
): void {
  const { holder, elsewhere } = names;
  const mismatch =
    made.dimension !== undefined && Number(made.dimension) !== given.dimension
      ? { kind: "size", made: `${made.dimension}-dimensional vectors`, given: `${given.dimension}-dimensional ones` }
      : made.modelId !== undefined && given.modelId !== undefined && made.modelId !== given.modelId
        ? { kind: "model", made: `vectors of the embedding model "${made.modelId}"`, given: `vectors of "${given.modelId}"` }
        : undefined;
  if (!mismatch) return;
  throw new ConfigError({
    message: `${holder} is made for ${mismatch.made}, but the embedder gives ${mismatch.given}: vectors of another ${mismatch.kind} cannot be compared. Use the embedder it was made for, or ${elsewhere} (move memories with export and import).`,
  });
}
