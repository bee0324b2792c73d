import type { IncomingMessage, ServerResponse } from "node:http";
import { getRequestListener } from "@hono/node-server";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { EngramError, InvalidInputError, isUserError, MemoryNotFoundError } from "../errors.js";
import type { Memory } from "../memory.js";
import { renderMemoryBlock } from "../memory-block.js";
import { type Scope, validateScope } from "../scope.js";
import type { MemoryItem, PendingTurn } from "../types.js";
import { parseConfig } from "../validation.js";
import { readAsset } from "./inspector-assets.js";
import { HISTORY_SAMPLE, lengthDistribution, perDayByEvent, scopeChanges, scoreDistribution } from "./inspector-data.js";
import {
  errorPage,
  type Html,
  memoriesPage,
  memoryPage,
  outboxPage,
  type PageContext,
  purgePage,
  type ScopeRow,
  scopeQuery,
  scopesPage,
} from "./inspector-pages.js";
import { cookieOf, hostNameOf, InspectorSecrets, isSameOrigin, sameSecret } from "./inspector-security.js";

const memoryMethods = ["search", "getAll", "iterate", "get", "update", "delete", "history", "pending", "retryFailed", "scopes", "profile"];

const inspectorOptionsSchema = z.strictObject({
  memory: z.custom<Memory>(
    (value) =>
      value !== null &&
      typeof value === "object" &&
      memoryMethods.every((name) => typeof (value as Record<string, unknown>)[name] === "function"),
    "memory must be an engram Memory",
  ),
  scope: z.unknown().optional(),
  token: z
    .string({ error: "token must be a string" })
    .min(16, "The inspector token must be at least 16 characters: use a random one, e.g. `openssl rand -hex 32`")
    .optional(),
  allowedHosts: z.array(z.string().min(1)).optional(),
  basePath: z
    .string()
    .regex(/^(\/[A-Za-z0-9._~-]+)*$/, 'basePath must look like "/inspector" (no trailing slash), or be ""')
    .optional(),
});

export interface InspectorOptions {
  /** The memory to inspect. The inspector reads and changes it through its public API only. */
  memory: Memory;
  /**
   * Fixes the inspector to one scope: its pages show that scope only, and no URL or form reaches
   * another (a request naming a scope gets 404). Without it, it is an operator view that lists
   * every scope (the store must be able to enumerate them, as the SQLite and in-memory stores can).
   */
  scope?: Scope;
  /**
   * Bearer token every request must carry: `Authorization: Bearer <token>`, or once in a browser
   * `?token=<token>`, which sets a session cookie and drops the token from the address. Compared in
   * constant time. Required whenever the server is reachable from other machines. At least 16
   * characters.
   */
  token?: string;
  /**
   * Host names (without port) the `Host` header may name; others get 403. Set it for a server bound
   * to loopback, against DNS rebinding: `["localhost", "127.0.0.1", "[::1]"]`.
   * @default any host
   */
  allowedHosts?: readonly string[];
  /** The path the inspector is mounted under, e.g. "/inspector". @default "" (the root) */
  basePath?: string;
}

const SESSION_COOKIE = "engram_inspector_session";
const LOGIN_COOKIE = "engram_inspector_login";
/** Memories read for a scope's page and plots at most. */
const PAGE_LIMIT = 20_000;
/** Rows of the memories table. */
const ROWS = 200;

const notices: Record<string, string> = {
  saved: "Saved.",
  deleted: "Deleted. Its history stays readable until it is purged.",
  purged: "Purged: the text is erased from the memory, its history and the database file.",
  retried: "Requeued the failed turns: a process with a write-behind worker writes them next.",
};

class HttpError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404,
    message: string,
  ) {
    super(message);
  }
}

interface Variables {
  session: string;
}

type InspectorContext = Context<{ Variables: Variables }>;

/** One field of a submitted form, read by own property only. */
function field(form: Record<string, unknown>, name: string): string | undefined {
  const value = Object.hasOwn(form, name) ? form[name] : undefined;
  return typeof value === "string" ? value : undefined;
}

