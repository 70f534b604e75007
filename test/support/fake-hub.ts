// A local stand-in for Hugging Face and CivitAI (and their CDNs) that follows their protocol:
// HF resolve answers 302 to a signed CDN URL on a second port and host name, with X-Linked-Etag /
// X-Linked-Size; the Hub API answers what @huggingface/hub asks (POST paths-info, GET tree with
// Link pagination, GET whoami-v2), with the Hub's access rules: a gated repository lists its files
// to anyone but lets only granted tokens download (401 without a token, 403 with one not granted);
// a private one is 401 without a token, 404 to a token not granted. CivitAI's API lists files with
// SHA256, its download answers 307 to the CDN.
// Faults (rate caps per connection, 5xx/429 bursts, resets, no Range) are set on `faults`.
// Loopback only. File contents are generated from a seed, so tests commit no large files.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createCipheriv, createHash, createHmac } from "node:crypto";
import type { AddressInfo, Socket } from "node:net";

/** Deterministic pseudo-random bytes (AES-256-CTR keystream keyed by the seed): fast, reproducible. */
export function seeded(seed: string, size: number): Buffer {
  const key = createHash("sha256").update(seed).digest();
  const c = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.alloc(size)), c.final()]);
}

export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export interface HfRepo {
  files: Record<string, Buffer>;
  /** Downloads need `Authorization: Bearer <token>` (401 without, 403 for a token not granted); the API answers anyone. */
  gated?: boolean;
  /** Everything needs a granted token: 401 without one, 404 (as if it did not exist) for a token not granted. */
  private?: boolean;
  /** The valid tokens a gated or private repository lets in (default: every valid token). */
  grantedTo?: string[];
  /** Paths kept in git itself, not LFS: no lfs entry, their oid a git blob sha1. */
  plain?: string[];
  /**
   * Entries the tree listing carries after the real ones, verbatim and never downloadable: the odd
   * or hostile paths ("../x", "/abs") a listing from a compromised or buggy mirror could hold.
   */
  treeExtra?: { path: string; type?: "file" | "directory"; size?: number; lfs?: { oid: string; size: number } }[];
  commit?: string;
}

export interface CivitaiVersion {
  id: number;
  modelId?: number;
  name?: string;
  files: { name: string; content: Buffer; primary?: boolean; type?: string }[];
  /** The creator requires a logged-in user: 401 without a valid token. */
  needsToken?: boolean;
}

export interface Faults {
  /** Bytes per second per connection for every response that carries file bytes. */
  rate?: number;
  /** The next `count` byte requests are answered with `status` (and Retry-After when given). */
  fail?: { count: number; status: number; retryAfter?: number };
  /** The next `count` byte responses are cut (socket destroyed) after `bytes` body bytes. */
  reset?: { count: number; bytes: number };
  /** Range headers are ignored: 200 and the whole file, like some origins. */
  noRange?: boolean;
  /** Signed CDN links expiring at or before this time (ms) are refused with 403: links handed out so far "expire". */
  revokeLinks?: number;
  /** The next `count` Hugging Face requests (API and resolve, not CDN bytes) are answered with `status` (429: rate limited). */
  hubFail?: { count: number; status: number; retryAfter?: number };
}

export interface HubStats {
  /** File body bytes written to sockets, across all byte-serving responses. */
  bytes: number;
  /** Byte-serving requests (CDN and /files), faulted ones included. */
  requests: number;
  /** The Authorization header each CDN request carried (undefined when none). */
  cdnAuth: (string | undefined)[];
  /** Range header of each byte request. */
  ranges: (string | undefined)[];
  /** Byte responses being sent right now. */
  active: number;
  /** TCP connections accepted (both ports): shows whether clients keep connections alive. */
  connections: number;
  /** Requests to the HF resolve and CivitAI download endpoints (each hands out a signed link). */
  resolves: number;
  /** Every request on either port, "METHOD path" (query dropped): what a refused fetch must not reach. */
  seen: string[];
  /** "METHOD path" of every request that carried an Authorization header (where a token went). */
  withAuth: string[];
}

