import { createHash } from "node:crypto";
import type { Scope } from "../scope.js";

/** A span attribute value, as OpenTelemetry takes it. */
export type AttributeValue = string | number | boolean | string[] | number[] | boolean[];
export type Attributes = Record<string, AttributeValue | undefined>;

/** The part of an OpenTelemetry `Tracer` Engram uses (`trace.getTracer(...)` from `@opentelemetry/api` is one). */
export interface TracerLike {
  startSpan(name: string, options?: { attributes?: Record<string, AttributeValue> }, context?: unknown): unknown;
}

/** How Engram reports OpenTelemetry spans (`new Memory({ telemetry })`). */
export interface TelemetryOptions {
  /** Set false to create no spans even when `@opentelemetry/api` is installed. @default true */
  enabled?: boolean;
  /** The tracer spans are made with. @default trace.getTracer("engram") of `@opentelemetry/api` */
  tracer?: TracerLike;
  /**
   * Scope ids are personal data, so spans carry none by default. `"hash"` adds the SHA-256 of each id
   * (first 16 hex digits; an id that can be guessed can be found from it), `"include"` the ids as they are.
   * @default "omit"
   */
  scopeIds?: "omit" | "hash" | "include";
}

/** Records more attributes on the span in progress. */
export type RecordAttributes = (attributes: Attributes) => void;

/** Spans around Engram's work, or nothing at all when tracing is off. */
export interface Tracing {
  readonly enabled: boolean;
  /**
   * Runs `fn` inside a span named `name`, a child of the active span (the model call's, inside an
   * adapter); the span ends when `fn` settles and records its error. Without tracing, only runs `fn`.
   */
  span<T>(name: string, attributes: Attributes, fn: (record: RecordAttributes) => Promise<T>): Promise<T>;
  /** The scope's attributes under the `scopeIds` policy (none by default). */
  scope(scope: Scope): Attributes;
}

const ignore: RecordAttributes = () => {};

export const noTracing: Tracing = {
  enabled: false,
  span: (_name, _attributes, fn) => fn(ignore),
  scope: () => ({}),
};

type Api = typeof import("@opentelemetry/api");
type Span = import("@opentelemetry/api").Span;

const defined = (attributes: Attributes) => {
  const out: { [key: string]: AttributeValue } = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out[key] = value;
  return out;
};

const hashed = (id: string) => createHash("sha256").update(id).digest("hex").slice(0, 16);

const scopeNames = { userId: "user_id", agentId: "agent_id", runId: "run_id" } as const;

/**
 * Tracing through `@opentelemetry/api`, an optional peer: loaded here, once per Memory, and when it
 * is not installed (or `enabled` is false) nothing is wrapped and no span is made.
 */
export async function loadTracing({ enabled = true, tracer, scopeIds = "omit" }: TelemetryOptions = {}): Promise<Tracing> {
  if (!enabled) return noTracing;
  let api: Api;
  try {
    api = await import("@opentelemetry/api");
  } catch {
    return noTracing;
  }
  const otel = (tracer ?? api.trace.getTracer("engram")) as import("@opentelemetry/api").Tracer;
  return {
    enabled: true,
    span(name, attributes, fn) {
      const span: Span = otel.startSpan(name, {
        // The AI SDK's names for what an operation is, so both read alike in one trace.
        attributes: defined({ "operation.name": name, "ai.operationId": name, ...attributes }),
      });
      // No SDK registered (or sampled out): nothing is recorded, so no context is set either.
      if (!span.isRecording()) {
        span.end();
        return fn(ignore);
      }
      const record: RecordAttributes = (more) => span.setAttributes(defined(more));
      return api.context
        .with(api.trace.setSpan(api.context.active(), span), () => fn(record))
        .then(
          (value) => {
            span.end();
            return value;
          },
          (error: unknown) => {
            span.recordException(error instanceof Error ? error : String(error));
            span.setStatus({ code: api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
            span.end();
            throw error;
          },
        );
    },
    scope(scope) {
      if (scopeIds === "omit") return {};
      const attributes: Attributes = {};
      for (const key of ["userId", "agentId", "runId"] as const) {
        const id = scope[key];
        if (id === undefined) continue;
        if (scopeIds === "hash") attributes[`engram.scope.${scopeNames[key]}_hash`] = hashed(id);
        else attributes[`engram.scope.${scopeNames[key]}`] = id;
      }
      return attributes;
    },
  };
}

const countOf = (value: unknown): number | undefined => {
  if (Array.isArray(value)) return value.length;
  if (value !== null && typeof value === "object" && Array.isArray((value as { records?: unknown }).records)) {
    return ((value as { records: unknown[] }).records as unknown[]).length;
  }
  return undefined;
};

/**
 * The same store with a span around every call (`engram.store.<method>`): how long it took, how
 * many records it wrote, and how many it returned. Wrapped once, when a Memory is built, and only
 * when tracing is on.
 */
export function traceStore<T extends object>(store: T, tracing: Tracing, kind: "vector" | "history"): T {
  if (!tracing.enabled) return store;
  const methods = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(object, property) {
      const value = Reflect.get(object, property, object);
      if (typeof property === "symbol" || typeof value !== "function" || property === "close") {
        return typeof value === "function" ? value.bind(object) : value;
      }
      let method = methods.get(property);
      if (!method) {
        method = (...args: unknown[]) => {
          const batch = args[0] as { upsert?: unknown[]; delete?: unknown[] } | undefined;
          const writes =
            property === "write" && batch
              ? { "engram.store.upserts": batch.upsert?.length ?? 0, "engram.store.deletes": batch.delete?.length ?? 0 }
              : {};
          return tracing.span(`engram.store.${property}`, { "engram.store.kind": kind, ...writes }, async (record) => {
            const result = await (value as (...a: unknown[]) => unknown).apply(object, args);
            record({ "engram.store.results": countOf(result) });
            return result;
          });
        };
        methods.set(property, method);
      }
      return method;
    },
  });
}
