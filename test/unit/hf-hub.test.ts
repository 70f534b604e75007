// plugins/shared/hf.ts and plugins/shared/http.ts against the fake Hub: @huggingface/hub's calls
// (paths-info, tree, whoami-v2) through the guarded fetch, the Hub's access rules, the token's scope.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { hfClient, hfHubUrl, HfError, verifyHfToken, type HfOptions } from "../../plugins/shared/hf.ts";
import { guardedFetch, HttpError, policyFetch } from "../../plugins/shared/http.ts";
import { seeded, sha256, startFakeHub, type FakeHub } from "../support/fake-hub.ts";

const TOKEN = "hf_good_token";
const OTHER = "hf_other_user";
const FAST = { tries: 3, baseMs: 1, maxMs: 5 };
const FILES = { a: seeded("a", 3000), b: seeded("b", 2000), cfg: Buffer.from('{"x":1}\n'), d: seeded("d", 100) };
let hub: FakeHub;
let base: HfOptions;

before(async () => {
  hub = await startFakeHub({
    token: TOKEN,
    tokens: [OTHER],
    treePageSize: 2,
    hf: {
      "org/models": {
        files: { "a.safetensors": FILES.a, "sub/b.safetensors": FILES.b, "sub/deep/d.gguf": FILES.d, "config.json": FILES.cfg },
        plain: ["config.json"],
      },
      "org/gated": { gated: true, grantedTo: [TOKEN], files: { "g.safetensors": FILES.a } },
      "org/private": { private: true, grantedTo: [TOKEN], files: { "p.safetensors": FILES.b } },
      "datasets/org/data": { files: { "x/y.bin": FILES.d } },
    },
  });
  base = { hubUrl: hub.url, allowHosts: [new URL(hub.url).host], retry: FAST };
});
after(async () => {
  await hub?.close();
});

const file = (repo: string, path: string, revision = "main") => ({ repo, revision, path });
const rejectsWith = (p: Promise<unknown>, kind: HfError["kind"], status?: number) =>
  assert.rejects(p, (e: unknown) => e instanceof HfError && e.kind === kind && (status === undefined || e.status === status));

test("hfHubUrl: FLOW_HF_URL, then HF_ENDPOINT, then huggingface.co; no trailing slash", () => {
  assert.equal(hfHubUrl({}), "https://huggingface.co");
  assert.equal(hfHubUrl({ HF_ENDPOINT: "https://hf-mirror.example/" }), "https://hf-mirror.example");
  assert.equal(hfHubUrl({ HF_ENDPOINT: "https://hf-mirror.example", FLOW_HF_URL: "http://127.0.0.1:9/hf//" }), "http://127.0.0.1:9/hf");
});

test("fileFacts: size and sha256 (the LFS oid) from paths-info, before any byte moves; a git file has no sha256", async () => {
  hub.resetStats();
  const c = hfClient({ ...base, token: TOKEN });
  assert.deepEqual(await c.fileFacts(file("org/models", "a.safetensors")), { size: FILES.a.length, sha256: sha256(FILES.a) });
  assert.deepEqual(await c.fileFacts(file("org/models", "sub/b.safetensors")), { size: FILES.b.length, sha256: sha256(FILES.b) });
  assert.deepEqual(await c.fileFacts(file("org/models", "config.json")), { size: FILES.cfg.length });
  assert.deepEqual(await c.fileFacts(file("datasets/org/data", "x/y.bin", "v1.0")), { size: FILES.d.length, sha256: sha256(FILES.d) });
  await rejectsWith(c.fileFacts(file("org/models", "nope.safetensors")), "missing");
  await rejectsWith(c.fileFacts(file("org/models", "sub")), "missing"); // a folder is no file
  assert.equal(hub.stats.requests, 0, "a byte was fetched");
  assert.equal(hub.stats.resolves, 0);
  const asked = /^POST \/api\/(models\/org\/models|datasets\/org\/data)\/paths-info\/(main|v1\.0)$/;
  assert.ok(
    hub.stats.seen.every((s) => asked.test(s)),
    hub.stats.seen.join(", "),
  );
});

