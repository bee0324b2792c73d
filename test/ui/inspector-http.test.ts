import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { ConfigError, type Memory, type Scope } from "../../src/index.js";
import { createInspector, type InspectorOptions } from "../../src/ui/index.js";
import { memoriesClosedAfterEach } from "../support/memories.js";

// The inspector's HTTP rules, request by request (no browser): token, Host header, same origin and
// CSRF token on every change, and a scoped view that no URL or form widens.

const newMemory = memoriesClosedAfterEach();
const origin = "http://127.0.0.1:8766";
const token = "0123456789abcdef-token";

/** A browser-like client of one inspector: keeps its cookies, reads the CSRF token off a page. */
function client(options: Omit<InspectorOptions, "memory"> & { memory: Memory }) {
  const app = createInspector(options);
  const cookies = new Map<string, string>();
  const request = async (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) => {
    const cookie = [...cookies].map(([name, value]) => `${name}=${value}`).join("; ");
    const response = await app.request(`${origin}${path}`, {
      ...init,
      headers: { ...(cookie ? { cookie } : {}), ...init.headers },
      redirect: "manual",
    });
    for (const header of response.headers.getSetCookie()) {
      const [pair] = header.split(";");
      const at = (pair as string).indexOf("=");
      cookies.set((pair as string).slice(0, at), (pair as string).slice(at + 1));
    }
    return response;
  };
  const csrfOf = async (path: string, headers: Record<string, string> = {}) => {
    const page = await (await request(path, { headers })).text();
    return /name="_csrf" value="([^"]+)"/.exec(page)?.[1] as string;
  };
  const post = (path: string, fields: Record<string, string>, headers: Record<string, string> = { origin }) =>
    request(path, {
      method: "POST",
      body: new URLSearchParams(fields),
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    });
  return { request, csrfOf, post, cookies };
}

async function seed(memory: Memory): Promise<Record<string, string>> {
  const add = async (text: string, scope: Scope) => (await memory.add(text, scope)).results[0]?.id as string;
  return {
    alice: await add("Alice prefers Postgres", { userId: "alice" }),
    bob: await add("Bob's vault code is 4711", { userId: "bob" }),
  };
}

