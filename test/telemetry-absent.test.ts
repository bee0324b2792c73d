import { expect, test, vi } from "vitest";
import { loadTracing, noTracing, traceStore } from "../src/telemetry/tracing.js";
import { inMemoryStore } from "../src/testing/index.js";

// @opentelemetry/api is an optional peer: here it cannot be loaded, as in an app without it.
vi.doMock("@opentelemetry/api", () => {
  throw new Error("Cannot find package '@opentelemetry/api'");
});

test("without @opentelemetry/api nothing is wrapped: stores stay the very objects given and spans only run their function", async () => {
  const tracing = await loadTracing({});
  expect(tracing).toBe(noTracing);
  const store = inMemoryStore();
  expect(traceStore(store, tracing, "vector")).toBe(store);
  await expect(tracing.span("engram.search", {}, async () => 42)).resolves.toBe(42);
  expect(tracing.scope({ userId: "alice" })).toEqual({});
});
