// The bulk path of the download engine: Range GETs on a kept-alive socket, against small servers
// that answer as real ones do (and as broken ones do).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttps } from "node:https";
import { createServer as createNet, type AddressInfo, type Socket } from "node:net";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FallbackError, RangeConnection, parseHead, requestHead, type RangeGet } from "../../tasks/lib/download/range-client.ts";
import { FatalError, RetryableError } from "../../tasks/lib/download/http.ts";
import { seeded } from "../support/fake-hub.ts";

const content = seeded("range-client", 1 << 20);
/** The test servers listen on loopback: allowed by name, as a flowfile's settings.allowHosts would. */
const LOCAL = { allowHosts: ["127.0.0.1", "localhost"] };
const T = { timeout: 20_000 };

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler;
let connections = 0;
const sockets = new Set<Socket>();
let server: Server;
let origin: string;

/** 206 with the asked bytes, as a CDN answers. */
const serveRange: Handler = (req, res) => {
  const [, a, b] = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? "") ?? [];
  const s = Number(a);
  const e = Math.min(content.length - 1, Number(b));
  res.writeHead(206, {
    "content-type": "application/octet-stream",
    "content-length": e - s + 1,
    "content-range": `bytes ${s}-${e}/${content.length}`,
  });
  res.end(content.subarray(s, e + 1));
};

