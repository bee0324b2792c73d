import { createHash } from "node:crypto";

/** Whitespace-normalised form of a memory text: what "the same text" means. */
export function normaliseText(text: string): string {
  return text.trim().replace(/\s+/g, " ");
}

/** SHA-256 (hex) of the normalised text. */
export function textHash(text: string): string {
  return createHash("sha256").update(normaliseText(text)).digest("hex");
}
