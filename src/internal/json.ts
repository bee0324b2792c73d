/** Float32Array ⇄ bytes, little-endian as stored by SQLite (sqlite-vec) and in plans. */
export function vectorToBytes(vector: Float32Array): Uint8Array {
  return new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength);
}

export function bytesToVector(bytes: Uint8Array): Float32Array {
  // Copy: the source may not be 4-byte aligned.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

export function vectorToBase64(vector: Float32Array): string {
  return Buffer.from(vectorToBytes(vector)).toString("base64");
}

export function base64ToVector(text: string): Float32Array {
  return bytesToVector(Buffer.from(text, "base64"));
}

export function encodeCursor(parts: readonly string[]): string {
  return Buffer.from(JSON.stringify(parts)).toString("base64url");
}

export function decodeCursor(cursor: string, length: number): string[] | undefined {
  try {
    const parts = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (Array.isArray(parts) && parts.length === length && parts.every((p) => typeof p === "string")) return parts;
  } catch {}
  return undefined;
}
