import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LanguageModelV4CallOptions, LanguageModelV4GenerateResult, LanguageModelV4StreamPart } from "@ai-sdk/provider";
import { Agent as MastraAgent } from "@mastra/core/agent";
import { RequestContext } from "@mastra/core/request-context";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { Agent as AgentsAgent, run, setTracingDisabled } from "@openai/agents";
import { assistantMessage, modelResponder, ScriptedModel } from "@openai/agents/testing";
import { generateText, streamText } from "ai";
import { convertArrayToReadableStream, MockLanguageModelV4 } from "ai/test";
import { afterAll, beforeAll, expect, test } from "vitest";
import { withMemory as withAiSdkMemory } from "../../integrations/ai-sdk/index.js";
import { withMemory as withMastraMemory } from "../../integrations/mastra/index.js";
import { createMcpServer } from "../../integrations/mcp/index.js";
import { withMemory as withAgentsMemory } from "../../integrations/openai-agents/index.js";
import { type EngramError, Memory, type MemoryItem, MemoryNotFoundError, type Scope } from "../../src/index.js";
import { assertBuilt, runCli } from "../cli/run-cli.js";
import { faultSeed, recordFaults, scaled, scaledTimeout, seededChoices } from "./counts.js";

// Users' facts are written and read through every public surface at once, on one data dir: the
// API, the AI SDK middleware, Mastra, OpenAI Agents JS, the MCP server (scope fixed by the
// operator, and taken from each call's arguments) and the CLI. Every user's texts carry a marker
// word of their own, and every user asks about the same topics: whatever a surface returns, or
// puts in the prompt the model receives, must carry no other user's marker. By-id calls aimed at
// another user's memory must find nothing and change nothing.

const seed = faultSeed();
const random = seededChoices(seed);
const dataDir = mkdtempSync(join(tmpdir(), "engram-surfaces-"));
const users = ["ana", "ben", "cleo", "dev"] as const;
type User = (typeof users)[number];
const marker = Object.fromEntries(users.map((user) => [user, `zq${user}${seed % 9973}x`])) as Record<User, string>;
const topics = ["locker code", "train seat", "wifi password", "bike lock", "desk number"];

type Surface = "api" | "ai-sdk" | "mastra" | "openai-agents" | "mcp fixed scope" | "mcp scope from arguments" | "cli";

const memories: Memory[] = [];
const clients: Client[] = [];
const errors: { error: EngramError; operation: string }[] = [];
let app: Memory;
let server: Memory;
const fixedClients = new Map<User, Client>();
let argumentsClient: Client;

beforeAll(async () => {
  assertBuilt();
  setTracingDisabled(true);
  const onError = (error: EngramError, context: { operation: string }) => errors.push({ error, operation: context.operation });
  // The app (API and adapters, with the write-behind worker) and the MCP server are two Memory
  // instances on the data dir; the CLI runs as its own processes on it.
  app = new Memory({ dataDir, writeBehind: { pollIntervalMs: 20 }, onError });
  server = new Memory({ dataDir, writeBehind: { enabled: false }, onError });
  memories.push(app, server);
  // The app has been running before the operator's first CLI call: the database exists on disk
  // (the CLI refuses a data dir without one, which would be a typo there).
  await app.getAll({ userId: users[0] });
  for (const user of users) fixedClients.set(user, await connect({ memory: server, scope: { userId: user } }));
  argumentsClient = await connect({ memory: server, scopeFromArguments: true });
});

afterAll(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(memories.splice(0).map((memory) => memory.close()));
  rmSync(dataDir, { recursive: true, force: true });
});

async function connect(options: Parameters<typeof createMcpServer>[0]): Promise<Client> {
  const mcp = createMcpServer(options);
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "fault-suite", version: "1.0.0" });
  await Promise.all([mcp.connect(serverTransport), client.connect(clientTransport)]);
  clients.push(client);
  return client;
}

