import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

// The inspector's request checks, framework-free so they can be tested alone: the Host header
// (against DNS rebinding), the bearer token (same rules as the MCP HTTP server), and, for requests
// that change something, the same-origin check and the per-session CSRF token.

const digest = (text: string) => createHash("sha256").update(text).digest();

/** Constant-time equality of two strings: digests have equal lengths, so neither value nor length leaks. */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** Host names only this machine answers to: a server bound to loopback accepts no other Host header. */
export const loopbackHostNames = ["localhost", "127.0.0.1", "[::1]"] as const;

/** The host name of a Host header (no port, lower case), or undefined when it is not one. */
export function hostNameOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  try {
    return new URL(`http://${header}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * True when a state-changing request comes from a page of this server: its `Origin` header (or,
 * when a browser sent none, its `Referer`) has the scheme, host and port the request was sent to.
 * A request with neither is refused: every browser sends `Origin` on a cross-site POST.
 */
export function isSameOrigin(request: { url: string; origin?: string; referer?: string; host?: string }): boolean {
  const target = new URL(request.url);
  const host = request.host ?? target.host;
  const expected = `${target.protocol}//${host}`.toLowerCase();
  let given: string | undefined;
  if (request.origin && request.origin !== "null") given = request.origin;
  else if (request.referer) {
    try {
      given = new URL(request.referer).origin;
    } catch {
      given = undefined;
    }
  }
  return given !== undefined && given.toLowerCase() === expected;
}

/** The secrets of one inspector: sessions, their CSRF tokens and the login cookie are derived from them. */
export class InspectorSecrets {
  readonly #key = randomBytes(32);

  /** A new random session id for the session cookie. */
  newSession(): string {
    return randomBytes(24).toString("base64url");
  }

  /** The CSRF token of a session: a form must carry it back, and a page of another site cannot read it. */
  csrfToken(session: string): string {
    return createHmac("sha256", this.#key).update(`csrf:${session}`).digest("base64url");
  }

  /** The value of the cookie that stands for the bearer token once a browser has shown it (`?token=`). */
  loginCookie(token: string): string {
    return createHmac("sha256", this.#key).update(`login:${token}`).digest("base64url");
  }
}

/** Reads one cookie from a Cookie header (no prototype keys: a plain scan). */
export function cookieOf(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const at = part.indexOf("=");
    if (at < 0) continue;
    if (part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}
