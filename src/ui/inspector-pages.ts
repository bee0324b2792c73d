import { html } from "hono/html";
import type { Scope } from "../scope.js";
import type { HistoryRecord, MemoryItem, PendingTurn, ScoreExplanation } from "../types.js";
import type { BarChart } from "./inspector-data.js";

// Every page is built with hono's html`` template: each interpolated value is escaped, so a
// memory's text, metadata or an error message can never become markup. Chart data travels in a
// data- attribute (escaped too) and is parsed by the bundled client as JSON, never run.

export type Html = ReturnType<typeof html>;

/** What every page needs to build its links and forms. */
export interface PageContext {
  base: string;
  /** The scope of the page, as given by the URL (operator view) or fixed by the server (scoped view). */
  scope?: Scope;
  /** True when the server is fixed to one scope: no link leads out of it. */
  scoped: boolean;
  csrf: string;
}

/** `?user=alice&agent=coder` for the operator view; nothing in a scoped view, whose scope is the server's. */
export function scopeQuery(page: PageContext, extra: Record<string, string> = {}): string {
  const parameters = new URLSearchParams();
  if (!page.scoped && page.scope) {
    if (page.scope.userId !== undefined) parameters.set("user", page.scope.userId);
    if (page.scope.agentId !== undefined) parameters.set("agent", page.scope.agentId);
    if (page.scope.runId !== undefined) parameters.set("run", page.scope.runId);
  }
  for (const [key, value] of Object.entries(extra)) parameters.set(key, value);
  const text = parameters.toString();
  return text ? `?${text}` : "";
}

export function scopeLabel(scope: Scope | undefined): string {
  if (!scope) return "every scope";
  const parts: string[] = [];
  if (scope.userId !== undefined) parts.push(`user ${scope.userId}`);
  if (scope.agentId !== undefined) parts.push(`agent ${scope.agentId}`);
  if (scope.runId !== undefined) parts.push(`run ${scope.runId}`);
  return parts.join(", ");
}

const when = (iso: string) => html`<time datetime="${iso}">${iso.slice(0, 19).replace("T", " ")}</time>`;