test("gated and private: the Hub's answers become 'auth' (401 without a token, 403 not granted); no CDN request", async () => {
  hub.resetStats();
  const anon = hfClient(base);
  const granted = hfClient({ ...base, token: TOKEN });
  const other = hfClient({ ...base, token: OTHER });
  const g = file("org/gated", "g.safetensors");
  // a gated repository lists its files to anyone: paths-info answers, the download does not
  assert.deepEqual(await anon.fileFacts(g), { size: FILES.a.length, sha256: sha256(FILES.a) });
  await rejectsWith(anon.checkAccess(g), "auth", 401);
  await rejectsWith(other.checkAccess(g), "auth", 403);
  await granted.checkAccess(g);
  const p = file("org/private", "p.safetensors");
  await rejectsWith(anon.fileFacts(p), "auth", 401);
  await rejectsWith(anon.checkAccess(p), "auth", 401);
  await rejectsWith(other.fileFacts(p), "missing", 404);
  assert.deepEqual(await granted.fileFacts(p), { size: FILES.b.length, sha256: sha256(FILES.b) });
  await granted.checkAccess(p);
  assert.equal(hub.stats.requests, 0);
  assert.deepEqual(hub.stats.cdnAuth, []);
});

test("the token goes only to the named repository's paths-info, tree and resolve paths, and to whoami-v2", async () => {
  hub.resetStats();
  const c = hfClient({ ...base, token: TOKEN });
  await c.fileFacts(file("org/models", "a.safetensors"));
  await c.checkAccess(file("org/models", "a.safetensors"));
  await c.listFiles("org/models");
  await c.whoAmI();
  const allowed = [
    /^POST \/api\/models\/org\/models\/paths-info\/main$/,
    /^HEAD \/org\/models\/resolve\/main\/a\.safetensors$/,
    /^GET \/api\/models\/org\/models\/tree\/main$/,
    /^GET \/api\/whoami-v2$/,
  ];
  assert.ok(hub.stats.withAuth.length >= 4);
  for (const s of hub.stats.withAuth)
    assert.ok(
      allowed.some((r) => r.test(s)),
      `the token went to ${s}`,
    );
  assert.equal(hub.stats.requests, 0);
});

test("listFiles: every file of a repository over the tree API's pages, with sizes and LFS sha256s; a folder alone", async () => {
  hub.resetStats();
  const c = hfClient(base);
  const all = await c.listFiles("org/models");
  assert.deepEqual(all.map((f) => f.path).sort(), ["a.safetensors", "config.json", "sub/b.safetensors", "sub/deep/d.gguf"]);
  const b = { path: "sub/b.safetensors", size: FILES.b.length, sha256: sha256(FILES.b) };
  assert.deepEqual(
    all.find((f) => f.path === "sub/b.safetensors"),
    b,
  );
  assert.deepEqual(
    all.find((f) => f.path === "config.json"),
    { path: "config.json", size: FILES.cfg.length },
  );
  assert.ok(hub.stats.seen.filter((s) => s.includes("/tree/")).length > 2, "pages were followed");
  assert.deepEqual(
    (await c.listFiles("org/models", { path: "sub", recursive: false })).map((f) => f.path),
    ["sub/b.safetensors"],
  );
  assert.deepEqual((await c.listFiles("org/models", { path: "sub" })).map((f) => f.path).sort(), ["sub/b.safetensors", "sub/deep/d.gguf"]);
  assert.deepEqual(
    (await c.listFiles("datasets/org/data")).map((f) => f.path),
    ["x/y.bin"],
  );
  await rejectsWith(c.listFiles("org/private"), "auth", 401);
  await rejectsWith(c.listFiles("org/../x"), "other");
  await rejectsWith(c.listFiles("org/models", { path: "../../api" }), "other");
});

test("whoAmI: a good token names its account; a wrong one fails naming HF_TOKEN, never its value; asked once per run", async () => {
  assert.equal(await hfClient({ ...base, token: TOKEN }).whoAmI(), "flow-tester");
  const wrong = "hf_wrong_" + Math.random().toString(36).slice(2);
  await assert.rejects(hfClient({ ...base, token: wrong }).whoAmI(), (e: unknown) => {
    assert.ok(e instanceof HfError && e.kind === "auth" && e.status === 401);
    assert.match(e.message, /Hugging Face refused HF_TOKEN \(HTTP 401 from .*\/api\/whoami-v2\): the token is wrong, expired or revoked/);
    assert.ok(!e.message.includes(wrong));
    return true;
  });
  await assert.rejects(hfClient({ ...base, token: "not-a-token" }).whoAmI(), (e: unknown) => {
    assert.ok(e instanceof HfError && e.kind === "auth");
    assert.match(e.message, /HF_TOKEN is not a Hugging Face access token/);
    assert.ok(!e.message.includes("not-a-token"));
    return true;
  });
  hub.resetStats();
  const [a, b] = await Promise.all([verifyHfToken({ ...base, token: TOKEN }), verifyHfToken({ ...base, token: TOKEN })]);
  assert.equal(a, "flow-tester");
  assert.equal(b, "flow-tester");
  assert.equal(await verifyHfToken({ ...base, token: TOKEN }), "flow-tester");
  assert.deepEqual(hub.stats.seen, ["GET /api/whoami-v2"]);
});

