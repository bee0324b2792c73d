import { expect, test } from "vitest";
import { nodeVersionProblem } from "../../src/cli/node-version.js";

test("Node.js older than 22.13 gets one line saying what to install", () => {
  for (const version of ["20.11.1", "v20.20.2", "18.0.0", "22.12.0", "22.0.0"]) {
    expect(nodeVersionProblem(version), version).toMatch(
      /^engram needs Node\.js >= 22\.13 .* but this is Node\.js v[\d.]+\. Install Node\.js 22\.13 or newer/,
    );
  }
  for (const version of ["22.13.0", "22.23.3", "23.0.0", "24.1.0", "v25.2.1"]) expect(nodeVersionProblem(version), version).toBeUndefined();
});
