import { StoreError } from "../errors.js";

/** The error of a `list` cursor that no `list` call returned (or that was changed on the way). */
export function invalidCursor(): StoreError {
  return new StoreError({ message: "Invalid list cursor: pass back the cursor a list call returned, or none for the first page" });
}

/** An opaque `list` cursor holding `parts` (e.g. the createdAt and id of the last record of a page). */
export function encodeCursor(parts: readonly string[]): string {
  return Buffer.from(JSON.stringify(parts)).toString("base64url");
}

/**
 * The parts of a cursor made by `encodeCursor`, or undefined when there is none (the first page).
 * @throws StoreError (`invalidCursor()`) when it is not a cursor of `length` parts.
 */
export function readCursor(cursor: string | undefined, length: number): string[] | undefined {
  if (cursor === undefined) return undefined;
  try {
    const parts = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (Array.isArray(parts) && parts.length === length && parts.every((part) => typeof part === "string")) return parts;
  } catch {}
  throw invalidCursor();
}
