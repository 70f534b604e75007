// The proxy's pure parts: the Caddyfile (checked by the real Caddy's own adapter when Debian's
// caddy is installed, as CI installs it), the token and its hash, the .env it is kept in, and
// status's reading of what the box answers.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { caddyfile, type ProxySettings } from "../../../plugins/proxy/caddyfile.ts";
import { hashMatches, newToken, tokenFingerprint, tokenHash, tokenKey, tokenSecret } from "../../../plugins/proxy/token.ts";
import { readToken, saveToken } from "../../../plugins/proxy/token-store.ts";
import { parseProxyStatus, proxyCell, proxyNotes } from "../../../plugins/proxy/status.ts";
import { parseExposure, proxySpec } from "../../../plugins/proxy/commands.ts";
import { siteFor, siteOf } from "../../../plugins/proxy/settings.ts";
import type { TaskContext } from "../../../lib/task.ts";
import { runArgv } from "../../../lib/commands/docker.ts";
import { loadEnv, redactor } from "../../../lib/secrets.ts";

const CADDY = "/usr/bin/caddy";
const base: ProxySettings = {
  site: { kind: "address", name: "203.0.113.7" },
  upstream: "127.0.0.1:3000",
  authHash: tokenHash(newToken()),
  maxBodyMb: 100,
  timeoutSeconds: 3600,
  rateGate: "127.0.0.1:3090",
};

/** Caddy's own reading of the Caddyfile (its JSON config), or null when Debian's caddy is not installed. */
function adapt(text: string): Record<string, any> | null {
  if (!existsSync(CADDY)) return null;
  const dir = mkdtempSync(join(tmpdir(), "flow-caddyfile-"));
  writeFileSync(join(dir, "Caddyfile"), text);
  const r = spawnSync(CADDY, ["adapt", "--config", join(dir, "Caddyfile"), "--adapter", "caddyfile"], {
    env: { ...process.env, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
  });
  assert.equal(r.status, 0, `caddy adapt refused:\n${r.stderr}\n${text}`);
  return JSON.parse(r.stdout.toString());
}

const find = (v: unknown, pred: (o: Record<string, any>) => boolean): Record<string, any>[] => {
  const out: Record<string, any>[] = [];
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === "object") {
      if (pred(x as Record<string, any>)) out.push(x as Record<string, any>);
      Object.values(x).forEach(walk);
    }
  };
  walk(v);
  return out;
};