export function layout(page: PageContext, title: string, body: Html, { notice }: { notice?: string } = {}): Html {
  const { base } = page;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Engram inspector</title>
<link rel="stylesheet" href="${base}/assets/inspector.css">
<script src="${base}/assets/chart.umd.js" defer></script>
<script src="${base}/assets/inspector.js" defer></script>
</head>
<body>
<header>
<a class="brand" href="${base}/">Engram inspector</a>
${page.scope ? html`<span class="scope" data-testid="scope">${scopeLabel(page.scope)}</span>` : page.scoped ? "" : html`<span class="scope">operator view: every scope</span>`}
<nav>
${page.scoped ? "" : html`<a href="${base}/">Scopes</a>`}
${page.scope ? html`<a href="${base}/memories${scopeQuery(page)}">Memories</a>` : ""}
<a href="${base}/outbox${scopeQuery(page)}">Outbox</a>
</nav>
</header>
<main>
${notice ? html`<p class="notice" role="status">${notice}</p>` : ""}
<h1>${title}</h1>
${body}
</main>
</body>
</html>`;
}

export function chart(spec: BarChart, testId: string): Html {
  return html`<figure class="chart"><canvas data-chart="${JSON.stringify(spec)}" data-testid="${testId}" role="img" aria-label="${spec.title}"></canvas></figure>`;
}

export function errorPage(page: PageContext, status: number, message: string): Html {
  const title =
    status === 404
      ? "Not found"
      : status === 403
        ? "Forbidden"
        : status === 401
          ? "Unauthorized"
          : status >= 500
            ? "Something failed"
            : "Bad request";
  return layout(page, title, html`<p class="error" data-testid="error">${message}</p>`);
}

export interface ScopeRow extends Scope {
  count: number;
}

export function scopesPage(
  page: PageContext,
  rows: readonly ScopeRow[],
  outbox: Record<PendingTurn["status"], number>,
  perDay: BarChart,
  sampled: boolean,
): Html {
  const total = rows.reduce((sum, row) => sum + row.count, 0);
  return layout(
    page,
    "Scopes",
    html`<p>${total} ${total === 1 ? "memory" : "memories"} in ${rows.length} ${rows.length === 1 ? "scope" : "scopes"}; outbox: ${outbox.pending} pending, ${outbox.processing} in progress, ${outbox.failed} failed.</p>
<table data-testid="scopes">
<thead><tr><th>user</th><th>agent</th><th>run</th><th class="number">memories</th></tr></thead>
<tbody>
${rows.map(
  (row) => html`<tr>
<td>${row.userId ?? ""}</td><td>${row.agentId ?? ""}</td><td>${row.runId ?? ""}</td>
<td class="number"><a href="${page.base}/memories${scopeQuery({ ...page, scope: row })}">${row.count}</a></td>
</tr>`,
)}
</tbody>
</table>
<h2>Changes per day, every scope</h2>
${chart(perDay, "per-day")}
${sampled ? html`<p class="hint">From part of the changes only: the latest ones, or a sample of the memories' histories.</p>` : ""}`,
  );
}

function metadataText(metadata: Record<string, unknown>): string {
  return Object.keys(metadata).length === 0 ? "" : JSON.stringify(metadata);
}

function sourceOf(item: MemoryItem): string {
  if (item.sources) return `${item.sources.length} adds`;
  const source = Object.hasOwn(item.metadata, "source") ? item.metadata.source : undefined;
  return source === undefined ? "" : typeof source === "string" ? source : JSON.stringify(source);
}

const explainKeys: (keyof ScoreExplanation)[] = [
  "vector",
  "keyword",
  "window",
  "neighbours",
  "session",
  "entity",
  "speaker",
  "date",
  "logit",
  "probability",
];

function part(value: ScoreExplanation[keyof ScoreExplanation] | undefined): string {
  return typeof value === "number" ? value.toFixed(3) : (value ?? "");
}

export interface SearchView {
  query: string;
  results: MemoryItem[];
  block: string | undefined;
  tokens: number;
  scores: BarChart;
}

export interface MemoriesView {
  items: MemoryItem[];
  total: number;
  search?: SearchView;
  perDay: BarChart;
  lengths: BarChart;
  sampled: boolean;
}

function searchSection(page: PageContext, search: SearchView | undefined): Html {
  const form = html`<form class="search" method="get" action="${page.base}/memories" role="search">
${page.scoped ? "" : hiddenScope(page.scope)}
<input type="search" name="q" value="${search?.query ?? ""}" placeholder="Search this scope as the model's memory would" aria-label="query" data-testid="query" required>
<button type="submit">Search</button>
</form>`;
  if (!search) return form;
  return html`${form}
<section data-testid="search-results">
<h2>${search.results.length} ${search.results.length === 1 ? "result" : "results"} for “${search.query}”</h2>
${
  search.results.length === 0
    ? html`<p>Nothing passed the search's cut-off: the model would get no memories for this message.</p>`
    : html`<table class="scores">
<thead><tr><th>memory</th><th class="number">score</th>${explainKeys.map((key) => html`<th class="number">${key}</th>`)}</tr></thead>
<tbody>
${search.results.map(
  (item) => html`<tr data-testid="result">
<td><a href="${page.base}/memory/${encodeURIComponent(item.id)}${scopeQuery(page)}">${item.memory}</a></td>
<td class="number">${part(item.score)}</td>
${explainKeys.map((key) => html`<td class="number">${part(item.explain?.[key])}</td>`)}
</tr>`,
)}
</tbody>
</table>`
}
${chart(search.scores, "score-distribution")}
<h2>The memory block the model gets: <span data-testid="block-tokens">${search.tokens}</span> tokens (o200k)</h2>
${search.block ? html`<pre class="block" data-testid="block">${search.block}</pre>` : html`<p data-testid="block">No block: nothing would be injected.</p>`}
</section>`;
}

function hiddenScope(scope: Scope | undefined): Html {
  if (!scope) return html``;
  return html`${scope.userId !== undefined ? html`<input type="hidden" name="user" value="${scope.userId}">` : ""}
${scope.agentId !== undefined ? html`<input type="hidden" name="agent" value="${scope.agentId}">` : ""}
${scope.runId !== undefined ? html`<input type="hidden" name="run" value="${scope.runId}">` : ""}`;
}

export function memoriesPage(page: PageContext, view: MemoriesView, notice?: string): Html {
  return layout(
    page,
    "Memories",
    html`${searchSection(page, view.search)}
<h2>${view.total} ${view.total === 1 ? "memory" : "memories"}${view.items.length < view.total ? html`, the first ${view.items.length} shown` : ""}</h2>
<table data-testid="memories">
<thead><tr><th>memory</th><th>metadata</th><th>source</th><th>created</th><th>updated</th></tr></thead>
<tbody>
${view.items.map(
  (item) => html`<tr data-testid="memory" data-id="${item.id}">
<td><a href="${page.base}/memory/${encodeURIComponent(item.id)}${scopeQuery(page)}">${item.memory}</a></td>
<td><code>${metadataText(item.metadata)}</code></td>
<td>${sourceOf(item)}</td>
<td>${when(item.createdAt)}</td>
<td>${when(item.updatedAt)}</td>
</tr>`,
)}
</tbody>
</table>
<div class="charts">
<div><h2>Changes per day</h2>${chart(view.perDay, "per-day")}${view.sampled ? html`<p class="hint">From part of the changes only: the latest ones, or a sample of the memories' histories.</p>` : ""}</div>
<div><h2>Length distribution</h2>${chart(view.lengths, "lengths")}</div>
</div>`,
    notice === undefined ? {} : { notice },
  );
}

function csrfField(page: PageContext): Html {
  return html`<input type="hidden" name="_csrf" value="${page.csrf}">`;
}

export function memoryPage(page: PageContext, id: string, item: MemoryItem | null, history: HistoryRecord[], notice?: string): Html {
  const action = (verb: string) => `${page.base}/memory/${encodeURIComponent(id)}/${verb}${scopeQuery(page)}`;
  const timeline = html`<h2>History</h2>
<ol class="timeline" data-testid="history">
${history.map(
  (entry) => html`<li class="event-${entry.event.toLowerCase()}" data-testid="history-entry">
<span class="event">${entry.event}</span> ${when(entry.createdAt)}
${entry.previousValue !== null ? html`<div class="previous">before: <q>${entry.previousValue}</q></div>` : ""}
${entry.newValue !== null ? html`<div class="new">after: <q>${entry.newValue}</q></div>` : ""}
${entry.previousValue === null && entry.newValue === null && entry.event !== "ADD" ? html`<div class="erased">text erased</div>` : ""}
</li>`,
)}
</ol>`;
  const purge = html`<a class="button danger" href="${action("purge")}" data-testid="purge">Purge…</a>`;
  return layout(
    page,
    item ? "Memory" : "Deleted memory",
    item
      ? html`<p class="memory-text" data-testid="memory-text">${item.memory}</p>
<dl><dt>id</dt><dd><code>${item.id}</code></dd>
<dt>metadata</dt><dd><code>${metadataText(item.metadata) || "{}"}</code></dd>
<dt>created</dt><dd>${when(item.createdAt)}</dd><dt>updated</dt><dd>${when(item.updatedAt)}</dd></dl>
${timeline}
<h2>Change it</h2>
<form method="post" action="${action("edit")}" class="edit" data-testid="edit-form">
${csrfField(page)}
<label>Text <textarea name="text" rows="3" required>${item.memory}</textarea></label>
<label>Metadata (JSON object) <input name="metadata" value="${metadataText(item.metadata) || "{}"}"></label>
<button type="submit">Save</button>
</form>
<form method="post" action="${action("delete")}" class="inline">
${csrfField(page)}
<button type="submit" data-testid="delete">Delete</button>
</form>
${purge}`
      : html`<p>This memory is deleted; its history stays readable until it is purged.</p>
${timeline}
${purge}`,
    notice === undefined ? {} : { notice },
  );
}

export function purgePage(page: PageContext, id: string, text: string | null): Html {
  return layout(
    page,
    "Purge this memory?",
    html`${text !== null ? html`<p class="memory-text">${text}</p>` : ""}
<p>Purging erases the text for good: from the memory, its history, pending turns and the database file. It cannot be undone.</p>
<form method="post" action="${page.base}/memory/${encodeURIComponent(id)}/purge${scopeQuery(page)}">
<input type="hidden" name="_csrf" value="${page.csrf}">
<input type="hidden" name="confirm" value="purge">
<button type="submit" class="danger" data-testid="confirm-purge">Purge for good</button>
<a href="${page.base}/memory/${encodeURIComponent(id)}${scopeQuery(page)}">Cancel</a>
</form>`,
  );
}

export function outboxPage(page: PageContext, turns: PendingTurn[], notice?: string): Html {
  const failed = turns.filter((turn) => turn.status === "failed").length;
  return layout(
    page,
    "Outbox",
    html`<p>Turns queued by <code>enqueue</code> that are not written yet: waiting, in progress, or failed every attempt.</p>
${
  turns.length === 0
    ? html`<p data-testid="outbox-empty">Nothing pending.</p>`
    : html`<table data-testid="outbox">
<thead><tr><th>status</th><th>tries</th><th>scope</th><th>messages</th><th>queued</th><th>next attempt</th><th>last error</th></tr></thead>
<tbody>
${turns.map(
  (turn) => html`<tr data-testid="turn" data-status="${turn.status}">
<td><span class="status status-${turn.status}">${turn.status}</span></td>
<td class="number">${turn.attempts}</td>
<td>${scopeLabel(turn)}</td>
<td>${turn.messages.map((message) => html`<div><b>${message.role}:</b> ${message.content}</div>`)}</td>
<td>${when(turn.createdAt)}</td>
<td>${when(turn.nextAttemptAt)}</td>
<td class="error">${turn.lastError ?? ""}</td>
</tr>`,
)}
</tbody>
</table>`
}
${
  failed > 0
    ? html`<form method="post" action="${page.base}/outbox/retry${scopeQuery(page)}">
<input type="hidden" name="_csrf" value="${page.csrf}">
<button type="submit" data-testid="retry">Retry ${failed} failed ${failed === 1 ? "turn" : "turns"}</button>
</form>`
    : ""
}`,
    notice === undefined ? {} : { notice },
  );
}
