// The bulk path: HTTP/1.1 Range GETs on one kept-alive socket, body bytes handed on as the socket
// delivers them, read into one buffer per connection that every read reuses. undici (http.ts)
// resolves each file first (redirects, auth, error pages); once a file's final URL has answered
// 206, its ranges come through here, because on this path undici's parser and body streams cost
// about twice the CPU of the bytes' own copying, and on a small box CPU is what caps the download
// (bench/README.md).
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { FatalError, RetryableError, classify, shown, statusError } from "./http.ts";
import { NetPolicyError, dialTargets, peerProblem, type NetPolicy } from "../../../lib/net-policy.ts";

/** The response is not one this path handles (redirect, 200, no length, chunked): use undici. */
export class FallbackError extends Error {}

export interface RangeHead {
  status: number;
  headers: Record<string, string>;
}

export interface RangeGet {
  url: URL;
  headers: Record<string, string>;
  /** Inclusive. */
  start: number;
  end: number;
  signal: AbortSignal;
  label: string;
  /** Checks a 206's headers; throws to refuse the body (the connection is then closed). */
  head(h: RangeHead): void;
  /**
   * One piece of the body, in order: a view of the connection's read buffer, valid only during the
   * call (write it out or copy it). false: stop here (the rest is not wanted; the connection is closed).
   */
  body(chunk: Buffer): boolean;
}

const MAX_HEAD = 64 * 1024;
// Node's 'data' events hand every read a freshly allocated 64 KiB buffer. One reused buffer per
// connection (net's onread), written to disk straight from it, costs a third of the CPU per GiB
// and a quarter of the page faults (bench/README.md); 256 KiB reads mean fewer syscalls.
const READ_BUFFER = 256 * 1024;
const CRLF = /[\r\n\0]/;

/** Header names and values reach the wire as written: CR, LF or NUL would start another header. */
export function requestHead(url: URL, headers: Record<string, string>, start: number, end: number): string {
  const lines = [`GET ${url.pathname || "/"}${url.search} HTTP/1.1`, `host: ${url.host}`];
  const all: Record<string, string> = {
    "user-agent": "flow-download",
    "accept-encoding": "identity",
    ...headers,
    range: `bytes=${start}-${end}`,
  };
  const seen = new Set<string>(["host"]);
  for (const [k, v] of Object.entries(all)) {
    const name = k.toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name) || CRLF.test(String(v))) {
      throw new FatalError(`header ${JSON.stringify(k)} has characters HTTP does not allow`);
    }
    if (seen.has(name) || name === "connection" || name === "content-length" || name === "transfer-encoding") continue;
    seen.add(name);
    lines.push(`${name}: ${v}`);
  }
  return lines.join("\r\n") + "\r\n\r\n";
}