/** Other users' markers found in `text`, as seen by `user` through `where`. */
function leaks(user: User, text: string): string[] {
  return users.filter((other) => other !== user && text.includes(marker[other])).map((other) => `${other}'s marker ${marker[other]}`);
}

// ── the model of what each user owns ──────────────────────────────────────────────────────────

/** Memories whose id is known, with their owner and text. */
const owned = new Map<string, { user: User; text: string }>();
const idsOf = (user: User) => [...owned].filter(([, memory]) => memory.user === user).map(([id]) => id);
/** Another user's memory, to aim by-id calls at, if there is one. */
function victimOf(user: User): { id: string; owner: User; text: string } | undefined {
  const others = [...owned].filter(([, memory]) => memory.user !== user);
  if (others.length === 0) return undefined;
  const [id, memory] = random.pick(others);
  return { id, owner: memory.user, text: memory.text };
}

let counter = 0;
const fact = (user: User) => `${marker[user]} note ${counter++}: my ${random.pick(topics)} is ${random.int(10_000)}`;
const question = (user: User) => `${marker[user]} turn ${counter++}: what is my ${random.pick(topics)}?`;

/** A search query: about the user's own topics, a bare topic, or a probe for another user's marker. */
function query(user: User): string {
  const kind = random.int(3);
  if (kind === 0) return `${marker[user]} ${random.pick(topics)}`;
  if (kind === 1) return `what is my ${random.pick(topics)}`;
  return `${marker[random.pick(users.filter((other) => other !== user))]} ${random.pick(topics)}`;
}

// ── checks ─────────────────────────────────────────────────────────────────────────────────────

const stats = { recalled: 0, probes: 0 };

/** Items a surface returned to `user`: each carries the user's marker and no other. */
function checkItems(user: User, items: { id?: string; memory: string }[], where: string): void {
  for (const item of items) {
    expect(leaks(user, item.memory), `${where}: returned ${JSON.stringify(item.memory)} to ${user}`).toEqual([]);
    expect(item.memory, where).toContain(marker[user]);
    if (item.id && !owned.has(item.id)) owned.set(item.id, { user, text: item.memory });
    if (item.id) expect(owned.get(item.id)?.user, `${where}: ${item.id}`).toBe(user);
  }
  if (items.length > 0) stats.recalled++;
}

/** What the model received (its whole prompt) carries no other user's marker. */
function checkPrompt(user: User, prompt: string, where: string): void {
  expect(leaks(user, prompt), `${where}: the prompt the model received for ${user}`).toEqual([]);
  if (prompt.includes("engram-memories")) stats.recalled++;
}

/** After a by-id call aimed at another user's memory: the memory is still there, unchanged. */
async function checkUntouched(victim: { id: string; owner: User; text: string }, where: string): Promise<void> {
  stats.probes++;
  const item = await app.get(victim.id, { userId: victim.owner });
  // Its owner's later messages may have continued it (one speaker's run of messages); nothing else changes it.
  expect(item?.memory.startsWith(victim.text), `${where}: ${victim.owner}'s memory ${victim.id} after the call: ${item?.memory}`).toBe(
    true,
  );
  expect(leaks(victim.owner, item?.memory ?? ""), `${where}: ${victim.owner}'s memory ${victim.id} after the call`).toEqual([]);
}

