import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Tests against a live Qdrant server run only when one is given (QDRANT_URL).
    exclude: process.env.QDRANT_URL ? configDefaults.exclude : [...configDefaults.exclude, "test/live/**"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
