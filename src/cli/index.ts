#!/usr/bin/env node
// The bin entry: plain code that any Node.js can parse, so an old one gets a clear message instead
// of a crash inside node:sqlite. The CLI itself is loaded only once the version is known to work.
import { nodeVersionProblem } from "./node-version.js";

const problem = nodeVersionProblem(process.versions.node);
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}

const { main } = await import("./main.js");
process.exitCode = await main(process.argv);
