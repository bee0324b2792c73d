import { copyFileSync, mkdirSync } from "node:fs";
import { defineConfig } from "tsup";
import packageJson from "./package.json" with { type: "json" };

/** Build entries, one per `exports` subpath; a test keeps the two in step. */
export const entries: Record<string, string> = {
  index: "src/index.ts",
  "testing/index": "src/testing/index.ts",
  "testing/conformance/index": "src/testing/conformance/index.ts",
  "stores/pgvector-store": "src/stores/pgvector-store.ts",
  "stores/qdrant-store": "src/stores/qdrant-store.ts",
  "stores/chroma-store": "src/stores/chroma-store.ts",
  "history/postgres-history": "src/history/postgres-history.ts",
  "store-kit/index": "src/store-kit/index.ts",
  "ai-sdk/index": "integrations/ai-sdk/index.ts",
  "mastra/index": "integrations/mastra/index.ts",
  "openai-agents/index": "integrations/openai-agents/index.ts",
  "openai/index": "integrations/openai/index.ts",
  "mcp/index": "integrations/mcp/index.ts",
  "ui/index": "src/ui/index.ts",
};

/** Files the memory inspector serves to browsers, copied into dist/ui-assets (it never loads them from a CDN). */
export const uiAssets: Record<string, string> = {
  "chart.umd.js": "node_modules/chart.js/dist/chart.umd.js",
  "inspector.js": "src/ui/client/inspector.js",
  "inspector.css": "src/ui/client/inspector.css",
};

/** Executables (package.json `bin`), built next to the library entries. */
export const binEntries: Record<string, string> = {
  "cli/index": "src/cli/index.ts",
};

export default defineConfig({
  entry: { ...entries, ...binEntries },
  format: ["esm"],
  // The bin has no types to publish.
  dts: { entry: entries },
  sourcemap: true,
  clean: true,
  splitting: true,
  target: "node22",
  platform: "node",
  // Keep `node:` specifiers: `node:sqlite` exists only under that name.
  removeNodeProtocol: false,
  external: [...Object.keys(packageJson.peerDependencies ?? {})],
  onSuccess: async () => {
    mkdirSync("dist/ui-assets", { recursive: true });
    for (const [name, source] of Object.entries(uiAssets)) copyFileSync(source, `dist/ui-assets/${name}`);
  },
});
