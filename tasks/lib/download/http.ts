// One GET with manual redirects and an error taxonomy: what is worth retrying, what fails the file.
import { request, type Dispatcher } from "./undici.ts";
import { urlProblem, type NetPolicy, type NetPolicyError } from "../../../lib/net-policy.ts";
import { stripUrlCredentials } from "../../../lib/url-credentials.ts";
import { parseRetryAfter } from "../../../lib/retry.ts";

/** The file fails with this message; retrying would not help (401, 403, 404, HTML, size mismatch). */
export class FatalError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** The server's file is not the one the job describes: what is on disk of it is dropped. */
export class MismatchError extends FatalError {}

/** Worth another attempt (5xx, 429, resets, timeouts); retryAfterMs when the server said so. */
export class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Signed URLs carry credentials in the query: messages show origin and path only. */
export function shown(url: string): string {
  try {
    const u = new URL(url);
    return u.origin + u.pathname;
  } catch {
    return url.split("?")[0]!;
  }
}

export interface Opened {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
  /** Where the bytes came from after redirects, and the headers fit to send there again. */
  url: string;
  sendHeaders: Record<string, string>;
}

export interface OpenOptions {
  dispatcher: Dispatcher;
  headers: Record<string, string>;
  /** Inclusive byte range, or none for the whole file. */
  range?: [number, number];
  signal?: AbortSignal;
  timeoutMs: number;
  /** The URL the user asked for, named in error messages. */
  label: string;
  /** Where requests may go (settings.allowHosts): checked for the URL and every redirect, before it is requested. */
  policy: NetPolicy;
}

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
  "UND_ERR_RESPONSE_STATUS_CODE",
]);

