import { readFileSync } from "node:fs";
import { basename } from "node:path";
import wabt from "wabt";

/** The WebAssembly binary of a `.wat` file (SIMD and threads, for shared memory, enabled). */
export async function compileWat(path: string): Promise<Uint8Array> {
  const toolkit = await wabt();
  const features = { simd: true, threads: true };
  const module = toolkit.parseWat(basename(path), readFileSync(path, "utf8"), features);
  try {
    // The library takes the features to validate with, which its declarations leave out.
    (module.validate as (features: object) => void)(features);
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}
