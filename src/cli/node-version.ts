/** The oldest Node.js the CLI runs on: `node:sqlite` without a flag arrived in 22.13. */
export const minimumNodeVersion = "22.13.0";

/** A one-line explanation when `version` (e.g. "20.11.1") is older than `minimumNodeVersion`, else undefined. */
export function nodeVersionProblem(version: string): string | undefined {
  const [major = 0, minor = 0] = version.replace(/^v/, "").split(".").map(Number);
  const [wantMajor = 0, wantMinor = 0] = minimumNodeVersion.split(".").map(Number);
  if (major > wantMajor || (major === wantMajor && minor >= wantMinor)) return undefined;
  return `engram needs Node.js >= 22.13 (it uses the built-in node:sqlite), but this is Node.js ${version.replace(/^v?/, "v")}. Install Node.js 22.13 or newer (e.g. \`nvm install 22\`) and run it again.`;
}