/** Network failures become RetryableError; our own aborts and everything else pass through. */
export function classify(err: unknown): unknown {
  if (err instanceof FatalError || err instanceof RetryableError) return err;
  const e = err as { code?: string; name?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code;
  if (e?.name === "AbortError" || code === "UND_ERR_ABORTED") return err;
  if (code === "ERR_FLOW_NET_POLICY") return new FatalError(e.message ?? "refused by settings.allowHosts");
  if ((code && NETWORK_CODES.has(code)) || /terminated|socket|reset/i.test(e?.message ?? "")) {
    return new RetryableError(`${code ?? "network error"}: ${e?.message ?? String(err)}`);
  }
  return err;
}

function header(h: Opened["headers"], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

async function snippet(body: Opened["body"]): Promise<string> {
  // enough of an error page to name it, never the whole thing
  let text = "";
  try {
    for await (const chunk of body) {
      text += (chunk as Buffer).toString("utf8");
      if (text.length > 4096) break;
    }
  } catch {
    /* the title is a nicety */
  }
  const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1]?.trim();
  return title ? ` ("${title.slice(0, 120)}")` : "";
}

/**
 * GET url, following redirects by hand (undici does not) so Authorization and Cookie are dropped
 * once the chain leaves the first origin: CivitAI and Hugging Face redirect to signed CDN URLs.
 * Returns only a 200 or 206 with a body that is not an HTML page; anything else throws.
 */
export async function open(url: string, o: OpenOptions): Promise<Opened> {
  let headers = { ...o.headers };
  const origin = new URL(url).origin;
  let from = "";
  // a refusal names the URL asked for, or the redirect that led away from it
  const refused = (why: string) =>
    new FatalError(
      from ? `refused redirect from ${shown(from)} to ${stripUrlCredentials(url, "mask")}: ${why}` : `refused ${o.label}: ${why}`,
    );
  for (let hop = 0; hop <= 10; hop++) {
    const why = urlProblem(o.policy, url);
    if (why) throw refused(why);
    const res = await request(url, {
      dispatcher: o.dispatcher,
      method: "GET",
      headers: {
        "accept-encoding": "identity",
        "user-agent": "flow-download",
        ...headers,
        ...(o.range ? { range: `bytes=${o.range[0]}-${o.range[1]}` } : {}),
      },
      signal: o.signal,
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    }).catch((err) => {
      // refused at connect time: the name resolved to an address the policy does not allow
      if ((err as { code?: string })?.code === "ERR_FLOW_NET_POLICY") throw refused((err as NetPolicyError).reason);
      throw classify(err);
    });
    const status = res.statusCode;
    if (status >= 300 && status < 400 && status !== 304) {
      res.body.dump().catch(() => {});
      const location = header(res.headers, "location");
      if (!location) throw new FatalError(`redirect ${status} without a Location from ${shown(url)}`);
      const next = new URL(location, url);
      if (next.origin !== origin) {
        // another host must not see our token (nor cookies); the signed URL carries its own credentials
        const crossOrigin = ([k]: [string, string]) => !/^(authorization|cookie|proxy-authorization)$/i.test(k);
        headers = Object.fromEntries(Object.entries(headers).filter(crossOrigin));
      }
      from = url;
      url = next.toString();
      continue;
    }
    if (status === 200 || status === 206) {
      const type = header(res.headers, "content-type") ?? "";
      if (/^\s*text\/html/i.test(type)) {
        throw new FatalError(`an HTML page came back instead of the file${await snippet(res.body)} (HTTP ${status}) for ${o.label}`);
      }
      return { status, headers: res.headers, body: res.body, url, sendHeaders: headers };
    }
    const isHtml = /text\/html/i.test(header(res.headers, "content-type") ?? "");
    const page = isHtml ? await snippet(res.body) : (res.body.dump().catch(() => {}), "");
    throw statusError(status, res.headers, page, url, o.label);
  }
  throw new FatalError(`more than 10 redirects for ${o.label}`);
}

/**
 * The error for a response that is neither a redirect nor 200/206: fatal when retrying cannot help
 * (401, 403, 404, 416, other 4xx), retryable for 429, 408, 425 and 5xx. page: a title, or "".
 */
export function statusError(
  status: number,
  headers: Opened["headers"],
  page: string,
  url: string,
  label: string,
): FatalError | RetryableError {
  const message = header(headers, "x-error-message");
  const why = message ? `: ${message.slice(0, 200)}` : "";
  if (status === 401) return new FatalError(`token missing or wrong for ${label} (HTTP 401${why})`, 401);
  if (status === 403) {
    const causes = "a gated repository whose terms the token's account has not accepted, a token without read access, or an expired link";
    return new FatalError(`access denied for ${label} (HTTP 403${why}): ${causes}`, 403);
  }
  if (status === 404) return new FatalError(`not found: ${label} (HTTP 404${why})`, 404);
  if (status === 416) {
    return new FatalError(`range not satisfiable for ${label} (HTTP 416): the file on the server changed size`, 416);
  }
  if (status === 429 || status === 408 || status === 425 || status >= 500) {
    // Retry-After in seconds or as an HTTP date, read as every client of flow reads it (lib/retry.ts)
    const retryAfter = parseRetryAfter(header(headers, "retry-after")) ?? undefined;
    return new RetryableError(`HTTP ${status}${page}${why} from ${shown(url)}`, retryAfter);
  }
  return new FatalError(`HTTP ${status}${page}${why} for ${label}`, status);
}

/** "bytes 0-99/1000" -> [0, 99, 1000]; total is undefined for "*". */
export function contentRange(h: Opened["headers"]): { start: number; end: number; total?: number } | undefined {
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec((header(h, "content-range") ?? "").trim());
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

export function contentLength(h: Opened["headers"]): number | undefined {
  const v = header(h, "content-length");
  return v && /^\d+$/.test(v) ? Number(v) : undefined;
}

/**
 * A 206's Content-Range must start where we asked and name the file's size (when known); exactEnd:
 * end there too (the range path reads the body by Content-Length; undici's path stops at the end itself).
 */
export function checkContentRange(
  headers: Opened["headers"],
  start: number,
  end: number,
  exactEnd: boolean,
  size: number | undefined,
  from: string,
  label: string,
): void {
  const cr = contentRange(headers);
  if (!cr || cr.start !== start || (exactEnd && cr.end !== end)) {
    throw new RetryableError(`unexpected Content-Range "${headers["content-range"]}" for bytes ${start}-${end} from ${shown(from)}`);
  }
  if (cr.total !== undefined && size !== undefined && cr.total !== size) {
    throw new MismatchError(`size mismatch: expected ${size} bytes, the server has ${cr.total} (${label})`);
  }
}

/** Drop a response body we will not read (destroying it reports an abort we expect). */
export function discard(body: { on(ev: "error", f: () => void): unknown; destroy(): unknown }): void {
  body.on("error", () => {});
  body.destroy();
}