describe("the bearer token (same rules as the MCP HTTP server)", () => {
  test("a request without it gets 401; the Authorization header, or ?token= once in a browser, gets in", async () => {
    const memory = newMemory();
    await seed(memory);
    const browser = client({ memory, token });
    expect((await browser.request("/")).status).toBe(401);
    expect((await browser.request("/", { headers: { authorization: "Bearer wrong-token-wrong-token" } })).status).toBe(401);
    expect((await browser.request("/?token=wrong-token-wrong-token")).status).toBe(401);
    expect((await client({ memory, token }).request("/", { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    const login = await browser.request(`/memories?user=alice&token=${token}`);
    expect(login.status).toBe(303);
    // The token leaves the address: a cookie stands for it.
    expect(login.headers.get("location")).toBe("/memories?user=alice");
    const page = await browser.request("/memories?user=alice");
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("Alice prefers Postgres");
    // The cookie is worth nothing to another inspector (another secret).
    const other = client({ memory, token });
    for (const [name, value] of browser.cookies) other.cookies.set(name, value);
    expect((await other.request("/")).status).toBe(401);
  });

  test("createInspector refuses a short token, an unknown option and a bad scope with a ConfigError that says what to do", async () => {
    const memory = newMemory();
    expect(() => createInspector({ memory, token: "short" })).toThrow(ConfigError);
    expect(() => createInspector({ memory, token: "short" })).toThrow(/at least 16 characters/);
    expect(() => createInspector({ memory, port: 1 } as unknown as InspectorOptions)).toThrow(/Unknown option "port"/);
    expect(() => createInspector({ memory, scope: { user_id: "alice" } as unknown as Scope })).toThrow(/did you mean "userId"/);
    expect(() => createInspector({ memory: {} as Memory })).toThrow(/memory must be an engram Memory/);
  });
});

test("a Host header other than the allowed names gets 403: a DNS-rebinding page cannot read a loopback inspector", async () => {
  const memory = newMemory();
  await seed(memory);
  const browser = client({ memory, allowedHosts: ["localhost", "127.0.0.1"] });
  expect((await browser.request("/", { headers: { host: "attacker.example:8766" } })).status).toBe(403);
  expect((await browser.request("/", { headers: { host: "127.0.0.1:8766" } })).status).toBe(200);
});

describe("changes need the same origin and the session's CSRF token", () => {
  test("a POST without Origin or Referer, from another origin, without the token or with another session's token changes nothing", async () => {
    const memory = newMemory();
    const ids = await seed(memory);
    const browser = client({ memory });
    const csrf = await browser.csrfOf(`/memory/${ids.alice}?user=alice`);
    expect(csrf).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    const path = `/memory/${ids.alice}/delete?user=alice`;
    const refused: [string, Record<string, string>, Record<string, string>][] = [
      ["no Origin, no Referer", { _csrf: csrf }, {}],
      ["another origin", { _csrf: csrf }, { origin: "http://attacker.example" }],
      ["another port", { _csrf: csrf }, { origin: "http://127.0.0.1:9999" }],
      ["a Referer of another site", { _csrf: csrf }, { referer: "http://attacker.example/page" }],
      ["an opaque origin", { _csrf: csrf }, { origin: "null" }],
      ["no token", {}, { origin }],
      ["a wrong token", { _csrf: `${csrf}x` }, { origin }],
    ];
    for (const [why, fields, headers] of refused) {
      const response = await browser.post(path, fields, headers);
      expect(response.status, why).toBe(403);
    }
    // Another session's token does not fit this session.
    const other = client({ memory });
    await other.request("/");
    expect((await other.post(path, { _csrf: csrf })).status).toBe(403);
    expect((await memory.get(ids.alice as string, { userId: "alice" }))?.memory).toBe("Alice prefers Postgres");

    const accepted = await browser.post(path, { _csrf: csrf }, { referer: `${origin}/memory/${ids.alice}?user=alice` });
    expect(accepted.status).toBe(303);
    expect(await memory.get(ids.alice as string, { userId: "alice" })).toBeNull();
  });

  test("a body over 1 MB is refused with 413 before it is read", async () => {
    const memory = newMemory();
    const ids = await seed(memory);
    const browser = client({ memory });
    const csrf = await browser.csrfOf(`/memory/${ids.alice}?user=alice`);
    const response = await browser.post(`/memory/${ids.alice}/edit?user=alice`, { _csrf: csrf, text: "x".repeat(1_100_000) });
    expect(response.status).toBe(413);
    expect((await memory.get(ids.alice as string, { userId: "alice" }))?.memory).toBe("Alice prefers Postgres");
  });

  test("purge needs its confirmation field; metadata that is not a JSON object is refused with a message and nothing changes", async () => {
    const memory = newMemory();
    const ids = await seed(memory);
    const browser = client({ memory });
    const csrf = await browser.csrfOf(`/memory/${ids.alice}?user=alice`);
    const purge = await browser.post(`/memory/${ids.alice}/purge?user=alice`, { _csrf: csrf });
    expect(purge.status).toBe(400);
    expect(await purge.text()).toContain("Purging needs a confirmation");
    const edit = await browser.post(`/memory/${ids.alice}/edit?user=alice`, { _csrf: csrf, text: "changed", metadata: "[1, 2]" });
    expect(edit.status).toBe(400);
    expect(await edit.text()).toContain("Metadata must be a JSON object");
    expect((await memory.get(ids.alice as string, { userId: "alice" }))?.memory).toBe("Alice prefers Postgres");
  });
});

describe("a scoped view", () => {
  test("property: no GET path or query, and no form post, reaches another scope's memory", async () => {
    const memory = newMemory();
    const ids = await seed(memory);
    const browser = client({ memory, scope: { userId: "alice" } });
    const csrf = await browser.csrfOf(`/memory/${ids.alice}`);
    const id = fc.constantFrom(ids.bob as string, ids.alice as string, "missing", "..%2f", "");
    const query = fc.array(
      fc.tuple(
        fc.constantFrom("user", "agent", "run", "q", "token", "__proto__", "done"),
        fc.constantFrom("bob", "alice", "vault code", " ", ""),
      ),
      {
        maxLength: 3,
      },
    );
    const route = fc.constantFrom("/", "/memories", "/memory/:id", "/memory/:id/purge", "/outbox", "/assets/:id", "/scopes");
    await fc.assert(
      fc.asyncProperty(route, id, query, async (template, memoryId, parameters) => {
        const search = new URLSearchParams(parameters).toString();
        const path = `${template.replace(":id", encodeURIComponent(memoryId))}${search ? `?${search}` : ""}`;
        const response = await browser.request(path);
        const body = await response.text();
        expect(body, path).not.toContain("4711");
        expect(body, path).not.toContain("Bob");
        expect([200, 303, 400, 404], path).toContain(response.status);
        if (parameters.some(([key]) => key === "user" || key === "agent" || key === "run")) expect(response.status, path).toBe(404);
      }),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("delete", "purge", "edit"), query, async (verb, parameters) => {
        const search = new URLSearchParams(parameters).toString();
        const response = await browser.post(`/memory/${ids.bob}/${verb}${search ? `?${search}` : ""}`, {
          _csrf: csrf,
          confirm: "purge",
          text: "overwritten",
        });
        expect(response.status).toBe(404);
      }),
      { numRuns: 40 },
    );
    expect((await memory.get(ids.bob as string, { userId: "bob" }))?.memory).toBe("Bob's vault code is 4711");
    expect((await memory.history(ids.bob as string, { userId: "bob" })).map((entry) => entry.event)).toEqual(["ADD"]);
  });
});

test("property: a memory's text is escaped on every page that shows it, whatever markup it holds", async () => {
  const memory = newMemory();
  const browser = client({ memory });
  const markup = fc.constantFrom(
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</textarea><b>",
    "' onmouseover='x",
    "&lt;i&gt;",
    "<!--",
  );
  await fc.assert(
    fc.asyncProperty(fc.string({ maxLength: 12 }), markup, fc.string({ maxLength: 12 }), async (before, tag, after) => {
      const text = `${before}${tag}${after}`.trim();
      if (text === "") return;
      const [added] = (await memory.add(text, { userId: "escape" })).results;
      if (!added) return;
      for (const path of [
        "/memories?user=escape",
        `/memory/${added.id}?user=escape`,
        `/memories?user=escape&q=${encodeURIComponent(text.slice(0, 50))}`,
      ]) {
        const html = await (await browser.request(path)).text();
        // Only the page's own two scripts, no image, one textarea at most, no comment.
        expect((html.match(/<script/g) ?? []).length, path).toBe(2);
        expect(html, path).not.toMatch(/<img|<b>|<!--/);
        expect((html.match(/<\/textarea>/g) ?? []).length, path).toBeLessThanOrEqual(1);
        expect(html, path).not.toMatch(/' onmouseover='/);
      }
      await memory.delete(added.id, { userId: "escape", purge: true });
    }),
    { numRuns: 25 },
  );
});

test("under a basePath every link, form and asset carries the prefix, and the routes answer there only", async () => {
  const memory = newMemory();
  const ids = await seed(memory);
  const browser = client({ memory, basePath: "/inspector" });
  expect((await browser.request("/memories?user=alice")).status).toBe(404);
  const page = await (await browser.request("/inspector/memories?user=alice")).text();
  expect(page).toContain(`href="/inspector/memory/${ids.alice}?user=alice"`);
  expect(page).toContain('src="/inspector/assets/chart.umd.js"');
  expect(page).toContain('action="/inspector/memories"');
  expect((await browser.request("/inspector/assets/chart.umd.js")).headers.get("content-type")).toMatch(/^text\/javascript/);
  const csrf = await browser.csrfOf(`/inspector/memory/${ids.alice}?user=alice`);
  const deleted = await browser.post(`/inspector/memory/${ids.alice}/delete?user=alice`, { _csrf: csrf });
  expect(deleted.status).toBe(303);
  expect(deleted.headers.get("location")).toBe(`/inspector/memory/${ids.alice}?user=alice&done=deleted`);
  expect(() => createInspector({ memory, basePath: "inspector/" })).toThrow(/basePath must look like "\/inspector"/);
});