describe("the Caddyfile", () => {
  test("an address site: internal CA, default SNI, the token's hash (never a token), limits, /health open", (t) => {
    const text = caddyfile(base);
    assert.match(text, /^https:\/\/203\.0\.113\.7 \{$/m);
    assert.match(text, /^\ttls internal$/m);
    assert.match(text, /default_sni 203\.0\.113\.7/);
    assert.match(text, /max_size 100MiB/);
    assert.match(text, /response_header_timeout 3600s/);
    assert.ok(text.includes(base.authHash!));
    const json = adapt(text);
    if (!json) return t.skip(`${CADDY} not installed`);
    const auth = find(json, (o) => o.handler === "authentication");
    assert.equal(auth.length, 1);
    assert.equal(auth[0]!.providers.http_basic.accounts[0].password, base.authHash);
    assert.equal(auth[0]!.providers.http_basic.hash.algorithm, "bcrypt");
    // Caddy caches a checked hash: a request does not pay bcrypt each time
    assert.ok("hash_cache" in auth[0]!.providers.http_basic);
    assert.deepEqual(find(json, (o) => o.handler === "request_body")[0]!.max_size, 100 * 1024 * 1024);
    const proxies = find(json, (o) => o.handler === "reverse_proxy" && o.upstreams?.[0]?.dial === "127.0.0.1:3000");
    assert.equal(proxies.length, 2, "one for /health, one behind the token");
    // the rate gate: asked with the token's user (never the token), its 2xx lets the request on
    const gate = find(json, (o) => o.handler === "reverse_proxy" && o.upstreams?.[0]?.dial === "127.0.0.1:3090");
    assert.equal(gate.length, 1);
    assert.deepEqual(gate[0]!.headers.request.set["X-Flow-Token"], ["{http.auth.user.id}"]);
    assert.ok(gate[0]!.handle_response.length >= 1, "forward_auth answers with the gate's response unless 2xx");
    // the guarded route, in Caddy's order: Bearer made Basic, the token checked, the header dropped,
    // the gate asked, then comfyui-api
    const guarded = find(json, (o) => Array.isArray(o.routes) && o.routes.some((r: any) => r.handle?.[0]?.handler === "authentication"));
    assert.equal(guarded.length, 1);
    const steps = guarded[0]!.routes.map((r: any) => r.handle[0]);
    assert.deepEqual(
      steps.map((h: any) => h.handler),
      ["headers", "authentication", "headers", "reverse_proxy", "reverse_proxy"],
    );
    assert.deepEqual(steps[0].request.set.Authorization, ["Basic {http.regexp.bearer.1}"]);
    assert.deepEqual(steps[2].request.delete, ["Authorization"]);
    assert.deepEqual(steps[3].upstreams, [{ dial: "127.0.0.1:3090" }]);
    assert.deepEqual(steps[4].upstreams, [{ dial: "127.0.0.1:3000" }]);
    for (const p of proxies) {
      assert.deepEqual(p.upstreams, [{ dial: "127.0.0.1:3000" }]);
      assert.equal(p.transport.response_header_timeout, 3600 * 1e9);
    }
    // /health's route is matched before the guarded one, and only for GET
    const health = find(json, (o) => Array.isArray(o.match) && o.match.some((m: any) => m.path?.includes("/health")));
    assert.deepEqual(health[0]!.match[0].method, ["GET"]);
    assert.deepEqual(find(json, (o) => o.module === "internal").length > 0, true);
    // the token goes nowhere further, on /health either (a client may send it everywhere); /health is /health
    assert.equal(find(json, (o) => o.handler === "headers" && o.request?.delete?.includes("Authorization")).length, 2);
    assert.equal(find(json, (o) => o.handler === "rewrite" && o.uri === "/health").length, 1);
    // the admin API is a socket in Caddy's 0700 config folder, not localhost:2019 on the host's network
    assert.equal(json.admin.listen, "unix//config/caddy-admin.sock");
  });

  test("a domain: ACME (no tls internal), the email given; auth off: no authentication at all", (t) => {
    const text = caddyfile({
      ...base,
      site: { kind: "domain", name: "gpu1.example.com", email: "ops@example.com" },
      authHash: null,
      rateGate: null,
    });
    assert.match(text, /^gpu1\.example\.com \{$/m);
    assert.doesNotMatch(text, /tls internal/);
    assert.doesNotMatch(text, /basicauth/);
    assert.match(text, /email ops@example\.com/);
    const json = adapt(text);
    if (!json) return t.skip(`${CADDY} not installed`);
    assert.equal(find(json, (o) => o.handler === "authentication").length, 0);
    assert.equal(find(json, (o) => o.module === "internal").length, 0);
  });

  test("an IPv6 address is bracketed; a name that could break out of a Caddyfile token is refused", (t) => {
    const text = caddyfile({ ...base, site: { kind: "address", name: "2001:db8::7" } });
    assert.match(text, /^https:\/\/\[2001:db8::7\] \{$/m);
    assert.match(text, /default_sni 2001:db8::7$/m);
    if (adapt(text) === null) t.diagnostic("caddy not installed: the IPv6 form is not adapted");
    for (const name of ["a b", "x{", "x}\nimport /etc/passwd", 'a"b', "a\tb", ""])
      assert.throws(() => caddyfile({ ...base, site: { kind: "address", name } }), /cannot go into a Caddyfile/, JSON.stringify(name));
    assert.throws(() => caddyfile({ ...base, upstream: "127.0.0.1:3000 {" }), /upstream/);
    assert.throws(() => caddyfile({ ...base, maxBodyMb: -1 }), /apiProxy\(\{ maxBodyMb \}\) must be between 1 and/);
    assert.throws(() => caddyfile({ ...base, timeoutSeconds: Number.NaN }), /timeoutSeconds/);
  });

  test("the site comes from the host: its api.domain, else its address", () => {
    assert.deepEqual(siteOf({ name: "g", address: "1.2.3.4" }), { kind: "address", name: "1.2.3.4" });
    assert.deepEqual(siteOf({ name: "g", address: "[2001:db8::1]" }), { kind: "address", name: "2001:db8::1" });
    // an ~/.ssh/config alias is the HostName ssh dials: the certificate must carry what clients call
    const dir = mkdtempSync(join(tmpdir(), "flow-sshcfg-"));
    writeFileSync(join(dir, "config"), "Host gpu1\n  HostName 198.51.100.9\n  User ubuntu\n");
    const flow = { settings: { sshConfigFile: join(dir, "config") } } as unknown as TaskContext["flow"];
    assert.deepEqual(siteFor({ host: { name: "gpu1", address: "gpu1", groups: [], data: {} }, flow }), {
      kind: "address",
      name: "198.51.100.9",
    });
    assert.deepEqual(siteFor({ host: { name: "g", address: "[2001:db8::1]", groups: [], data: {} }, flow }).name, "2001:db8::1");
    assert.deepEqual(siteOf({ name: "g", address: "1.2.3.4", api: { auth: true, domain: "GPU1.example.com" } }), {
      kind: "domain",
      name: "gpu1.example.com",
    });
  });

  test("the container: host network, config read-only, no token anywhere in its argv", () => {
    const argv = runArgv(proxySpec("caddy:2", "1.2.3.4"));
    assert.deepEqual(argv.slice(argv.indexOf("--network"), argv.indexOf("--network") + 2), ["--network", "host"]);
    assert.ok(argv.includes("/etc/flow-proxy:/etc/caddy:ro"));
    assert.ok(!argv.some((a) => a.startsWith("-p")));
  });
});

describe("the token", () => {
  test("base64 of flow:<256-bit secret>; its bcrypt hash is the same every time and checks only it", () => {
    const a = newToken();
    const b = newToken();
    assert.notEqual(a, b);
    assert.match(Buffer.from(a, "base64").toString(), /^flow:[A-Za-z0-9_-]{43}$/);
    assert.ok(tokenSecret(a));
    assert.equal(tokenHash(a), tokenHash(a), "deterministic: a second run writes the same config");
    assert.notEqual(tokenHash(a), tokenHash(b));
    assert.match(tokenHash(a), /^\$2a\$04\$[./A-Za-z0-9]{53}$/);
    assert.ok(hashMatches(a, tokenHash(a)));
    assert.ok(!hashMatches(b, tokenHash(a)));
    // what Caddy does with the Basic header the Bearer token becomes: compare "<secret>" with the hash
    assert.ok(bcrypt.compareSync(Buffer.from(a, "base64").toString().slice(5), tokenHash(a)));
    assert.ok(!tokenFingerprint(a).includes(a.slice(0, 8)));
  });

  test("text that is not one of ours is refused, not hashed", () => {
    for (const bad of ["", "Zm9vOmJhcg==", Buffer.from("flow:short").toString("base64"), "flow:abc", "not base64!"]) {
      assert.equal(tokenSecret(bad), null, bad);
      assert.throws(() => tokenHash(bad), /not a flow API token/);
    }
    assert.equal(tokenKey("gpu-1.lab"), "FLOW_API_TOKEN_GPU_1_LAB");
  });

  test("kept in .env (0600, other lines kept, replaced in place), read back, and a secret from then on", () => {
    const dir = mkdtempSync(join(tmpdir(), "flow-token-"));
    writeFileSync(join(dir, ".env"), "# mine\nHF_TOKEN=hf_abc\nFLOW_API_TOKEN_GPU1=old\n", { mode: 0o644 });
    const t1 = newToken();
    saveToken(dir, "gpu1", t1);
    const text = readFileSync(join(dir, ".env"), "utf8");
    assert.equal(statSync(join(dir, ".env")).mode & 0o777, 0o600);
    assert.match(text, /^# mine$/m);
    assert.match(text, /^HF_TOKEN=hf_abc$/m);
    assert.equal(text.match(/FLOW_API_TOKEN_GPU1=/g)?.length, 1);
    assert.equal(loadEnv(dir, {}).FLOW_API_TOKEN_GPU1, t1);
    assert.equal(readToken(dir, "gpu1")?.token, t1);
    assert.equal(redactor.redact(`token ${t1}`), "token ***");
    assert.equal(readToken(dir, "gpu2"), null);
    // a hand-edited value is named, not used
    writeFileSync(join(dir, ".env"), "FLOW_API_TOKEN_GPU3=hunter2\n");
    assert.throws(() => readToken(dir, "gpu3"), /FLOW_API_TOKEN_GPU3 is not a flow API token/);
  });

  test("the environment wins over .env, and a rotation that .env cannot carry is refused, named", () => {
    const dir = mkdtempSync(join(tmpdir(), "flow-token-"));
    const t1 = newToken();
    process.env.FLOW_API_TOKEN_ENVHOST = t1;
    try {
      assert.deepEqual(readToken(dir, "envhost"), { token: t1, key: "FLOW_API_TOKEN_ENVHOST", from: "environment" });
      assert.throws(() => saveToken(dir, "envhost", newToken()), /FLOW_API_TOKEN_ENVHOST is set in the environment/);
    } finally {
      delete process.env.FLOW_API_TOKEN_ENVHOST;
    }
  });
});

describe("status's view of the proxy", () => {
  // curl 7.88.1 (OpenSSL) against Caddy 2.6.2 with `tls internal`, as proxyStatusCommand filters it
  const up = [
    "container running|203.0.113.7",
    "health 200",
    "*  expire date: Nov 30 19:05:56 2026 GMT",
    "*  issuer: CN=Caddy Local Authority - ECC Intermediate",
    "ready 401",
  ].join("\n");

  test("up, auth on (a stranger gets 401), Caddy's own CA, hours left", () => {
    const p = parseProxyStatus(up);
    assert.deepEqual(p, {
      state: "running",
      site: "203.0.113.7",
      health: 200,
      unauthenticated: 401,
      auth: "on",
      tls: { kind: "internal", issuer: "Caddy Local Authority - ECC Intermediate", expires: "2026-11-30T19:05:56.000Z" },
      gate: null,
    });
    const gateDown = parseProxyStatus(up.replace("health 200", "health 200\ngate exited"));
    assert.equal(gateDown.gate, "exited");
    assert.match(proxyNotes(gateDown)[0]!, /the rate gate flow-proxy-gate is exited/);
    assert.equal(proxyCell(p, Date.parse("2026-11-30T07:05:56Z")), "up auth own-CA 12h");
    assert.deepEqual(proxyNotes(p), []);
  });

  test("auth off is a red line; no proxy is '-'; a stopped one says so; a public certificate in days", () => {
    const off = parseProxyStatus(up.replace("ready 401", "ready 200"));
    assert.equal(off.auth, "off");
    assert.match(proxyCell(off, Date.parse("2026-11-30T07:00:00Z")), /^up auth OFF own-CA/);
    assert.match(proxyNotes(off)[0]!, /auth is OFF/);
    assert.equal(proxyCell(parseProxyStatus("!no-proxy")), "-");
    const stopped = parseProxyStatus("container exited|1.2.3.4\nhealth 000\nready 000");
    assert.equal(proxyCell(stopped), "exited");
    assert.match(proxyNotes(stopped)[0]!, /is exited/);
    const pub = parseProxyStatus(
      "container running|gpu1.example.com\nhealth 200\n" +
        "*  expire date: Feb 28 10:00:00 2027 GMT\n*  issuer: C=US; O=Let's Encrypt; CN=R11\nready 401",
    );
    assert.equal(pub.tls?.kind, "public");
    assert.equal(pub.tls?.issuer, "R11");
    assert.equal(proxyCell(pub, Date.parse("2026-11-30T10:00:00Z")), "up auth public 90d");
  });

  test("what answers on the box's own addresses", () => {
    assert.deepEqual(parseExposure("172.17.0.2 3000 closed\n172.17.0.2 8188 open\njunk\n"), [
      { address: "172.17.0.2", port: 3000, open: false },
      { address: "172.17.0.2", port: 8188, open: true },
    ]);
  });
});