/**
 * The memory inspector as a Hono app: server-rendered pages over a `Memory` (scopes, memories,
 * search with score parts, the rendered memory block, histories, the outbox, plots), with delete,
 * purge, edit and retry. Serve it with `createInspectorHandler`, or `app.route()` it into a Hono
 * app (with the same `basePath`).
 *
 * Every memory text is escaped. Requests that change something must come from the inspector's own
 * pages: a same-origin `Origin` header and the session's CSRF token.
 *
 * @example
 * const inspector = createInspector({ memory, scope: { userId: "alice" } });
 * export default { fetch: inspector.fetch };
 */
export function createInspector(options: InspectorOptions): Hono<{ Variables: Variables }> {
  const { memory, scope: givenScope, token, allowedHosts, basePath = "" } = parseConfig(inspectorOptionsSchema, options, "createInspector");
  const fixedScope = givenScope === undefined ? undefined : { ...validateScope("createInspector", givenScope) };
  const secrets = new InspectorSecrets();
  const hosts = allowedHosts === undefined ? undefined : new Set(allowedHosts.map((host) => host.toLowerCase()));
  const cookiePath = basePath || "/";
  const app = new Hono<{ Variables: Variables }>().basePath(basePath || "/");

  const pageOf = (c: InspectorContext, scope?: Scope): PageContext => ({
    base: basePath,
    scoped: fixedScope !== undefined,
    csrf: secrets.csrfToken(c.get("session")),
    ...(scope ? { scope } : {}),
  });

  /** The scope a request names: the fixed one in a scoped view (naming any other is a 404), else the URL's. */
  function requestScope(c: InspectorContext): Scope | undefined {
    const query = c.req.query();
    const given: Record<string, string> = {};
    for (const [parameter, key] of [
      ["user", "userId"],
      ["agent", "agentId"],
      ["run", "runId"],
    ] as const) {
      const value = field(query, parameter);
      if (value !== undefined) given[key] = value;
    }
    if (fixedScope) {
      if (Object.keys(given).length > 0) throw new HttpError(404, "Not found: this inspector shows one scope only.");
      return fixedScope;
    }
    return Object.keys(given).length === 0 ? undefined : { ...validateScope("inspector", given) };
  }

  function requiredScope(c: InspectorContext): Scope {
    const scope = requestScope(c);
    if (!scope)
      throw new HttpError(400, "This page needs a scope: pick one on the Scopes page, or add ?user=…, &agent=… or &run=… to the address.");
    return scope;
  }

  const render = (c: InspectorContext, page: Html, status: 200 | 400 | 401 | 403 | 404 | 500 = 200) => c.html(page, status);

  const redirect = (c: InspectorContext, path: string, scope: Scope | undefined, extra: Record<string, string> = {}) =>
    c.redirect(`${basePath}${path}${scopeQuery({ ...pageOf(c, scope) }, extra)}`, 303);

  // The forms send a memory's text and metadata: far below this.
  app.use(
    "*",
    bodyLimit({ maxSize: 1_000_000, onError: (c) => c.text("Payload too large: a form of the inspector sends less than 1 MB.", 413) }),
  );

  app.use("*", async (c, next) => {
    c.header(
      "content-security-policy",
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    c.header("x-content-type-options", "nosniff");
    c.header("referrer-policy", "same-origin");
    c.header("cache-control", "no-store");
    if (hosts) {
      const hostname = hostNameOf(c.req.header("host"));
      if (!hostname || !hosts.has(hostname)) return c.text("Forbidden: unexpected Host header.", 403);
    }
    if (token !== undefined) {
      const authorization = c.req.header("authorization");
      const login = cookieOf(c.req.header("cookie"), LOGIN_COOKIE);
      const shown = c.req.method === "GET" ? c.req.query("token") : undefined;
      const authorised =
        (authorization !== undefined && sameSecret(authorization, `Bearer ${token}`)) ||
        (login !== undefined && sameSecret(login, secrets.loginCookie(token)));
      if (!authorised && shown !== undefined && sameSecret(shown, token)) {
        // The token leaves the address at once (history, Referer): a cookie stands for it from now on.
        const url = new URL(c.req.url);
        url.searchParams.delete("token");
        c.header("set-cookie", `${LOGIN_COOKIE}=${secrets.loginCookie(token)}; Path=${cookiePath}; HttpOnly; SameSite=Strict`);
        return c.redirect(`${url.pathname}${url.search}`, 303);
      }
      if (!authorised) {
        c.header("www-authenticate", "Bearer");
        return c.text(
          "Unauthorized: open the address `engram ui` printed (it carries ?token=…), or send Authorization: Bearer <token>.",
          401,
        );
      }
    }
    let session = cookieOf(c.req.header("cookie"), SESSION_COOKIE);
    if (!session || !/^[A-Za-z0-9_-]{32}$/.test(session)) {
      session = secrets.newSession();
      c.header("set-cookie", `${SESSION_COOKIE}=${session}; Path=${cookiePath}; HttpOnly; SameSite=Strict`, { append: true });
    }
    c.set("session", session);
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      const sameOrigin = isSameOrigin({
        url: c.req.url,
        origin: c.req.header("origin"),
        referer: c.req.header("referer"),
        host: c.req.header("host"),
      });
      if (!sameOrigin)
        return render(c, errorPage(pageOf(c), 403, "Forbidden: this request did not come from a page of this inspector."), 403);
      const form = (await c.req.parseBody()) as Record<string, unknown>;
      const csrf = field(form, "_csrf");
      if (csrf === undefined || !sameSecret(csrf, secrets.csrfToken(session))) {
        return render(
          c,
          errorPage(pageOf(c), 403, "Forbidden: the form's session token is missing or expired. Reload the page and try again."),
          403,
        );
      }
    }
    await next();
  });

  app.onError((error, c) => {
    const context = c as InspectorContext;
    const page = pageOf(context);
    if (error instanceof HttpError) return render(context, errorPage(page, error.status, error.message), error.status);
    if (MemoryNotFoundError.isInstance(error))
      return render(context, errorPage(page, 404, "Not found: no such memory in this scope."), 404);
    if (EngramError.isInstance(error) && isUserError(error)) return render(context, errorPage(page, 400, error.message), 400);
    return render(context, errorPage(page, 500, error instanceof Error ? error.message : String(error)), 500);
  });

  app.notFound((c) => render(c as InspectorContext, errorPage(pageOf(c as InspectorContext), 404, "Not found."), 404));

  app.get("/assets/:name", async (c) => {
    const asset = await readAsset(c.req.param("name"));
    if (!asset) return c.text("Not found", 404);
    c.header("cache-control", "public, max-age=3600");
    return c.body(asset.body, 200, { "content-type": asset.type });
  });

  app.get("/favicon.ico", (c) => c.body(null, 204));

  app.get("/", async (c) => {
    const scope = requestScope(c);
    if (scope) return redirect(c, "/memories", scope);
    const rows: ScopeRow[] = await memory.scopes({ allScopes: true });
    const outbox: Record<PendingTurn["status"], number> = { pending: 0, processing: 0, failed: 0 };
    for (const turn of await memory.pending({ allScopes: true })) outbox[turn.status]++;
    const changes = await scopeChanges(memory, undefined, async () => {
      const items: MemoryItem[] = [];
      for (const row of rows) {
        const scope = { ...validateScope("inspector", { userId: row.userId, agentId: row.agentId, runId: row.runId }) };
        items.push(...(await memory.getAll({ ...scope, limit: Math.min(1000, HISTORY_SAMPLE) })).results);
        if (items.length >= HISTORY_SAMPLE) break;
      }
      return items;
    });
    return render(c, scopesPage(pageOf(c), rows, outbox, perDayByEvent(changes.records, "Changes per day"), !changes.complete));
  });

  app.get("/memories", async (c) => {
    const scope = requiredScope(c);
    const items: MemoryItem[] = [];
    for await (const item of memory.iterate(scope)) {
      items.push(item);
      if (items.length >= PAGE_LIMIT) break;
    }
    const query = c.req.query("q")?.trim();
    let search: Parameters<typeof memoriesPage>[1]["search"];
    if (query) {
      const [{ results }, profile] = await Promise.all([memory.search(query, { ...scope, explain: true }), memory.profile(scope)]);
      const block = renderMemoryBlock(results, { profile });
      search = {
        query,
        results,
        block,
        tokens: block ? await countTokens(block) : 0,
        scores: scoreDistribution(results.map((item) => item.score ?? 0)),
      };
    }
    const history = await scopeChanges(memory, scope, async () => items);
    const done = c.req.query("done");
    return render(
      c,
      memoriesPage(
        pageOf(c, scope),
        {
          items: items.slice(0, ROWS),
          total: items.length,
          ...(search ? { search } : {}),
          perDay: perDayByEvent(history.records, "Changes per day"),
          lengths: lengthDistribution(items),
          sampled: !history.complete,
        },
        done && Object.hasOwn(notices, done) ? notices[done] : undefined,
      ),
    );
  });

  app.get("/memory/:id", async (c) => {
    const scope = requiredScope(c);
    const id = c.req.param("id");
    const [item, history] = await Promise.all([memory.get(id, scope), memory.history(id, scope)]);
    const done = c.req.query("done");
    return render(c, memoryPage(pageOf(c, scope), id, item, history, done && Object.hasOwn(notices, done) ? notices[done] : undefined));
  });

  app.post("/memory/:id/edit", async (c) => {
    const scope = requiredScope(c);
    const id = c.req.param("id");
    const form = (await c.req.parseBody()) as Record<string, unknown>;
    const text = field(form, "text");
    const metadataText = field(form, "metadata")?.trim();
    let metadata: Record<string, unknown> | undefined;
    if (metadataText) {
      try {
        metadata = JSON.parse(metadataText);
      } catch {
        metadata = undefined;
      }
      if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
        throw new InvalidInputError({
          message: 'Metadata must be a JSON object, e.g. {"topic":"databases"}: nothing was changed.',
          field: "metadata",
        });
      }
    }
    await memory.update(id, { ...(text === undefined ? {} : { text }), ...(metadata === undefined ? {} : { metadata }) }, scope);
    return redirect(c, `/memory/${encodeURIComponent(id)}`, scope, { done: "saved" });
  });

  app.post("/memory/:id/delete", async (c) => {
    const scope = requiredScope(c);
    const id = c.req.param("id");
    await memory.delete(id, scope);
    return redirect(c, `/memory/${encodeURIComponent(id)}`, scope, { done: "deleted" });
  });

  app.get("/memory/:id/purge", async (c) => {
    const scope = requiredScope(c);
    const id = c.req.param("id");
    const [item, history] = await Promise.all([memory.get(id, scope), memory.history(id, scope)]);
    const last = history.findLast((entry) => entry.newValue !== null || entry.previousValue !== null);
    return render(c, purgePage(pageOf(c, scope), id, item?.memory ?? last?.newValue ?? last?.previousValue ?? null));
  });

  app.post("/memory/:id/purge", async (c) => {
    const scope = requiredScope(c);
    const id = c.req.param("id");
    const form = (await c.req.parseBody()) as Record<string, unknown>;
    if (field(form, "confirm") !== "purge")
      throw new HttpError(400, "Purging needs a confirmation: use the Purge button on the confirmation page.");
    // Only a memory of this scope (present or deleted) can be purged: the same check as its page.
    await memory.history(id, scope);
    await memory.delete(id, { ...scope, purge: true });
    return redirect(c, "/memories", scope, { done: "purged" });
  });

  app.get("/outbox", async (c) => {
    const scope = requestScope(c);
    const turns = await memory.pending(scope ?? { allScopes: true });
    const done = c.req.query("done");
    return render(c, outboxPage(pageOf(c, scope), turns, done && Object.hasOwn(notices, done) ? notices[done] : undefined));
  });

  app.post("/outbox/retry", async (c) => {
    const scope = requestScope(c);
    await memory.retryFailed(scope ?? { allScopes: true });
    return redirect(c, "/outbox", scope, { done: "retried" });
  });

  return app;
}

let tokenizer: Promise<(text: string) => number> | undefined;

/** Tokens of a text as OpenAI's o200k encoding counts them (loaded on the first search: it is large). */
async function countTokens(text: string): Promise<number> {
  tokenizer ??= import("gpt-tokenizer/encoding/o200k_base").then((module) => module.countTokens);
  return (await tokenizer)(text);
}

/**
 * The inspector as a Node `http` request handler, to mount in an existing server (route the
 * inspector's `basePath` to it) or to serve on its own.
 *
 * @example
 * const handler = createInspectorHandler({ memory, scope: { userId: "alice" } });
 * createServer(handler).listen(8766, "127.0.0.1");
 */
export function createInspectorHandler(options: InspectorOptions): (request: IncomingMessage, response: ServerResponse) => void {
  const app = createInspector(options);
  const listener = getRequestListener(app.fetch);
  return (request, response) => {
    void listener(request, response);
  };
}