before(async () => {
  server = createHttp((req, res) => handler(req, res));
  server.on("connection", (s) => {
    connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));

/**
 * Collects the body of one range (copies: a chunk is the connection's reused read buffer);
 * stopAt: return false from body() once that many bytes came.
 */
function get(conn: RangeConnection, start: number, end: number, over: Partial<RangeGet> = {}, stopAt = Infinity) {
  const parts: Buffer[] = [];
  let got = 0;
  const done = conn.get({
    url: new URL(`${origin}/f.bin`),
    headers: { authorization: "Bearer t" },
    start,
    end,
    signal: new AbortController().signal,
    label: "f.bin",
    head: () => {},
    body: (c) => {
      parts.push(Buffer.from(c));
      got += c.length;
      return got < stopAt;
    },
    ...over,
  });
  return done.then(() => Buffer.concat(parts));
}

describe("range client", () => {
  test("ranges in order on one kept-alive connection", T, async () => {
    handler = serveRange;
    connections = 0;
    const seen: (string | undefined)[] = [];
    handler = (req, res) => (seen.push(req.headers.authorization), serveRange(req, res));
    const c = new RangeConnection(origin, 5000, {}, LOCAL);
    assert.deepEqual(await get(c, 0, 99), content.subarray(0, 100));
    assert.deepEqual(await get(c, 100, 300_000), content.subarray(100, 300_001));
    assert.deepEqual(await get(c, 1_000_000, (1 << 20) - 1), content.subarray(1_000_000));
    assert.equal(connections, 1, "one TCP connection for three requests");
    assert.deepEqual(seen, ["Bearer t", "Bearer t", "Bearer t"]);
    c.close();
  });

  test("a kept-alive socket the server closed while idle is replaced without an error", T, async () => {
    handler = serveRange;
    connections = 0;
    const c = new RangeConnection(origin, 5000, {}, LOCAL);
    await get(c, 0, 9);
    for (const s of sockets) s.destroy(); // the server's keep-alive timeout
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await get(c, 10, 19), content.subarray(10, 20));
    assert.equal(connections, 2);
    c.close();
  });

  test("a kept-alive socket closed as the request arrives is retried once on a new one", T, async () => {
    let n = 0;
    handler = (req, res) => (++n === 2 ? req.socket.destroy() : serveRange(req, res));
    connections = 0;
    const c = new RangeConnection(origin, 5000, {}, LOCAL);
    await get(c, 0, 9);
    assert.deepEqual(await get(c, 10, 19), content.subarray(10, 20));
    assert.equal(n, 3);
    assert.equal(connections, 2);
    // a fresh connection that is cut is a failure to report, not to hide
    handler = (req) => req.socket.destroy();
    const d = new RangeConnection(origin, 5000, {}, LOCAL);
    await assert.rejects(get(d, 0, 9), RetryableError);
    c.close();
  });

  test("body() returning false drops the connection; the next request opens another", T, async () => {
    handler = serveRange;
    connections = 0;
    const c = new RangeConnection(origin, 5000, {}, LOCAL);
    const part = await get(c, 0, content.length - 1, {}, 1);
    assert.ok(part.length > 0 && part.length < content.length);
    assert.deepEqual(await get(c, 5, 9), content.subarray(5, 10));
    assert.equal(connections, 2);
    c.close();
  });

  test("redirects, 200 and chunked 206 are left to undici (FallbackError)", T, async () => {
    const c = new RangeConnection(origin, 5000, {}, LOCAL);
    handler = (_req, res) => (res.writeHead(302, { location: "/elsewhere", "content-length": 0 }), res.end());
    await assert.rejects(get(c, 0, 9), FallbackError);
    handler = (_req, res) => (res.writeHead(200, { "content-length": content.length }), res.end(content));
    await assert.rejects(get(c, 0, 9), FallbackError);
    handler = (_req, res) => (
      res.writeHead(206, { "content-range": `bytes 0-9/${content.length}` }),
      res.write(content.subarray(0, 5)),
      res.end(content.subarray(5, 10))
    );
    await assert.rejects(get(c, 0, 9), FallbackError);
    c.close();
  });

  test("error statuses: 401/403 fatal with their status, 429/503 retryable with Retry-After", T, async () => {
    const c = new RangeConnection(origin, 5000, {}, LOCAL);
    for (const [status, kind, extra] of [
      [401, FatalError, {}],
      [403, FatalError, {}],
      [404, FatalError, {}],
      [429, RetryableError, { "retry-after": "3" }],
      [503, RetryableError, {}],
    ] as const) {
      handler = (_req, res) => (res.writeHead(status, { "content-type": "text/plain", "content-length": 5, ...extra }), res.end("nope!"));
      const err = await get(c, 0, 9).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof kind, `${status}: ${String(err)}`);
      if (err instanceof FatalError && status !== 404) assert.equal(err.status, status);
      if (status === 429) assert.equal((err as RetryableError).retryAfterMs, 3000);
      assert.match(String((err as Error).message), /f\.bin|127\.0\.0\.1/, "names the file or where it came from");
    }
    c.close();
  });

  test("a 206 HTML page is refused; a wrong Content-Range is refused by the caller's head()", T, async () => {
    const c = new RangeConnection(origin, 5000, {}, LOCAL);
    handler = (_req, res) => (
      res.writeHead(206, { "content-type": "text/html", "content-length": 10, "content-range": `bytes 0-9/${content.length}` }),
      res.end("<html></h>")
    );
    await assert.rejects(get(c, 0, 9), /HTML page/);
    handler = serveRange;
    await assert.rejects(
      get(c, 0, 9, {
        head: (h) => {
          throw new RetryableError(`saw ${h.headers["content-range"]}`);
        },
      }),
      /saw bytes 0-9\//,
    );
    c.close();
  });

  test("a stalled server times out, a cut one is retryable, an abort stops at once", T, async () => {
    const c = new RangeConnection(origin, 300, {}, LOCAL);
    handler = (_req, res) => {
      res.writeHead(206, { "content-length": 10, "content-range": `bytes 0-9/${content.length}` });
      res.write(content.subarray(0, 3)); // then nothing
    };
    const t0 = Date.now();
    await assert.rejects(get(c, 0, 9), (e: unknown) => e instanceof RetryableError && /no data for 0.3 s/.test(e.message));
    assert.ok(Date.now() - t0 < 3000);
    handler = (req, res) => {
      res.writeHead(206, { "content-length": 10, "content-range": `bytes 0-9/${content.length}` });
      res.write(content.subarray(0, 3), () => req.socket.destroy());
    };
    await assert.rejects(get(c, 0, 9), (e: unknown) => e instanceof RetryableError && /7 bytes of the range to come/.test(e.message));
    handler = () => {}; // never answers
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(get(c, 0, 9, { signal: ac.signal }), { name: "AbortError" });
    c.close();
  });

  test("a header value with CR or LF is refused before anything is sent", T, async () => {
    connections = 0;
    const c = new RangeConnection(origin, 5000, {}, LOCAL);
    await assert.rejects(get(c, 0, 9, { headers: { authorization: "Bearer t\r\nX-Evil: 1" } }), FatalError);
    assert.equal(connections, 0);
  });

  test("it connects only where the policy allows, and checks the address it actually reached", T, async () => {
    handler = serveRange;
    connections = 0;
    const port = new URL(origin).port;
    const refused = [
      [origin, {}], // 127.0.0.1, not listed
      [`http://localhost:${port}`, { allowHosts: ["localhost:1"] }], // listed on another port: plain http refused
      [`https://localhost:${port}`, {}], // a name that resolves to loopback
      [`https://2130706433:${port}`, {}],
      [`http://127.0.0.1:${port}`, { allowHosts: [`localhost:${port}`] }], // another name for the listed one
    ] as const;
    for (const [o, policy] of refused) {
      const c = new RangeConnection(o, 2000, {}, { allowHosts: [], ...policy });
      const err = await get(c, 0, 9, { url: new URL(`${o}/f.bin`) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof FatalError, `${o}: ${String(err)}`);
      assert.match((err as Error).message, /refused .*(loopback|plain http)/, o);
      c.close();
    }
    assert.equal(connections, 0, "a refused connection reached the server");
    const ok = new RangeConnection(origin, 2000, {}, { allowHosts: [`127.0.0.1:${port}`] });
    assert.deepEqual(await get(ok, 0, 9), content.subarray(0, 10));
    ok.close();
  });

  test("request head and response head", () => {
    const wire = requestHead(
      new URL("http://h.example:8080/a%20b/c?sig=1&x=2"),
      { Authorization: "Bearer x", Connection: "upgrade", "Content-Length": "5" },
      10,
      19,
    );
    assert.equal(
      wire,
      "GET /a%20b/c?sig=1&x=2 HTTP/1.1\r\nhost: h.example:8080\r\nuser-agent: " +
        "flow-download\r\naccept-encoding: identity\r\nauthorization: Bearer x\r\nrange: bytes=10-19\r\n\r\n",
    );
    assert.throws(() => requestHead(new URL("http://h/"), { "bad name": "x" }, 0, 1), FatalError);
    const h = parseHead("HTTP/1.0 206 Partial Content\r\nContent-Length: 10\r\nX-A: 1\r\nx-a: 2");
    assert.deepEqual(h, { status: 206, headers: { "content-length": "10", "x-a": "1, 2", connection: "close" } });
    assert.throws(() => parseHead("SSH-2.0-OpenSSH"), RetryableError);
  });
});

describe("range client over TLS", () => {
  let dir: string | undefined;
  let tlsServer: Server | undefined;
  let url = "";
  let ca = "";
  const noOpenssl = (() => {
    try {
      execFileSync("openssl", ["version"], { stdio: "ignore" });
      return false;
    } catch {
      return "openssl is not installed (Debian package openssl)";
    }
  })();

  before(async () => {
    if (noOpenssl) return;
    dir = mkdtempSync(join(tmpdir(), "flow-tls-"));
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    ca = readFileSync(join(dir, "cert.pem"), "utf8");
    tlsServer = createHttps({ key: readFileSync(join(dir, "key.pem")), cert: ca }, serveRange);
    await new Promise<void>((r) => tlsServer!.listen(0, "127.0.0.1", r));
    url = `https://localhost:${(tlsServer.address() as AddressInfo).port}`;
  });
  after(async () => {
    if (tlsServer) await new Promise<void>((r) => (tlsServer!.closeAllConnections(), tlsServer!.close(() => r())));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const tlsGet = (c: RangeConnection, s: number, e: number) => {
    const parts: Buffer[] = [];
    return c
      .get({
        url: new URL(`${url}/f.bin`),
        headers: {},
        start: s,
        end: e,
        signal: new AbortController().signal,
        label: "f.bin",
        head: () => {},
        body: (b) => (parts.push(Buffer.from(b)), true),
      })
      .then(() => Buffer.concat(parts));
  };

  test("https with the server's name checked against a trusted CA", { ...T, skip: noOpenssl }, async () => {
    const c = new RangeConnection(url, 5000, { ca }, LOCAL);
    assert.deepEqual(await tlsGet(c, 0, 65_535), content.subarray(0, 65_536));
    assert.deepEqual(await tlsGet(c, 65_536, 70_000), content.subarray(65_536, 70_001));
    c.close();
  });

  test("an untrusted certificate is refused, not retried", { ...T, skip: noOpenssl }, async () => {
    const c = new RangeConnection(url, 5000, {}, LOCAL);
    const err = await tlsGet(c, 0, 9).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof Error && !(err instanceof RetryableError), String(err));
    assert.match(String((err as Error).message), /certificate/i);
  });
});

// a raw TCP peer for what no HTTP server library will send
describe("range client against a broken peer", () => {
  test("more body bytes than Content-Length is a retryable protocol error", T, async () => {
    const peer = createNet((s) =>
      s.once("data", () => s.write(`HTTP/1.1 206 Partial Content\r\ncontent-length: 3\r\ncontent-range: bytes 0-2/10\r\n\r\nabcdef`)),
    );
    await new Promise<void>((r) => peer.listen(0, "127.0.0.1", r));
    const o = `http://127.0.0.1:${(peer.address() as AddressInfo).port}`;
    const c = new RangeConnection(o, 2000, {}, LOCAL);
    const got: Buffer[] = [];
    await c
      .get({
        url: new URL(`${o}/x`),
        headers: {},
        start: 0,
        end: 2,
        signal: new AbortController().signal,
        label: "x",
        head: () => {},
        body: (b) => (got.push(Buffer.from(b)), true),
      })
      .then(
        () => assert.fail("accepted extra bytes"),
        (e: unknown) => assert.ok(e instanceof RetryableError, String(e)),
      );
    c.close();
    await new Promise<void>((r) => peer.close(() => r()));
  });

  test("bytes on a kept-alive connection between responses drop it; the next range comes over a new one", T, async () => {
    let conns = 0;
    const peer = createNet((s) => {
      const n = ++conns;
      s.on("data", () => {
        s.write(`HTTP/1.1 206 Partial Content\r\ncontent-length: 3\r\ncontent-range: bytes 0-2/10\r\n\r\nabc`);
        // the first connection then sends what no request asked for: the reused read buffer must not take it
        if (n === 1) setTimeout(() => s.write("junk"), 30);
      });
    });
    await new Promise<void>((r) => peer.listen(0, "127.0.0.1", r));
    const o = `http://127.0.0.1:${(peer.address() as AddressInfo).port}`;
    const c = new RangeConnection(o, 2000, {}, LOCAL);
    const one = async () => {
      const got: Buffer[] = [];
      await c.get({
        url: new URL(`${o}/x`),
        headers: {},
        start: 0,
        end: 2,
        signal: new AbortController().signal,
        label: "x",
        head: () => {},
        body: (b) => (got.push(Buffer.from(b)), true),
      });
      return Buffer.concat(got).toString();
    };
    assert.equal(await one(), "abc");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await one(), "abc");
    assert.equal(conns, 2, "the connection that sent unasked bytes was dropped");
    c.close();
    await new Promise<void>((r) => peer.close(() => r()));
  });
});
