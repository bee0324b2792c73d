import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// The files the inspector's pages load, served from the package itself (no CDN: it works offline).
// The build copies them into dist/ui-assets; from the sources (tests, tsx) the client files sit in
// ./client and Chart.js in its package.

const types: Record<string, string> = {
  "chart.umd.js": "text/javascript; charset=utf-8",
  "inspector.js": "text/javascript; charset=utf-8",
  "inspector.css": "text/css; charset=utf-8",
};

/** Where an asset may be, in the order tried: beside a built chunk (dist/, dist/ui/, dist/cli/), then the sources. */
function candidates(name: string): string[] {
  const here = (relative: string) => fileURLToPath(new URL(relative, import.meta.url));
  const paths = [here(`./ui-assets/${name}`), here(`../ui-assets/${name}`), here(`./client/${name}`)];
  if (name === "chart.umd.js") {
    try {
      // The package exports no path to its UMD file: it sits beside the main one, in dist/.
      paths.push(join(dirname(createRequire(import.meta.url).resolve("chart.js")), "chart.umd.js"));
    } catch {
      // Not installed (a published package has its copy in dist/ui-assets).
    }
  }
  return paths;
}

const cache = new Map<string, Promise<string | undefined>>();

async function firstReadable(paths: readonly string[]): Promise<string | undefined> {
  for (const path of paths) {
    try {
      return await readFile(path, "utf8");
    } catch {
      // Try the next place.
    }
  }
  return undefined;
}

/** An asset by name, or undefined for a name the inspector does not serve (or a missing file). */
export async function readAsset(name: string): Promise<{ body: string; type: string } | undefined> {
  if (!Object.hasOwn(types, name)) return undefined;
  let body = cache.get(name);
  if (!body) {
    body = firstReadable(candidates(name));
    cache.set(name, body);
  }
  const text = await body;
  return text === undefined ? undefined : { body: text, type: types[name] as string };
}
