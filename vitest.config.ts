import { configDefaults, defineConfig } from "vitest/config";

// Tests against a live Qdrant server run only when one is given (QDRANT_URL).
const live = process.env.QDRANT_URL ? [] : ["test/live/**"];

export default defineConfig({
  test: {
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          sequence: { groupOrder: 0 },
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, ...live, "test/reliability/**"],
        },
      },
      // The fault suite kills processes, fills disks and loads both cores: it runs after the rest,
      // so that its load never makes another test's deadline pass.
      { extends: true, test: { name: "faults", include: ["test/reliability/**/*.test.ts"], sequence: { groupOrder: 1 } } },
    ],
  },
});
