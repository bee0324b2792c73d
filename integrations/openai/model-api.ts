import type { Scope } from "../../src/index.js";

/** A user turn: its scope, the user's message (the search query) and the key its steps share. */
export interface Turn {
  scope: Scope;
  key: string;
  user: string | undefined;
}

/** What a reply says about its turn. */
export type Outcome =
  /** The final answer: the turn is over and written. */
  | { kind: "final"; text: string }
  /** Tool calls for the app to run: the turn goes on in a next request (`responseId` names this reply). */
  | { kind: "tools"; responseId: string | undefined }
  /** Nothing to remember: a failed, cancelled or unfinished reply. */
  | { kind: "none" };

/** Follows a streamed reply event by event. */
export interface ReplyWatcher {
  see(event: unknown): void;
  /** What the events seen so far came to; called once the stream has ended by itself. */
  outcome(): Outcome;
}

/** One request, as read before it is sent. */
export interface ModelRequest {
  turn: Turn;
  /** The request carries a block this process rendered already (a client wrapped twice): no second search. */
  injected: boolean;
  stream: boolean;
}

/** How the adapter reads and changes the requests and replies of one endpoint. */
export interface ModelApi {
  /** The method, as named in errors: "chat.completions.create()". */
  readonly call: string;
  read(body: object, scope: Scope): ModelRequest;
  /** A copy of the body with the memory block added; the caller's body is never changed. */
  inject(body: object, block: string): object;
  outcome(reply: unknown): Outcome;
  watcher(): ReplyWatcher;
  /** Called with every outcome of a request, before a final one is written. */
  settled?(request: ModelRequest, outcome: Outcome): void;
}