test("429 from the Hub: tried again after Retry-After (lib/retry.ts); limited after every try: an error naming the status", async () => {
  hub.resetStats();
  hub.faults.hubFail = { count: 2, status: 429, retryAfter: 0 };
  const c = hfClient({ ...base, token: TOKEN });
  assert.deepEqual(await c.fileFacts(file("org/models", "a.safetensors")), { size: FILES.a.length, sha256: sha256(FILES.a) });
  assert.equal(hub.stats.seen.filter((s) => s.includes("paths-info")).length, 3);
  hub.faults.hubFail = { count: 100, status: 429, retryAfter: 0 };
  const limited = (e: unknown) => e instanceof HfError && /HTTP 429 \(after 3 tries\)/.test(e.message);
  await assert.rejects(c.checkAccess(file("org/models", "a.safetensors")), limited);
  await assert.rejects(c.whoAmI(), (e: unknown) => e instanceof HfError && e.kind !== "auth" && /cannot check HF_TOKEN/.test(e.message));
  hub.faults.hubFail = undefined;
});

test("the address policy holds for the Hub too: a hub on loopback without allowHosts is refused before any connection", async () => {
  hub.resetStats();
  const before = hub.stats.connections;
  const c = hfClient({ hubUrl: hub.url, token: TOKEN, retry: FAST });
  await rejectsWith(c.fileFacts(file("org/models", "a.safetensors")), "refused");
  await rejectsWith(c.checkAccess(file("org/models", "a.safetensors")), "refused");
  await assert.rejects(c.whoAmI(), /refused .*127\.0\.0\.1.*allowHosts/);
  assert.equal(hub.stats.connections, before);
  assert.deepEqual(hub.stats.seen, []);
});

test("guardedFetch: a credential follows neither a redirect to another origin nor a URL outside its scope", async () => {
  const seen: string[] = [];
  const serve = async (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    const srv = createServer((req, res) => {
      seen.push(`${req.headers.host?.split(":")[0]} ${req.url} ${req.headers.authorization ?? "-"}`);
      handler(req, res);
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    return { srv, port: (srv.address() as AddressInfo).port };
  };
  const other = await serve((_req, res) => res.writeHead(200, { "content-length": 2 }).end("ok"));
  const first = await serve((req, res) => {
    if (req.url === "/away") return void res.writeHead(302, { location: `http://localhost:${other.port}/there` }).end();
    if (req.url === "/home") return void res.writeHead(302, { location: "/api/x" }).end();
    res.writeHead(200, { "content-length": 2 }).end("ok");
  });
  try {
    const opts = { allowHosts: [`127.0.0.1:${first.port}`, `localhost:${other.port}`], retry: FAST };
    const auth = { authorization: "Bearer hf_secret" };
    assert.equal((await guardedFetch(`http://127.0.0.1:${first.port}/away`, { headers: auth }, opts)).status, 200);
    assert.deepEqual(seen.splice(0), [`127.0.0.1 /away Bearer hf_secret`, `localhost /there -`]);
    const scope = (u: URL) => u.pathname.startsWith("/api/");
    await guardedFetch(`http://127.0.0.1:${first.port}/home`, { headers: auth }, { ...opts, credentialScope: scope });
    assert.deepEqual(seen.splice(0), [`127.0.0.1 /home -`, `127.0.0.1 /api/x Bearer hf_secret`]);
    // the shape libraries take: headers as a Headers object, a text body
    const f = policyFetch({ ...opts, credentialScope: scope });
    const res = await f(`http://127.0.0.1:${first.port}/api/y`, { method: "POST", headers: new Headers(auth), body: "{}" });
    assert.equal(res.status, 200);
    assert.deepEqual(seen.splice(0), [`127.0.0.1 /api/y Bearer hf_secret`]);
    await assert.rejects(guardedFetch(`http://127.0.0.1:${other.port}/x`, {}, opts), (e: unknown) => e instanceof HttpError && e.refused);
    assert.deepEqual(seen, []);
  } finally {
    first.srv.close();
    other.srv.close();
  }
});
