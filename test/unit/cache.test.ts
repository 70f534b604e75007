import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CacheError, defaultCacheDir, fetchCached } from "../../lib/cache.ts";

interface Fake {
  server: Server;
  base: string;
  seen: IncomingMessage[];
  body: string;
  etag: string;
  status?: number;
}

async function fake(): Promise<Fake> {
  const f: Fake = { server: undefined as unknown as Server, base: "", seen: [], body: '{"v":1}', etag: '"v1"' };
  f.server = createServer((req, res) => {
    f.seen.push(req);
    if (f.status) {
      res.writeHead(f.status).end("nope");
      return;
    }
    if (req.headers["if-none-match"] === f.etag) {
      res.writeHead(304).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json", etag: f.etag, "last-modified": "Wed, 01 Jan 2025 00:00:00 GMT" }).end(f.body);
  });
  await new Promise<void>((r) => f.server.listen(0, "127.0.0.1", r));
  const a = f.server.address() as { port: number };
  f.base = `http://127.0.0.1:${a.port}`;
  return f;
}

const tmp = () => mkdtempSync(join(tmpdir(), "flow-cache-"));

test("first fetch downloads and stores body + metadata; a fresh copy is used without a request", async () => {
  const f = await fake();
  const dir = tmp();
  try {
    const a = await fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "d/x.json" });
    assert.equal(a.how, "network");
    assert.equal(a.body.toString(), '{"v":1}');
    const meta = JSON.parse(readFileSync(join(dir, "d/x.json.meta.json"), "utf8"));
    assert.equal(meta.etag, '"v1"');
    assert.equal(meta.lastModified, "Wed, 01 Jan 2025 00:00:00 GMT");
    assert.equal(readFileSync(join(dir, "d/x.json"), "utf8"), '{"v":1}');
    // no temp files left behind
    assert.deepEqual(readdirSync(join(dir, "d")).sort(), ["x.json", "x.json.meta.json"]);
    const b = await fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "d/x.json" });
    assert.equal(b.how, "cache");
    assert.equal(f.seen.length, 1);
  } finally {
    f.server.close();
  }
});

test("an old copy is revalidated with If-None-Match / If-Modified-Since; 304 only touches the time", async () => {
  const f = await fake();
  const dir = tmp();
  try {
    await fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "x.json" });
    const metaPath = join(dir, "x.json.meta.json");
    const old = JSON.parse(readFileSync(metaPath, "utf8"));
    writeFileSync(metaPath, JSON.stringify({ ...old, fetchedAt: new Date(Date.now() - 2 * 86400_000).toISOString() }));
    const r = await fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "x.json" });
    assert.equal(r.how, "revalidated");
    assert.equal(f.seen[1]!.headers["if-none-match"], '"v1"');
    assert.equal(f.seen[1]!.headers["if-modified-since"], "Wed, 01 Jan 2025 00:00:00 GMT");
    assert.ok(Date.now() - Date.parse(JSON.parse(readFileSync(metaPath, "utf8")).fetchedAt) < 60_000);
    // a changed upstream replaces the body
    f.body = '{"v":2}';
    f.etag = '"v2"';
    const c = await fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "x.json", maxAgeMs: 0 });
    assert.equal(c.how, "network");
    assert.equal(readFileSync(join(dir, "x.json"), "utf8"), '{"v":2}');
  } finally {
    f.server.close();
  }
});

test("offline: the cache is used (even stale, with a warning); without a cache a clear error", async () => {
  const f = await fake();
  const dir = tmp();
  try {
    await assert.rejects(
      fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "x.json", offline: true }),
      (e: Error) => e instanceof CacheError && /x\.json/.test(e.message) && /run once without --offline/.test(e.message),
    );
    assert.equal(f.seen.length, 0);
    await fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "x.json" });
    const r = await fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "x.json", offline: true, maxAgeMs: 0 });
    assert.equal(r.how, "cache");
    assert.match(r.warnings[0] ?? "", /offline/);
    assert.equal(f.seen.length, 1);
  } finally {
    f.server.close();
  }
});

test("network failure with a stale copy: the copy, with a warning; without one: an error naming URL and file", async () => {
  const f = await fake();
  const dir = tmp();
  try {
    await fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "x.json" });
    f.status = 500;
    const r = await fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "x.json", maxAgeMs: 0 });
    assert.equal(r.how, "stale");
    assert.match(r.warnings[0] ?? "", /HTTP 500.*cached copy/);
    await assert.rejects(
      fetchCached({ url: `${f.base}/y.json`, cacheDir: dir, name: "y.json" }),
      /y\.json: cannot fetch .*HTTP 500.*no cached copy/,
    );
  } finally {
    f.server.close();
  }
  // server gone: connection refused
  const r = await fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "x.json", maxAgeMs: 0 });
  assert.equal(r.how, "stale");
});

test("a copy of another URL is not reused; cache names cannot climb out of the folder", async () => {
  const f = await fake();
  const dir = tmp();
  try {
    await fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "x.json" });
    await assert.rejects(fetchCached({ url: `${f.base}/other/x.json`, cacheDir: dir, name: "x.json", offline: true }), /no cached copy/);
    await assert.rejects(fetchCached({ url: `${f.base}/x.json`, cacheDir: dir, name: "../escape" }), /bad cache name/);
  } finally {
    f.server.close();
  }
});

test("default cache folder honours XDG_CACHE_HOME", () => {
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "/x/cache" }), "/x/cache/flow");
  assert.match(defaultCacheDir({}), /\.cache\/flow$/);
});
