import { APIPromise, type OpenAI } from "openai";
import type { Stream } from "openai/core/streaming";
import { ConfigError, MissingScopeError, type Scope, validateScope } from "../../src/index.js";
import { ownValue } from "../../src/internal/plain-data.js";
import { parseConfig } from "../../src/validation.js";
import { adapterOptionsSchema, type MemoryAdapterOptions, resolveAdapterOptions } from "../shared/options.js";
import { TurnMemory } from "../shared/turn.js";
import { chatApi } from "./chat-api.js";
import type { ModelApi, ModelRequest, Outcome } from "./model-api.js";
import { responsesApi } from "./responses-api.js";

/**
 * An OpenAI client with memory: the client itself (same class, options and resources), plus
 * `withScope`. Its `withOptions` keeps the memory and the scope.
 */
export type MemoryClient<Client extends OpenAI = OpenAI> = Client & {
  /**
   * A view of the client for one scope: its `chat.completions.create` and `responses.create`
   * (and the helpers built on them: `stream`, `parse`, `runTools`) search this scope's memories
   * before the request and write the turn after the reply. Cheap: make one per request.
   *
   * @throws MissingScopeError when no id is given; InvalidScopeError for an unknown key (`user_id`) or a bad id.
   * @example
   * await client.withScope({ userId: "alice", runId: "chat-1" }).chat.completions.create({ model, messages });
   */
  withScope(scope: Scope): MemoryClient<Client>;
};

const missingScope = (call: string) =>
  `${call} needs a scope: call it on a scoped view of the client, e.g. client.withScope({ userId: "alice" }).${call.slice(0, -2)}(...) ` +
  "(or agentId, runId). Engram has no global namespace.";
const missingInWithScope =
  'withScope() needs a scope: pass at least one non-empty id, e.g. client.withScope({ userId: "alice" }) (or agentId, runId). Engram has no global namespace.';

const memoryClients = new WeakSet<object>();

/** What an APIPromise keeps of its request: the SDK's own fields, read to build a promise that starts after the search. */
interface PromiseInternals {
  responsePromise: Promise<unknown>;
  parseResponse: (client: OpenAI, props: unknown) => Promise<unknown>;
}

function internalsOf(promise: unknown): PromiseInternals {
  const internals = promise as Partial<PromiseInternals> | undefined;
  if (!(internals?.responsePromise instanceof Promise) || typeof internals.parseResponse !== "function") {
    throw new ConfigError({
      message:
        "engram/openai does not support this version of the openai package: install openai@7 (the version range in engram's peer dependencies).",
    });
  }
  return internals as PromiseInternals;
}

type Create = (body: object, options?: object) => unknown;

function isClient(value: unknown): value is OpenAI {
  const client = value as { withOptions?: unknown; chat?: { completions?: { create?: unknown } }; responses?: { create?: unknown } } | null;
  return (
    client != null &&
    typeof client.withOptions === "function" &&
    typeof client.chat?.completions?.create === "function" &&
    typeof client.responses?.create === "function"
  );
}

function define(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, configurable: true, enumerable: false });
}

/**
 * Gives an `openai` client long-term memory: the one line. Returns a new client of the same class
 * and options (the given one is not changed). Requests go through a scoped view of it,
 * `client.withScope({ userId })`; a request on the client itself, without a scope, is refused
 * with MissingScopeError before anything is sent.
 *
 * Before each `chat.completions.create` / `responses.create` (streamed or not) it searches the
 * scope's memories with the latest user message (once per user turn: the requests of a tool loop
 * share the search) and adds ONE labelled block: a system message after the app's own system /
 * developer messages (chat), or at the end of `instructions` (responses). After the final answer
 * (not a reply that asks for tool calls) it queues the user message and the answer for the
 * memory's durable write-behind; the reply never waits for it. A stream is written once it has
 * been read to its end; an aborted or failed request writes nothing.
 *
 * Everything else is the client's own: other resources, request options, retries, `.withResponse()`,
 * the streaming helpers. `.asResponse()` hands over the raw response unread: that turn is not written.
 *
 * @example
 * const client = withMemory(new OpenAI(), { memory });
 * const completion = await client.withScope({ userId: "alice" }).chat.completions.create({ model: "gpt-5-mini", messages });
 */
