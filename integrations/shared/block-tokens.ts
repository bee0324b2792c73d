import { ConfigError } from "../../src/index.js";

type CountTokens = (text: string) => number;

let o200k: Promise<CountTokens> | undefined;

/**
 * OpenAI's o200k token count (GPT-4o, GPT-5), from `gpt-tokenizer`, loaded on first use: its
 * vocabularies take tens of megabytes of memory that only a block budget needs.
 */
export function loadO200kCounter(): Promise<CountTokens> {
  o200k ??= import("gpt-tokenizer/encoding/o200k_base").then(
    // Text that looks like a special token (`<|endoftext|>`) is counted as the plain text it is.
    ({ countTokens }) =>
      (text: string) =>
        countTokens(text, { disallowedSpecial: new Set() }),
    (error: unknown) => {
      o200k = undefined;
      throw new ConfigError({
        message:
          "maxTokens counts the memory block's tokens with the gpt-tokenizer package, which is not installed: npm install gpt-tokenizer, or pass countTokens (your model's tokenizer) with maxTokens.",
        cause: error,
      });
    },
  );
  return o200k;
}