/** Waits until the write-behind stored a turn the user sent through an adapter, and checks where it went. */
async function checkRemembered(user: User, message: string, scope: Scope, where: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { results } = await app.getAll({ ...scope, limit: 1000 });
    // A user's consecutive messages form one memory: the turn is the memory, or ends it.
    if (results.some((item) => item.memory === message || item.memory.endsWith(` ${message}`))) {
      checkItems(user, results, `${where} (stored turn)`);
      return;
    }
    if (Date.now() > deadline) throw new Error(`${where}: the turn ${JSON.stringify(message)} of ${user} was not stored within 20 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// ── the surfaces ───────────────────────────────────────────────────────────────────────────────

const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 5, text: 5, reasoning: undefined },
};

/** The mock models answer from the user's own message, so a reply never carries anything else. */
function replyTo(prompt: LanguageModelV4CallOptions["prompt"]): string {
  const last = [...prompt].reverse().find((message) => message.role === "user");
  const text = JSON.stringify(last?.content ?? "");
  const [, who = "?", turn = "?"] = /(zq\w+x) turn (\d+)/.exec(text) ?? [];
  return `${who} reply to turn ${turn}`;
}
const generated = (text: string): LanguageModelV4GenerateResult => ({
  content: [{ type: "text", text }],
  finishReason: { unified: "stop", raw: "stop" },
  usage,
  warnings: [],
});
const streamed = (text: string): LanguageModelV4StreamPart[] => [
  { type: "stream-start", warnings: [] },
  { type: "text-start", id: "t" },
  { type: "text-delta", id: "t", delta: text },
  { type: "text-end", id: "t" },
  { type: "finish", finishReason: { unified: "stop", raw: "stop" }, usage },
];
const mockModel = () =>
  new MockLanguageModelV4({
    doGenerate: async (options) => generated(replyTo(options.prompt)),
    doStream: async (options) => ({ stream: convertArrayToReadableStream(streamed(replyTo(options.prompt))) }),
  });
const adapterOptions = () => ({
  memory: app,
  failOpen: false,
  // This suite is about scopes, not deadlines: a loaded CI machine must not turn a slow search into a failure.
  recallTimeoutMs: 60_000,
  onError: (error: EngramError) => errors.push({ error, operation: "adapter" }),
});

const notFound = (error: unknown) => MemoryNotFoundError.isInstance(error);
const scopeFor = (user: User): Scope => (random.chance(0.5) ? { userId: user } : { userId: user, runId: `run-${random.int(3)}` });

async function viaApi(user: User, where: string): Promise<Scope> {
  const scope = scopeFor(user);
  const victim = victimOf(user);
  const action = random.int(victim ? 7 : 3);
  if (action === 0) {
    const { results } = await app.add(fact(user), scope);
    for (const result of results) owned.set(result.id, { user, text: result.memory });
  } else if (action === 1) {
    checkItems(user, (await app.search(query(user), { ...scope, limit: 20, threshold: 0 })).results, where);
  } else if (action === 2) {
    checkItems(user, (await app.getAll({ ...scope, limit: 1000 })).results, where);
  } else if (victim) {
    // By id, another user's memory is as unknown as any other id.
    const attempt = [
      () => app.get(victim.id, { userId: user }).then((item) => expect(item, where).toBeNull()),
      () => expect(app.update(victim.id, `${marker[user]} overwrites it`, { userId: user })).rejects.toSatisfy(notFound),
      () => expect(app.delete(victim.id, { userId: user, purge: random.chance(0.5) })).rejects.toSatisfy(notFound),
      () => expect(app.history(victim.id, { userId: user })).rejects.toSatisfy(notFound),
    ][action - 3] as () => Promise<void>;
    await attempt();
    await checkUntouched(victim, where);
  }
  return scope;
}

async function viaAiSdk(user: User, where: string): Promise<Scope> {
  const scope = scopeFor(user);
  const model = mockModel();
  const message = question(user);
  const options = { model: withAiSdkMemory(model, adapterOptions()), prompt: message, providerOptions: { memory: { ...scope } } };
  if (random.chance(0.5)) await generateText(options);
  else await streamText(options).consumeStream();
  const calls = [...model.doGenerateCalls, ...model.doStreamCalls];
  expect(calls, where).toHaveLength(1);
  checkPrompt(user, JSON.stringify(calls[0]?.prompt), where);
  await checkRemembered(user, message, scope, where);
  return scope;
}

async function viaMastra(user: User, where: string): Promise<Scope> {
  const scope = scopeFor(user);
  const model = mockModel();
  const agent = withMastraMemory(
    new MastraAgent({
      id: "assistant",
      name: "assistant",
      instructions: "You are a helpful assistant.",
      // Mastra 1.x types AI SDK 7 models with its own copy of @ai-sdk/provider; at run time it takes them as they are.
      model: model as unknown as ConstructorParameters<typeof MastraAgent>[0]["model"],
    }),
    adapterOptions(),
  );
  const requestContext = new RequestContext();
  for (const [key, value] of Object.entries(scope)) requestContext.set(key, value);
  const message = question(user);
  await agent.generate(message, { requestContext });
  expect(model.doGenerateCalls, where).toHaveLength(1);
  checkPrompt(user, JSON.stringify(model.doGenerateCalls[0]?.prompt), where);
  await checkRemembered(user, message, scope, where);
  return scope;
}

async function viaOpenAiAgents(user: User, where: string): Promise<Scope> {
  const scope = scopeFor(user);
  const model = new ScriptedModel([
    modelResponder(({ request }) => {
      const [, who = "?", turn = "?"] = /(zq\w+x) turn (\d+)/.exec(JSON.stringify(request.input)) ?? [];
      return [assistantMessage(`${who} reply to turn ${turn}`)];
    }),
  ]);
  const agent = withAgentsMemory(
    new AgentsAgent({ name: "assistant", instructions: "You are a helpful assistant.", model }),
    adapterOptions(),
  );
  const message = question(user);
  await run(agent, message, { context: { ...scope } });
  expect(model.calls, where).toHaveLength(1);
  const request = model.calls[0]?.request;
  checkPrompt(user, `${request?.systemInstructions ?? ""}\n${JSON.stringify(request?.input)}`, where);
  await checkRemembered(user, message, scope, where);
  return scope;
}

async function tool<T>(
  client: Client,
  name: string,
  args: Record<string, unknown>,
): Promise<{ ok: true; value: T } | { ok: false; text: string }> {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = (result.content[0] as { text: string }).text;
  return result.isError ? { ok: false, text } : { ok: true, value: JSON.parse(text) as T };
}

async function viaMcp(user: User, where: string, fromArguments: boolean): Promise<Scope> {
  const client = fromArguments ? argumentsClient : (fixedClients.get(user) as Client);
  const scope: Scope = { userId: user };
  const withScope = (args: Record<string, unknown>) => (fromArguments ? { ...args, userId: user } : args);
  const victim = victimOf(user);
  const action = random.int(victim ? 6 : 3);
  if (action === 0) {
    const added = await tool<{ results: { id: string; memory: string }[] }>(client, "add_memory", withScope({ text: fact(user) }));
    if (!added.ok) throw new Error(`${where}: add_memory failed: ${added.text}`);
    for (const result of added.value.results) owned.set(result.id, { user, text: result.memory });
  } else if (action === 1 || action === 2) {
    const [name, args] = action === 1 ? ["search_memories", { query: query(user), limit: 20 }] : ["list_memories", { limit: 1000 }];
    const found = await tool<{ results: MemoryItem[] }>(client, name, withScope(args));
    if (!found.ok) throw new Error(`${where}: ${name} failed: ${found.text}`);
    checkItems(user, found.value.results, where);
  } else if (victim) {
    const [name, args] = [
      ["get_memory", { memoryId: victim.id }],
      ["update_memory", { memoryId: victim.id, text: `${marker[user]} overwrites it` }],
      ["delete_memory", { memoryId: victim.id }],
    ][action - 3] as [string, Record<string, unknown>];
    const result = await tool(client, name, withScope(args));
    expect(result.ok, `${where}: ${name} of ${victim.owner}'s memory`).toBe(false);
    expect((result as { text: string }).text, where).toMatch(/No memory/);
    await checkUntouched(victim, where);
  }
  return scope;
}