export interface FakeHubOptions {
  hf?: Record<string, HfRepo>;
  civitai?: CivitaiVersion[];
  /** Plain files at /files/<name> on the main port. */
  files?: Record<string, Buffer>;
  /** Bodies at /bare/<name> on the main port, served without a Content-Type (as some misconfigured origins do). */
  bare?: Record<string, Buffer>;
  /** The token accepted for gated repositories and CivitAI. */
  token?: string;
  /** More valid Hugging Face tokens (other users: whoami answers them; repositories may not grant them). */
  tokens?: string[];
  /** Entries per page of the tree API (the Hub pages with a Link: rel="next" header); default 1000. */
  treePageSize?: number;
  /** Host name the redirects name for the CDN: another host than the API's 127.0.0.1. */
  cdnHost?: string;
}

export interface FakeHub {
  /**
   * http://127.0.0.1:<port>: HF (/{org}/{repo}/resolve/..., /api/models/{org}/{repo}/paths-info|tree/..., /api/whoami-v2),
   * CivitAI (/api/v1/..., /api/download/...), /files/, /bare/, /html/, /go?to=<url>[&only=GET] (302).
   */
  url: string;
  /** http://<cdnHost>:<port>: where the bytes of HF and CivitAI files come from. */
  cdnUrl: string;
  faults: Faults;
  stats: HubStats;
  resetStats(): void;
  hfUrl(repo: string, path: string, rev?: string): string;
  civitaiDownloadUrl(versionId: number): string;
  close(): Promise<void>;
}

const SECRET = "fake-hub-signing-key";
const sign = (path: string) => createHmac("sha256", SECRET).update(path).digest("hex").slice(0, 32);

interface PacedSocket extends Socket {
  nextSendAt?: number;
}

