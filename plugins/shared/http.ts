// The one way flow's plugins ask the web from the user's machine (Hugging Face, CivitAI, a model's
// own URL): every hop, redirects included, goes only where lib/net-policy.ts allows (public https,
// or a host settings.allowHosts lists), checked before it goes out and again at connect time (the
// socket goes to the address that was checked: no second lookup a DNS rebind could answer). A
// credential header never follows a redirect to another origin, nor goes where `credentialScope`
// says it must not. 429, 5xx and dropped connections are tried again with lib/retry.ts's back-off.
import { Agent, buildConnector, fetch, type Response } from "undici";
import { guardConnector, urlProblem, type Connector, type NetPolicy, type NetPolicyError } from "../../lib/net-policy.ts";
import { withRetry, type Attempt, type RetryPolicy } from "../../lib/retry.ts";
import { stripUrlCredentials } from "../../lib/url-credentials.ts";

export type { Response } from "undici";

/** A lookup on the user's machine: a few quick tries, not the host downloader's long patience. */
export const LOOKUP_RETRY: RetryPolicy = { tries: 4, baseMs: 500, maxMs: 8_000 };

export interface HttpOptions {
  /** settings.allowHosts: the only hosts reached over plain http or at a non-public address */
  allowHosts?: readonly string[];
  /** per attempt; default 20 s */
  timeoutMs?: number;
  /** default LOOKUP_RETRY; { tries: 1 } for none */
  retry?: RetryPolicy;
  /**
   * Where an Authorization (or Cookie) header may go. Elsewhere, the first request as much as a
   * redirect's hop, it is dropped. Default: the origin of the first URL.
   */
  credentialScope?: (url: URL) => boolean;
}

export interface HttpInit {
  method?: string;
  headers?: Record<string, string> | [string, string][] | Headers | { forEach(cb: (v: string, k: string) => void): void };
  body?: string;
  /** "follow" (default): up to 10 redirects, each hop checked; "manual": a 3xx is the answer */
  redirect?: "follow" | "manual";
  signal?: AbortSignal | null;
}

