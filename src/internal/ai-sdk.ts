import { ConfigError } from "../errors.js";

export type AiSdk = typeof import("ai");

/**
 * Loads the AI SDK (an optional peer dependency) on first use, so that importing `engram` never
 * loads it. `needs` names what needs it, for the error when it is not installed.
 * @throws ConfigError saying what to install.
 */
export async function loadAiSdk(needs: string): Promise<AiSdk> {
  try {
    return await import("ai");
  } catch (cause) {
    throw new ConfigError({ message: `${needs} needs the \`ai\` package: npm install ai@^7`, cause });
  }
}