async function viaCli(user: User, where: string): Promise<Scope> {
  const victim = victimOf(user);
  const action = random.int(victim ? 5 : 3);
  const scopeArgs = ["--user", user, "--data-dir", dataDir, "--json"];
  if (action === 0) {
    const { code, stdout, stderr } = await runCli(["add", fact(user), ...scopeArgs]);
    expect(code, `${where}: ${stderr}`).toBe(0);
    for (const result of JSON.parse(stdout).results as { id: string; memory: string }[])
      owned.set(result.id, { user, text: result.memory });
  } else if (action === 1 || action === 2) {
    const args = action === 1 ? ["search", query(user), "--limit", "20"] : ["list", "--limit", "1000"];
    const { code, stdout, stderr } = await runCli([...args, ...scopeArgs]);
    expect(code, `${where}: ${stderr}`).toBe(0);
    checkItems(user, JSON.parse(stdout).results, where);
  } else if (victim) {
    const args = action === 3 ? ["get", victim.id] : ["update", victim.id, `${marker[user]} overwrites it`];
    const { code, stdout, stderr } = await runCli([...args, ...scopeArgs]);
    expect(code, `${where}: ${args[0]} of ${victim.owner}'s memory: ${stdout}`).toBe(2);
    expect(stderr, where).toMatch(/MEMORY_NOT_FOUND/);
    expect(leaks(user, stdout + stderr), where).toEqual([]);
    await checkUntouched(victim, where);
  }
  return { userId: user };
}