/** A request the policy refused, a network failure or a timeout; the message names the URL, credentials masked. */
export class HttpError extends Error {
  /** refused: the address policy said no; status: the last answer's, when the retries ran out on one */
  constructor(
    message: string,
    readonly refused = false,
    readonly status?: number,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** A URL as messages show it: a credential in it (?token=) masked. */
export const shownUrl = (url: string) => stripUrlCredentials(url, "mask");

// one guarded dispatcher per allow-list: its connections are checked when made (names once resolved)
const dispatchers = new Map<string, Agent>();
function dispatcherFor(policy: NetPolicy): Agent {
  const key = JSON.stringify(policy.allowHosts ?? []);
  let d = dispatchers.get(key);
  if (!d) {
    const connect = guardConnector(policy, buildConnector({}) as unknown as Connector) as unknown as buildConnector.connector;
    dispatchers.set(key, (d = new Agent({ connect })));
  }
  return d;
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);
const CREDENTIAL = /^(authorization|cookie)$/i;

function headerList(h: HttpInit["headers"]): [string, string][] {
  if (!h) return [];
  if (Array.isArray(h)) return h;
  if (typeof (h as Headers).forEach === "function") {
    const out: [string, string][] = [];
    (h as Headers).forEach((v, k) => out.push([k, v]));
    return out;
  }
  return Object.entries(h as Record<string, string>);
}

/**
 * One request under the policy. Redirects are followed by hand (each hop checked before it goes
 * out); a credential header goes only where `credentialScope` allows. The answer of the last hop
 * is returned whatever its status (the caller judges 4xx); only a refusal, a network failure or a
 * timeout that outlasts the retries throws.
 */
export async function guardedFetch(url: string, init: HttpInit = {}, opts: HttpOptions = {}): Promise<Response> {
  const policy: NetPolicy = { allowHosts: opts.allowHosts ?? [] };
  const why = urlProblem(policy, url);
  if (why) throw new HttpError(`refused ${shownUrl(url)}: ${why}`, true);
  const first = new URL(url);
  const inScope = opts.credentialScope ?? ((u: URL) => u.origin === first.origin);
  const given = headerList(init.headers);
  const firstMethod = (init.method ?? "GET").toUpperCase();
  return withRetry<Response>(
    opts.retry ?? LOOKUP_RETRY,
    async (): Promise<Attempt<Response>> => {
      let at = url;
      let from = "";
      let leftOrigin = false;
      let method = firstMethod;
      let body = init.body;
      const bare = given.filter(([k]) => !CREDENTIAL.test(k));
      const refused = (why: string) =>
        new HttpError(`${from ? `refused redirect from ${shownUrl(from)} to ${shownUrl(at)}` : `refused ${shownUrl(at)}`}: ${why}`, true);
      for (let hop = 0; hop <= 10; hop++) {
        const why = urlProblem(policy, at);
        if (why) throw refused(why);
        const target = new URL(at);
        // a credential is for the origin (and paths) it was given for, never for where that origin sends us
        leftOrigin ||= target.origin !== first.origin;
        const headers = !leftOrigin && inScope(target) ? given : bare;
        let res: Response;
        try {
          const signals = [AbortSignal.timeout(opts.timeoutMs ?? 20_000), ...(init.signal ? [init.signal] : [])];
          res = await fetch(at, {
            method,
            redirect: "manual",
            headers: [["user-agent", "flow"], ...headers.filter(([k]) => k.toLowerCase() !== "user-agent")],
            body,
            dispatcher: dispatcherFor(policy),
            signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0],
          });
        } catch (err) {
          const e = err as Error & { cause?: Error & { code?: string } };
          if (e.cause?.code === "ERR_FLOW_NET_POLICY") throw refused((e.cause as NetPolicyError).reason);
          if (init.signal?.aborted) throw err;
          return { again: `${shownUrl(at)}: ${e.cause?.message ?? e.message}` };
        }
        const location = res.headers.get("location");
        const redirected = res.status >= 300 && res.status < 400 && res.status !== 304 && !!location;
        if (init.redirect === "manual" || !redirected) {
          if (!RETRY_STATUS.has(res.status)) return { value: res };
          await res.body?.cancel().catch(() => undefined);
          return { again: `${shownUrl(at)}: HTTP ${res.status}`, retryAfter: res.headers.get("retry-after"), status: res.status };
        }
        await res.body?.cancel().catch(() => undefined);
        // as browsers do: a 303, or a 301/302 answering a POST, is followed with a GET; 307 and 308 keep method and body
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
          method = method === "HEAD" ? "HEAD" : "GET";
          body = undefined;
        }
        from = at;
        at = new URL(location!, at).toString();
      }
      throw new HttpError(`${shownUrl(at)}: more than 10 redirects`);
    },
    {
      giveUp: (reason, tries, status) => new HttpError(`${reason} (after ${tries} tries)`, false, status),
      signal: init.signal ?? undefined,
    },
  );
}

/** guardedFetch in the shape of the global fetch, for libraries that take one (@huggingface/hub). */
export function policyFetch(opts: HttpOptions): typeof globalThis.fetch {
  const f = (input: string | URL | { url: string }, init?: Record<string, unknown>) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const body = init?.body;
    if (body !== undefined && body !== null && typeof body !== "string") throw new HttpError(`${shownUrl(url)}: only text bodies are sent`);
    return guardedFetch(
      url,
      {
        method: init?.method as string | undefined,
        headers: init?.headers as HttpInit["headers"],
        body: body ?? undefined,
        redirect: init?.redirect === "manual" ? "manual" : "follow",
        signal: init?.signal as AbortSignal | undefined,
      },
      opts,
    );
  };
  return f as unknown as typeof globalThis.fetch;
}