export function withMemory<Client extends OpenAI>(client: Client, options: MemoryAdapterOptions): MemoryClient<Client> {
  if (!isClient(client))
    throw new ConfigError({ message: "withMemory() takes a client of the openai package: withMemory(new OpenAI(), { memory })." });
  if (memoryClients.has(client))
    throw new ConfigError({ message: "withMemory(): this client has memory already; wrap the original client once." });
  const turns = new TurnMemory(resolveAdapterOptions(parseConfig(adapterOptionsSchema, options, "withMemory")));
  const responses = responsesApi();
  const sdkWithOptions = client.withOptions as (this: Client, options: object) => Client;

  async function prepare(api: ModelApi, body: object, scope: Scope, signal: AbortSignal | undefined) {
    const request = api.read(body, scope);
    if (request.injected) return { request, body };
    const { block } = await turns.recall({ scope, query: request.turn.user, key: request.turn.key, signal });
    return { request, body: block ? api.inject(body, block) : body };
  }

  function settle(api: ModelApi, request: ModelRequest, outcome: Outcome): void {
    api.settled?.(request, outcome);
    if (outcome.kind === "final") turns.remember({ ...request.turn, assistant: outcome.text });
  }

  /** The stream, read through: every event goes on at once, and the turn is settled once the stream has ended by itself. */
  function watched(api: ModelApi, request: ModelRequest, stream: Stream<unknown>, view: Client): Stream<unknown> {
    const watcher = api.watcher();
    const StreamClass = stream.constructor as typeof Stream;
    return new StreamClass(
      async function* () {
        for await (const event of stream) {
          watcher.see(event);
          yield event;
        }
        // An aborted stream ends quietly: it has no answer to write.
        if (!stream.controller.signal.aborted) settle(api, request, watcher.outcome());
      },
      stream.controller,
      view,
    );
  }

  function memoryCreate(api: ModelApi, view: Client, resource: object, original: Create, scope: Scope | undefined): Create {
    return (body, requestOptions) => {
      let sent: PromiseInternals | undefined;
      let request: ModelRequest | undefined;
      const responsePromise = (async () => {
        if (scope === undefined) throw new MissingScopeError({ call: api.call, message: missingScope(api.call) });
        let prepared = { body, request: undefined as ModelRequest | undefined };
        // Not a body the memory can read: the client's own validation answers it.
        if (body != null && typeof body === "object") {
          const signal = requestOptions == null ? undefined : ownValue(requestOptions, "signal", api.call, "options.signal");
          prepared = await prepare(api, body, scope, signal instanceof AbortSignal ? signal : undefined);
        }
        sent = internalsOf(original.call(resource, prepared.body, requestOptions));
        request = prepared.request;
        return sent.responsePromise;
      })();
      return new APIPromise(view, responsePromise as never, async (client, props) => {
        const reply = await (sent as PromiseInternals).parseResponse(client, props);
        if (!request) return reply as never;
        if (request.stream) return watched(api, request, reply as Stream<unknown>, view) as never;
        settle(api, request, api.outcome(reply));
        return reply as never;
      });
    };
  }

  function view(from: Client, scope: Scope | undefined, clientOptions: object = {}): MemoryClient<Client> {
    const next = sdkWithOptions.call(from, clientOptions) as MemoryClient<Client>;
    memoryClients.add(next);
    const completions = next.chat.completions;
    define(completions, "create", memoryCreate(chatApi, next, completions, completions.create as Create, scope));
    define(next.responses, "create", memoryCreate(responses, next, next.responses, next.responses.create as Create, scope));
    define(next, "withOptions", (options: object) => view(next, scope, options));
    define(next, "withScope", (given: Scope) => view(next, scopeOf(given)));
    return next;
  }

  return view(client, undefined);
}

/** A scope given to `withScope`: exactly the scope keys, each read from an own property. */
function scopeOf(given: unknown): Scope {
  try {
    return validateScope("withScope", given);
  } catch (error) {
    if (MissingScopeError.isInstance(error)) throw new MissingScopeError({ call: "withScope", message: missingInWithScope });
    throw error;
  }
}