/** Status line and headers of a response head (without the blank line). Names lower-cased; repeats joined by ", ". */
export function parseHead(text: string): RangeHead {
  const [statusLine, ...rest] = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine ?? "");
  if (!m) throw new RetryableError(`not an HTTP/1.1 response: ${JSON.stringify((statusLine ?? "").slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const line of rest) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  }
  if (statusLine!.startsWith("HTTP/1.0") && !/keep-alive/i.test(headers.connection ?? "")) headers.connection = "close";
  return { status: Number(m[1]), headers };
}

/**
 * One connection to one origin, one request at a time. Reconnects by itself when the server has
 * closed an idle kept-alive socket before answering (that is not a failure of the download).
 */
export class RangeConnection {
  private sock?: Socket;
  private reused = false;
  private readonly rbuf = Buffer.allocUnsafe(READ_BUFFER);
  /** Where the socket's bytes go while a response is read; none between requests. */
  private sink?: (chunk: Buffer) => void;

  constructor(
    readonly origin: string,
    private readonly timeoutMs: number,
    private readonly tls: ConnectionOptions,
    /** Where it may connect (settings.allowHosts); this client dials by itself, so it checks for itself. */
    private readonly policy: NetPolicy,
  ) {}

  close(): void {
    this.sock?.destroy();
    this.sock = undefined;
  }

  async get(req: RangeGet): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const fresh = !this.sock;
      try {
        return await this.once(req);
      } catch (err) {
        // a socket kept from the last response that the server closed meanwhile: once more, anew
        if (!(err instanceof StaleSocket) || fresh || attempt > 0) throw err instanceof StaleSocket ? err.cause : err;
      }
    }
  }

  /**
   * A socket to url's origin, only where the policy allows: to the addresses it checked (once per
   * connection, never per range), each in turn until one answers; then the peer is checked again.
   */
  private async open(url: URL, signal: AbortSignal): Promise<Socket> {
    const refused = (why: string) => new FatalError(`refused ${shown(url.href)}: ${why}`);
    const hosts = await new Promise<string[]>((ok, fail) =>
      dialTargets(this.policy, url, (err, h) => (err ? fail(err instanceof NetPolicyError ? refused(err.reason) : classify(err)) : ok(h))),
    );
    let last: unknown;
    for (const address of hosts) {
      let s: Socket;
      try {
        s = await this.dial(url, address, signal);
      } catch (e) {
        if ((e as Error)?.name === "AbortError") throw e;
        last = e;
        continue;
      }
      const bad = peerProblem(this.policy, url, s);
      if (!bad) return s;
      s.destroy();
      throw refused(bad);
    }
    throw last ?? refused("no address to dial");
  }

  private dial(url: URL, address: string, signal: AbortSignal): Promise<Socket> {
    const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
    const name = url.hostname.replace(/^\[|\]$/g, "");
    return new Promise((resolve, reject) => {
      const onread = { buffer: this.rbuf, callback: (n: number) => this.received(s, n) };
      // the TLS name is the URL's host name, whichever of its addresses is dialled
      const servername = isIP(name) ? undefined : name;
      const s: Socket =
        url.protocol === "https:"
          ? tlsConnect({ host: address, port, servername, ALPNProtocols: ["http/1.1"], ...this.tls, onread } as ConnectionOptions)
          : netConnect({ host: address, port, onread });
      const onError = (e: Error) => {
        cleanup();
        s.destroy();
        reject(classify(e));
      };
      const onAbort = () => onError(abortError());
      const onTimeout = () => onError(new RetryableError(`no connection to ${url.host} within ${this.timeoutMs / 1000} s`));
      const onReady = () => {
        cleanup();
        s.on("error", () => {}); // an idle socket's reset must not crash the process; requests listen themselves
        s.setNoDelay(true);
        s.setKeepAlive(true, 30_000);
        resolve(s);
      };
      const cleanup = () => {
        s.off("error", onError)
          .off("timeout", onTimeout)
          .off(url.protocol === "https:" ? "secureConnect" : "connect", onReady);
        signal.removeEventListener("abort", onAbort);
        s.setTimeout(0);
      };
      s.setTimeout(this.timeoutMs);
      s.once("error", onError)
        .once("timeout", onTimeout)
        .once(url.protocol === "https:" ? "secureConnect" : "connect", onReady);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** n bytes were read into rbuf. Bytes while no response is awaited break the protocol: drop the socket. */
  private received(s: Socket, n: number): boolean {
    if (s === this.sock && this.sink) {
      this.sink(this.rbuf.subarray(0, n));
      return true;
    }
    s.destroy();
    if (s === this.sock) this.sock = undefined;
    return false;
  }

  private async once(req: RangeGet): Promise<void> {
    if (req.signal.aborted) throw abortError();
    const wire = requestHead(req.url, req.headers, req.start, req.end);
    if (this.sock?.destroyed) this.sock = undefined; // closed while idle
    const reused = !!this.sock && this.reused;
    const sock = (this.sock ??= await this.open(req.url, req.signal));
    this.reused = false;
    return new Promise<void>((resolve, reject) => {
      let head: Buffer | null = Buffer.alloc(0);
      let left = 0; // body bytes still to come
      let keep = true;
      let over = false;
      let gotAny = false;
      const finish = (err?: unknown) => {
        if (over) return;
        over = true;
        this.sink = undefined;
        sock.off("error", onError).off("close", onClose).off("timeout", onTimeout);
        req.signal.removeEventListener("abort", onAbort);
        sock.setTimeout(0);
        if (err || !keep || left > 0) {
          sock.destroy();
          if (this.sock === sock) this.sock = undefined;
        } else {
          this.reused = true;
        }
        if (err) reject(err);
        else resolve();
      };
      const onBody = (chunk: Buffer) => {
        if (chunk.length > left) return finish(new RetryableError(`more bytes than Content-Length from ${shown(req.url.href)}`));
        left -= chunk.length;
        let more: boolean;
        try {
          more = req.body(chunk);
        } catch (e) {
          return finish(e); // the disk refused: the connection goes, the error with it
        }
        if (!more) return finish(); // the rest is someone else's now: drop the connection
        if (left === 0) finish();
      };
      const onData = (chunk: Buffer) => {
        gotAny = true;
        if (!head) return onBody(chunk);
        const all = head.length ? Buffer.concat([head, chunk]) : chunk;
        const i = all.indexOf("\r\n\r\n");
        if (i < 0) {
          if (all.length > MAX_HEAD) return finish(new RetryableError(`response head over ${MAX_HEAD} bytes from ${shown(req.url.href)}`));
          head = all === chunk ? Buffer.from(chunk) : all; // chunk is the read buffer: keep a copy
          return;
        }
        head = null;
        let h: RangeHead;
        try {
          h = parseHead(all.subarray(0, i).toString("latin1"));
          keep = !/\bclose\b/i.test(h.headers.connection ?? "");
          check(h);
          req.head(h);
        } catch (e) {
          keep = false;
          return finish(e);
        }
        left = Number(h.headers["content-length"]);
        const rest = all.subarray(i + 4);
        if (left === 0) return finish();
        if (rest.length) onBody(rest);
      };
      const check = (h: RangeHead) => {
        const { status, headers } = h;
        if (status === 100) throw new RetryableError(`unexpected 100 Continue from ${shown(req.url.href)}`);
        if (status !== 206) {
          if ((status >= 300 && status < 400) || status === 200) throw new FallbackError(`HTTP ${status}`);
          throw statusError(status, headers, "", req.url.href, req.label);
        }
        if (headers["transfer-encoding"] || !/^\d+$/.test(headers["content-length"] ?? "")) {
          throw new FallbackError("206 without a plain Content-Length");
        }
        if (/^\s*text\/html/i.test(headers["content-type"] ?? "")) {
          throw new FatalError(`an HTML page came back instead of the file (HTTP 206) for ${req.label}`);
        }
      };
      const onError = (e: Error) => finish(staleOr(classify(e)));
      const onClose = () => {
        const where = head ? "before the response" : `with ${left} bytes of the range to come`;
        finish(staleOr(new RetryableError(`connection closed ${where} (${shown(req.url.href)})`)));
      };
      const staleOr = (e: unknown) => (reused && !gotAny ? new StaleSocket(e) : e);
      const onTimeout = () => finish(new RetryableError(`no data for ${this.timeoutMs / 1000} s from ${shown(req.url.href)}`));
      const onAbort = () => finish(abortError());
      this.sink = onData;
      sock.on("error", onError).on("close", onClose).on("timeout", onTimeout);
      sock.setTimeout(this.timeoutMs);
      req.signal.addEventListener("abort", onAbort, { once: true });
      sock.write(wire);
    });
  }
}

class StaleSocket extends Error {
  constructor(readonly cause: unknown) {
    super("stale kept-alive socket");
  }
}

function abortError(): Error {
  const e = new Error("aborted");
  e.name = "AbortError";
  return e;
}