const surfaces: { name: Surface; weight: number; run: (user: User, where: string) => Promise<Scope> }[] = [
  { name: "api", weight: 3, run: viaApi },
  { name: "ai-sdk", weight: 2, run: viaAiSdk },
  { name: "mastra", weight: 2, run: viaMastra },
  { name: "openai-agents", weight: 2, run: viaOpenAiAgents },
  { name: "mcp fixed scope", weight: 2, run: (user, where) => viaMcp(user, where, false) },
  { name: "mcp scope from arguments", weight: 2, run: (user, where) => viaMcp(user, where, true) },
];

const OPERATIONS = scaled(120);
const CLI_CALLS = scaled(8);

test(`${OPERATIONS + CLI_CALLS} random operations of ${users.length} users through every public surface on one data dir: no surface returns or injects another user's fact`, {
  timeout: scaledTimeout(600_000),
}, async () => {
  const done = new Map<Surface, { operations: number; scopes: Set<string> }>();
  const plan: Surface[] = [];
  const weighted = surfaces.flatMap((surface) => Array<Surface>(surface.weight).fill(surface.name));
  for (let i = 0; i < OPERATIONS; i++) plan.push(random.pick(weighted));
  // CLI calls (a process each) spread over the run.
  for (let i = 0; i < CLI_CALLS; i++) plan.splice(random.int(plan.length + 1), 0, "cli");
  for (const [step, name] of plan.entries()) {
    const user = random.pick(users);
    const where = `step ${step} (${name}, ${user}, seed ${seed}: replay with ENGRAM_FAULT_SEED=${seed})`;
    const surface = name === "cli" ? viaCli : (surfaces.find((candidate) => candidate.name === name)?.run as typeof viaCli);
    const scope = await surface(user, where);
    const entry = done.get(name) ?? { operations: 0, scopes: new Set<string>() };
    entry.operations++;
    entry.scopes.add(JSON.stringify(scope));
    done.set(name, entry);
  }

  // Every user's memories, read back whole: each carries its owner's marker only, and every
  // memory whose id is known is still there with its owner's text.
  for (const user of users) {
    const { results } = await app.getAll({ userId: user, limit: 1000 });
    checkItems(user, results, `final read of ${user}`);
    const present = new Map(results.map((item) => [item.id, item.memory]));
    // A memory its owner's later messages continued still begins with the text first seen.
    for (const id of idsOf(user))
      expect(present.get(id)?.startsWith(owned.get(id)?.text as string), `${user}'s memory ${id}: ${present.get(id)}`).toBe(true);
  }
  expect(errors.map(({ error, operation }) => `${operation}: ${error.message}`)).toEqual([]);
  // The run exercised what it claims: recall found the users' own facts, and by-id probes ran.
  expect(stats.recalled).toBeGreaterThan(OPERATIONS / 10);
  expect(stats.probes).toBeGreaterThan(0);
  for (const [name, { operations, scopes }] of done) recordFaults(`isolation via ${name}`, { operations, scopes });
});
