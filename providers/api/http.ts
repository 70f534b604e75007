// What both cloud clients share: JSON over fetch, bounded retries on 429/503 with Retry-After
// and jittered exponential back-off, and zod checks that name the endpoint on a surprise shape.
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from "../../lib/retry.ts";
import type { z } from "zod";
import { formatZodError } from "../../lib/flowfile/schema.ts";

export class CloudApiError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly code?: string,
  ) {
    super(message);
    this.name = "CloudApiError";
  }
}

/** The type cannot be launched where asked; `elsewhere` lists where it can (region or location codes). */
export class NoCapacityError extends CloudApiError {
  constructor(
    message: string,
    readonly elsewhere: string[],
  ) {
    super(message, null, "no-capacity");
    this.name = "NoCapacityError";
  }
}

export type { RetryPolicy } from "../../lib/retry.ts";

export interface RetryInfo {
  endpoint: string;
  status: number;
  attempt: number;
  tries: number;
  delayMs: number;
}

export interface HttpResponse {
  status: number;
  text: string;
  json: unknown;
  headers: Headers;
}

export interface RequestSpec {
  /** "Lambda API" / "DataCrunch API": prefixes every message */
  api: string;
  method: "GET" | "POST" | "PUT" | "DELETE";
  baseUrl: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  retry?: RetryPolicy;
  onRetry?: (info: RetryInfo) => void;
  /** a 503 whose body says this is not transient (a capacity answer) is returned, not retried */
  final503?: (res: HttpResponse) => boolean;
  timeoutMs?: number;
}

export function endpointLabel(spec: Pick<RequestSpec, "api" | "method" | "path">): string {
  return `${spec.api} ${spec.method} ${spec.path.replace(/\?.*$/, "")}`;
}

/** One HTTP exchange with retries on 429 and 503. Any other status is returned to the caller. */
export async function request(spec: RequestSpec): Promise<HttpResponse> {
  const policy = spec.retry ?? DEFAULT_RETRY;
  const label = endpointLabel(spec);
  const url = spec.baseUrl.replace(/\/+$/, "") + spec.path;
  return withRetry<HttpResponse>(
    policy,
    async () => {
      let res: Response;
      try {
        res = await fetch(url, {
          method: spec.method,
          headers: {
            accept: "application/json",
            ...(spec.body !== undefined ? { "content-type": "application/json" } : {}),
            ...spec.headers,
          },
          body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
          signal: AbortSignal.timeout(spec.timeoutMs ?? 30_000),
        });
      } catch (err) {
        // The message of a fetch failure carries no headers, so no secret; the cause names the socket error.
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        throw new CloudApiError(`${label}: cannot reach ${spec.baseUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, null);
      }
      const text = await res.text();
      const out: HttpResponse = { status: res.status, text, json: parseJson(text), headers: res.headers };
      const transient = res.status === 429 || (res.status === 503 && !spec.final503?.(out));
      if (!transient) return { value: out };
      return { again: res.status === 429 ? "rate limited" : "unavailable", status: res.status, retryAfter: res.headers.get("retry-after") };
    },
    {
      onRetry: (i) => spec.onRetry?.({ endpoint: label, status: i.status!, attempt: i.attempt, tries: i.tries, delayMs: i.delayMs }),
      giveUp: (reason, tries, status) =>
        new CloudApiError(`${label}: still ${status} (${reason}) after ${tries} tries; try again later`, status ?? null),
    },
  );
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Validate a response body; a surprise shape is an error naming the endpoint and the odd fields. */
export function expectShape<S extends z.ZodType>(schema: S, res: HttpResponse, label: string): z.output<S> {
  if (res.json === undefined) throw new CloudApiError(`${label}: expected JSON, got ${describeBody(res.text)}`, res.status);
  const parsed = schema.safeParse(res.json, { reportInput: true });
  if (!parsed.success) {
    const problems = formatZodError(parsed.error, "response");
    throw new CloudApiError(`${label}: unexpected response shape (has the API changed?):\n${problems}`, res.status);
  }
  return parsed.data;
}

export function describeBody(text: string): string {
  if (!text) return "an empty body";
  const one = text.replace(/\s+/g, " ").trim();
  return JSON.stringify(one.length > 120 ? `${one.slice(0, 117)}...` : one);
}

/** Base URL: the option, else the environment variable, else the real service. */
export function baseUrlFrom(option: string | undefined, envName: string, fallback: string): string {
  return (option || process.env[envName] || fallback).replace(/\/+$/, "");
}

/** Test and power-user knobs for the retry policy, read from the environment. */
export function retryFromEnv(): RetryPolicy {
  const n = (name: string, d: number) => {
    const v = Number(process.env[name]);
    return Number.isFinite(v) && v > 0 ? v : d;
  };
  return {
    tries: n("FLOW_CLOUD_RETRY_TRIES", DEFAULT_RETRY.tries),
    baseMs: n("FLOW_CLOUD_RETRY_BASE_MS", DEFAULT_RETRY.baseMs),
    maxMs: n("FLOW_CLOUD_RETRY_MAX_MS", DEFAULT_RETRY.maxMs),
  };
}
