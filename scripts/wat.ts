import { readFileSync } from "node:fs";
import { basename } from "node:path";
import wabt from "wabt";

/** The WebAssembly binary of a `.wat` file (SIMD enabled). */
export async function compileWat(path: string): Promise<Uint8Array> {
  const toolkit = await wabt();
  const module = toolkit.parseWat(basename(path), readFileSync(path, "utf8"), { simd: true });
  try {
    module.validate();
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}