export async function startFakeHub(opts: FakeHubOptions = {}): Promise<FakeHub> {
  const faults: Faults = {};
  const stats: HubStats = {
    bytes: 0,
    requests: 0,
    cdnAuth: [],
    ranges: [],
    active: 0,
    connections: 0,
    resolves: 0,
    seen: [],
    withAuth: [],
  };
  const cdnObjects = new Map<string, { content: Buffer; name: string; etag: string }>();
  const hashes = new Map<Buffer, string>();
  const hashOf = (b: Buffer) => {
    let h = hashes.get(b);
    if (!h) hashes.set(b, (h = sha256(b)));
    return h;
  };
  const authorized = (req: IncomingMessage, url: URL) =>
    !!opts.token && (req.headers.authorization === `Bearer ${opts.token}` || url.searchParams.get("token") === opts.token);
  /** The valid Hugging Face token a request carries, if any. */
  const hfToken = (req: IncomingMessage, url: URL): string | undefined => {
    const t = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? url.searchParams.get("token") ?? undefined;
    return t && (t === opts.token || opts.tokens?.includes(t)) ? t : undefined;
  };
  /** The Hub's answer to who may see a repository: 0 = go on, else the status to refuse with. */
  const hfAccess = (repo: HfRepo, req: IncomingMessage, url: URL, download: boolean): 0 | 401 | 403 | 404 => {
    if (!repo.private && !(repo.gated && download)) return 0;
    const t = hfToken(req, url);
    if (!t) return 401;
    if (repo.grantedTo && !repo.grantedTo.includes(t)) return repo.private ? 404 : 403;
    return 0;
  };

  const main = createServer((req, res) => void handleMain(req, res).catch((e) => fail(res, e)));
  const cdn = createServer((req, res) => void handleCdn(req, res).catch((e) => fail(res, e)));
  for (const s of [main, cdn]) {
    s.keepAliveTimeout = 30_000;
    s.on("connection", () => stats.connections++);
    s.on("request", (req: IncomingMessage) => {
      const seen = `${req.method} ${(req.url ?? "/").split("?")[0]}`;
      stats.seen.push(seen);
      if (req.headers.authorization) stats.withAuth.push(seen);
    });
  }
  await Promise.all([listen(main), listen(cdn)]);
  const url = `http://127.0.0.1:${(main.address() as AddressInfo).port}`;
  const cdnUrl = `http://${opts.cdnHost ?? "localhost"}:${(cdn.address() as AddressInfo).port}`;

  const cdnLocation = (path: string) => `${cdnUrl}${path}?expires=${Date.now() + 3_600_000}&sig=${sign(path)}`;

  async function handleMain(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? "/", url);
    const p = decodeURIComponent(u.pathname);
    let m: RegExpExecArray | null;
    if ((m = /^\/api\/v1\/model-versions\/(\d+)$/.exec(p))) {
      const v = opts.civitai?.find((x) => x.id === Number(m![1]));
      if (!v) return json(res, 404, { error: `No model version with id ${m[1]}` });
      return json(res, 200, {
        id: v.id,
        modelId: v.modelId ?? v.id * 10,
        name: v.name ?? `v${v.id}`,
        files: v.files.map((f, i) => ({
          id: v.id * 100 + i,
          name: f.name,
          type: f.type ?? "Model",
          sizeKB: f.content.length / 1024,
          primary: f.primary ?? i === 0,
          hashes: { SHA256: hashOf(f.content).toUpperCase() },
          downloadUrl: `${url}/api/download/models/${v.id}${i ? `?type=${encodeURIComponent(f.type ?? "Model")}&file=${i}` : ""}`,
        })),
      });
    }
    if ((m = /^\/api\/download\/models\/(\d+)$/.exec(p))) {
      stats.resolves++;
      const v = opts.civitai?.find((x) => x.id === Number(m![1]));
      if (!v) return json(res, 404, { error: "Model not found" });
      if (v.needsToken && !authorized(req, u)) {
        return json(res, 401, { error: "Unauthorized", message: "The creator of this asset requires you to be logged in to download it" });
      }
      const f = v.files[Number(u.searchParams.get("file") ?? 0)] ?? v.files[0]!;
      const path = `/civitai/${v.id}/${encodeURIComponent(f.name)}`;
      cdnObjects.set(path, { content: f.content, name: f.name, etag: hashOf(f.content) });
      res.writeHead(307, { location: cdnLocation(path), "content-length": 0 });
      return void res.end();
    }
    const hubRoute = /^\/api\/(whoami-v2|(models|datasets|spaces)\/)|^\/(?:(?:datasets|spaces)\/)?[^/]+\/[^/]+\/resolve\//.test(p);
    if (hubRoute && faults.hubFail && faults.hubFail.count > 0) {
      faults.hubFail.count--;
      const { status, retryAfter } = faults.hubFail;
      const error = status === 429 ? "You have been rate-limited; you can retry this action in a moment." : `error ${status}`;
      const text = JSON.stringify({ error });
      const ra = retryAfter !== undefined ? { "retry-after": String(retryAfter) } : {};
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...ra });
      return void res.end(text);
    }
    if (p === "/api/whoami-v2") {
      const t = hfToken(req, u);
      if (!t) return json(res, 401, { error: "Invalid credentials in Authorization header" });
      const createdAt = new Date(0).toISOString();
      return json(res, 200, {
        type: "user",
        id: sha256(Buffer.from(t)).slice(0, 24),
        name: t === opts.token ? "flow-tester" : "other-user",
        fullname: "Flow Tester",
        email: null,
        emailVerified: false,
        isPro: false,
        canPay: false,
        orgs: [],
        avatarUrl: "",
        auth: { type: "access_token", accessToken: { displayName: "flow", role: "read", createdAt } },
      });
    }
    if ((m = /^\/api\/(models|datasets|spaces)\/([^/]+\/[^/]+)\/(paths-info|tree)\/([^/]+)(?:\/(.*))?$/.exec(p))) {
      const [, kind, name, what, , sub] = m;
      const repoId = kind === "models" ? name! : `${kind}/${name}`;
      const repo = opts.hf?.[repoId];
      if (!repo) return hfError(res, hfToken(req, u) ? 404 : 401, "RepoNotFound", `Repository Not Found for url: ${u.href}.`);
      const refused = hfAccess(repo, req, u, false);
      if (refused) return hfError(res, refused === 403 ? 404 : refused, "RepoNotFound", `Repository Not Found for url: ${u.href}.`);
      if (what === "paths-info") {
        if (req.method !== "POST") return json(res, 405, { error: "Method Not Allowed" });
        const body = JSON.parse((await readBody(req)) || "{}") as { paths?: unknown };
        const wanted = Array.isArray(body.paths) ? body.paths.filter((x): x is string => typeof x === "string") : [];
        return json(
          res,
          200,
          wanted.map((w) => hfEntry(repo, w)).filter((e) => e !== undefined),
        );
      }
      const prefix = sub ? `${sub.replace(/\/+$/, "")}/` : "";
      const recursive = u.searchParams.get("recursive") === "true";
      const all = hfTree(repo).filter((e) => e.startsWith(prefix) && (recursive || !e.slice(prefix.length).includes("/")));
      const extra = (repo.treeExtra ?? []).filter((e) => e.path.startsWith(prefix));
      const entries = [...all.map((e) => hfEntry(repo, e)!), ...extra.map((e) => ({ type: "file", oid: "0".repeat(40), size: 0, ...e }))];
      const page = opts.treePageSize ?? 1000;
      const from = Number(u.searchParams.get("cursor") ?? 0);
      const items = entries.slice(from, from + page);
      const next = from + page < entries.length ? new URL(u.href) : undefined;
      next?.searchParams.set("cursor", String(from + page));
      const text = JSON.stringify(items);
      const link = next ? { link: `<${next.href}>; rel="next"` } : {};
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...link });
      return void res.end(text);
    }
    if ((m = /^\/((?:(?:datasets|spaces)\/)?[^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(p))) {
      stats.resolves++;
      const [, repoId, rev, file] = m;
      const repo = opts.hf?.[repoId!];
      if (!repo) return hfError(res, 404, "RepoNotFound", `Repository Not Found for url: ${u.href}.`);
      const refused = hfAccess(repo, req, u, true);
      if (refused === 401 || refused === 403) {
        const why =
          refused === 401
            ? "You must have access to it and be authenticated to access it. Please log in."
            : `You are not in the authorized list. Visit ${url}/${repoId} to ask for access.`;
        return hfError(res, refused, repo.private ? "RepoNotFound" : "GatedRepo", `Access to model ${repoId} is restricted. ${why}`);
      }
      if (refused) return hfError(res, 404, "RepoNotFound", `Repository Not Found for url: ${u.href}.`);
      const content = repo.files[file!];
      if (!content) return hfError(res, 404, "EntryNotFound", `${file} does not exist on "${rev}"`);
      const sha = hashOf(content);
      const path = `/hf/${sha}`;
      cdnObjects.set(path, { content, name: file!.split("/").pop()!, etag: sha });
      res.writeHead(302, {
        location: cdnLocation(path),
        etag: `"${createHash("sha1").update(`blob ${content.length}\0`).update(sha).digest("hex")}"`,
        "x-linked-etag": `"${sha}"`,
        "x-linked-size": String(content.length),
        "x-repo-commit": repo.commit ?? createHash("sha1").update(repoId!).digest("hex"),
        "content-length": 0,
      });
      return void res.end();
    }
    if (p === "/go") {
      // a redirect to anywhere: what a compromised or hostile origin answers (only=GET: to GETs, a HEAD sees a plain file)
      const only = u.searchParams.get("only");
      if (only && only !== req.method) {
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": 1234 });
        return void res.end();
      }
      res.writeHead(302, { location: u.searchParams.get("to") ?? "/", "content-length": 0 });
      return void res.end();
    }
    if ((m = /^\/bare\/(.+)$/.exec(p))) {
      const content = opts.bare?.[m[1]!];
      if (!content) return json(res, 404, { error: "not found" });
      return serveBytes(req, res, content, m[1]!, hashOf(content), null);
    }
    if ((m = /^\/files\/(.+)$/.exec(p))) {
      const content = opts.files?.[m[1]!];
      if (!content) return json(res, 404, { error: "not found" });
      return serveBytes(req, res, content, m[1]!, hashOf(content));
    }
    if (p.startsWith("/html/")) {
      // what a captive portal, a login wall or a misconfigured proxy returns with status 200
      const page = "<!doctype html><html><head><title>Sign in to continue</title></head><body><form>...</form></body></html>";
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "content-length": Buffer.byteLength(page) });
      return void res.end(page);
    }
    json(res, 404, { error: "no such route" });
  }

  async function handleCdn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? "/", cdnUrl);
    stats.cdnAuth.push(req.headers.authorization);
    const obj = cdnObjects.get(u.pathname);
    const expires = Number(u.searchParams.get("expires"));
    if (!obj || u.searchParams.get("sig") !== sign(u.pathname) || expires < Date.now() || expires <= (faults.revokeLinks ?? 0)) {
      const body = '<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>';
      res.writeHead(403, { "content-type": "application/xml", "content-length": body.length });
      return void res.end(body);
    }
    return serveBytes(req, res, obj.content, obj.name, obj.etag);
  }

  /** Range-aware file bytes, paced per connection with large writes on a timer (cheap on 2 cores). */
  /** type null: no Content-Type header at all. */
  async function serveBytes(
    req: IncomingMessage,
    res: ServerResponse,
    content: Buffer,
    name: string,
    etag: string,
    type: string | null = "application/octet-stream",
  ): Promise<void> {
    stats.requests++;
    stats.ranges.push(req.headers.range);
    if (faults.fail && faults.fail.count > 0) {
      faults.fail.count--;
      const body = `error ${faults.fail.status}`;
      res.writeHead(faults.fail.status, {
        "content-type": "text/plain",
        "content-length": body.length,
        ...(faults.fail.retryAfter !== undefined ? { "retry-after": String(faults.fail.retryAfter) } : {}),
      });
      return void res.end(body);
    }
    const size = content.length;
    let start = 0;
    let end = size; // exclusive
    let status = 200;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
    if (range && !faults.noRange) {
      if (range[1] === "") {
        start = Math.max(0, size - Number(range[2]));
      } else {
        start = Number(range[1]);
        end = range[2] === "" ? size : Math.min(size, Number(range[2]) + 1);
      }
      if (start >= size || start >= end) {
        res.writeHead(416, { "content-range": `bytes */${size}`, "content-length": 0 });
        return void res.end();
      }
      status = 206;
    }
    res.writeHead(status, {
      ...(type ? { "content-type": type } : {}),
      "content-length": end - start,
      "accept-ranges": faults.noRange ? "none" : "bytes",
      etag: `"${etag}"`,
      "content-disposition": `attachment; filename="${name}"`,
      ...(status === 206 ? { "content-range": `bytes ${start}-${end - 1}/${size}` } : {}),
    });
    if (req.method === "HEAD") return void res.end();

    let cutAfter = Infinity;
    if (faults.reset && faults.reset.count > 0) {
      faults.reset.count--;
      cutAfter = faults.reset.bytes;
    }
    // a request that arrived while the previous response on its connection was still finishing
    // waits for the connection (Node queues it): pace and write only once it has its socket
    if (!res.socket) await new Promise((r) => res.once("socket", r));
    const sock = res.socket as PacedSocket;
    let closed = false;
    stats.active++;
    res.on("close", () => {
      closed = true;
      stats.active--;
    });
    const rate = faults.rate;
    // 25 ms worth per write when paced: few timers, few syscalls
    const slice = rate ? Math.max(16 * 1024, Math.floor(rate / 40)) : 1 << 20;
    let sent = 0;
    let pos = start;
    while (pos < end && !closed) {
      let n = Math.min(slice, end - pos);
      if (sent + n > cutAfter) n = cutAfter - sent;
      if (rate) {
        // a token bucket per connection, as a CDN's shaper, checked before every write (the first
        // of a response too: many small requests on one connection get the rate, not a burst each).
        // A late wake-up (a busy event loop) may make up to 50 ms of lost time, so the cap is the
        // rate on average, not the rate minus our delays
        const now = performance.now();
        const at = Math.max(sock.nextSendAt ?? now, now - 50);
        if (at - now > 1) await new Promise((r) => setTimeout(r, at - now));
        sock.nextSendAt = at + (n * 1000) / rate;
        if (closed) break;
      }
      const ok = n > 0 ? res.write(content.subarray(pos, pos + n)) : true;
      pos += n;
      sent += n;
      stats.bytes += n;
      if (sent >= cutAfter) {
        sock.destroy(); // a reset mid-stream, as a flaky CDN edge does
        return;
      }
      // drain may have come during the sleep: ask the stream, not the old return value
      if (!ok && res.writableNeedDrain && !closed) {
        await new Promise<void>((r) => {
          const done = () => {
            res.off("drain", done);
            res.off("close", done);
            r();
          };
          res.on("drain", done);
          res.on("close", done);
        });
      }
    }
    if (!closed) res.end();
  }

  /** Every path of a repository, the folders its files sit in included, sorted. */
  function hfTree(repo: HfRepo): string[] {
    const out = new Set<string>();
    for (const f of Object.keys(repo.files)) {
      const parts = f.split("/");
      for (let i = 1; i < parts.length; i++) out.add(parts.slice(0, i).join("/"));
      out.add(f);
    }
    return [...out].sort();
  }

  /** One path as paths-info and the tree list it: a file (LFS unless `plain`) or a folder; undefined when neither. */
  function hfEntry(repo: HfRepo, path: string) {
    const blobSha1 = (b: Buffer) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
    const content = repo.files[path];
    if (content) {
      if (repo.plain?.includes(path)) return { type: "file", oid: blobSha1(content), size: content.length, path };
      const pointer = Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${hashOf(content)}\nsize ${content.length}\n`);
      const lfs = { oid: hashOf(content), size: content.length, pointerSize: pointer.length };
      return { type: "file", oid: blobSha1(pointer), size: content.length, path, lfs };
    }
    const folder = Object.keys(repo.files).some((f) => f.startsWith(`${path}/`));
    if (folder) return { type: "directory", oid: blobSha1(Buffer.from(path)), size: 0, path };
    return undefined;
  }

  return {
    url,
    cdnUrl,
    faults,
    stats,
    resetStats() {
      stats.bytes = 0;
      stats.requests = 0;
      stats.cdnAuth.length = 0;
      stats.ranges.length = 0;
      stats.connections = 0;
      stats.resolves = 0;
      stats.seen.length = 0;
      stats.withAuth.length = 0;
    },
    hfUrl: (repo, path, rev = "main") => `${url}/${repo}/resolve/${rev}/${path}`,
    civitaiDownloadUrl: (id) => `${url}/api/download/models/${id}`,
    async close() {
      for (const s of [main, cdn]) s.closeAllConnections();
      await Promise.all([main, cdn].map((s) => new Promise((r) => s.close(r))));
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => ok(Buffer.concat(chunks).toString("utf8")));
    req.on("error", fail);
  });
}

function listen(s: Server): Promise<void> {
  return new Promise((ok, fail) => {
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => ok());
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function hfError(res: ServerResponse, status: number, code: string, message: string): void {
  const text = JSON.stringify({ error: message });
  res.writeHead(status, {
    "content-type": "application/json",
    "x-error-code": code,
    "x-error-message": message,
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function fail(res: ServerResponse, e: unknown): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(500, { "content-type": "text/plain" });
  res.end(String(e));
}
