import { format } from "node:util";

/**
 * A namespaced logger (`engram:write-behind`, `engram:adapter`, …) writing to stderr.
 *
 * `error` lines are always written, with the stable `[engram]` prefix: failures Engram handles away
 * from the caller (the default `onError` hooks) must stay visible. `debug` lines are silent unless
 * the `DEBUG` environment variable names the namespace, as the `debug` package reads it:
 * `DEBUG=engram*`, `DEBUG=engram:adapter,engram:write-behind`, `DEBUG=engram*,-engram:adapter`.
 */
export interface Logger {
  readonly namespace: string;
  /** Always written: `[engram] <message>`; `args` are formatted as `util.format` does (`%s`, `%O`, extra values appended). */
  error(message: string, ...args: unknown[]): void;
  /** Written only when `DEBUG` enables this namespace: `[<namespace>] <message>`. */
  debug(message: string, ...args: unknown[]): void;
}

/** Where lines go; the current `process.stderr` unless a test passes its own. */
export interface LoggerOptions {
  stream?: () => NodeJS.WritableStream;
  env?: () => string | undefined;
}

/** Whether `namespace` is enabled by a `DEBUG` value: comma- or space-separated patterns, `*` wildcards, `-` to exclude. */
export function debugEnabled(namespace: string, setting: string | undefined): boolean {
  let enabled = false;
  for (const pattern of (setting ?? "").split(/[\s,]+/)) {
    if (pattern === "" || pattern === "-") continue;
    const skip = pattern.startsWith("-");
    const glob = skip ? pattern.slice(1) : pattern;
    const matcher = new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*")}$`);
    if (!matcher.test(namespace)) continue;
    if (skip) return false;
    enabled = true;
  }
  return enabled;
}

const ignore = () => {};

/** Writes without ever throwing into the caller or leaving an unhandled 'error' (a closed pipe), as `console` does. */
function writeLine(stream: NodeJS.WritableStream, line: string): void {
  // A failed write emits 'error' on the stream, synchronously or on a later tick: with nobody
  // listening that would be an uncaught exception in the host. One no-op listener covers both.
  const guard = stream.listenerCount("error") === 0;
  if (guard) stream.once("error", ignore);
  try {
    stream.write(line, (error) => {
      if (error && stream.listenerCount("error") === 0) stream.once("error", ignore);
    });
  } catch {
    // Logging must not break the code that logs.
  } finally {
    if (guard) stream.removeListener("error", ignore);
  }
}

export function getLogger(namespace: string, { stream = () => process.stderr, env = () => process.env.DEBUG }: LoggerOptions = {}): Logger {
  let seen: string | undefined;
  let enabled = false;
  return {
    namespace,
    error(message, ...args) {
      writeLine(stream(), `[engram] ${format(message, ...args)}\n`);
    },
    debug(message, ...args) {
      // DEBUG is read at each call (cached while unchanged), so it can be set after the module loads.
      const setting = env();
      if (setting !== seen) {
        seen = setting;
        enabled = debugEnabled(namespace, setting);
      }
      if (enabled) writeLine(stream(), `[${namespace}] ${format(message, ...args)}\n`);
    },
  };
}
