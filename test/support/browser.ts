import { existsSync } from "node:fs";
import puppeteer, { type Browser } from "puppeteer-core";

/** Debian's chromium (`.ci/run` installs it); CHROMIUM_PATH points elsewhere. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * Starts headless Chromium. Fails, never skips, when it is not installed: browser tests are part
 * of the suite, and a missing browser must not pass as green.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`No Chromium at ${chromiumPath}: install it (apt-get install -y chromium; .ci/run does) or set CHROMIUM_PATH.`);
  }
  return puppeteer.launch({
    executablePath: chromiumPath,
    headless: true,
    // Root in CI and containers: Chromium's sandbox needs user namespaces it may not have there.
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--font-render-hinting=none"],
  });
}
