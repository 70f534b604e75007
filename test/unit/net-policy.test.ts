// The address policy both sides of a model download use (lib/net-policy.ts): which addresses are
// public, which URLs may be requested, and what a connection may dial.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import {
  NetPolicyError,
  addressProblem,
  checkUrl,
  classifyIp,
  dialTargets,
  guardConnector,
  isAllowed,
  urlProblem,
  type AddressKind,
  type Connector,
  type LookupAll,
} from "../../lib/net-policy.ts";

const TABLE: Record<AddressKind, string[]> = {
  loopback: [
    "127.0.0.1",
    "127.1",
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "0x7f.1",
    "127.255.255.254",
    "::1",
    "[::1]",
    "0:0:0:0:0:0:0:1",
    "::ffff:127.0.0.1",
    "[::ffff:127.0.0.1]",
    "::ffff:7f00:1",
    "2002:7f00:1::1", // 6to4 of 127.0.0.1
  ],
  "link-local": [
    "169.254.169.254",
    "169.254.0.1",
    "fe80::1",
    "fe80::1%eth0",
    "[fe80::abcd]",
    "febf::1",
    "64:ff9b::a9fe:a9fe",
    "::ffff:169.254.169.254",
  ],
  private: [
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "::ffff:10.1.2.3",
    "64:ff9b:1::1",
  ],
  cgnat: ["100.64.0.1", "100.127.255.255", "::ffff:100.100.100.100"],
  unspecified: ["0.0.0.0", "0", "0.1.2.3", "::", "[::]"],
  multicast: ["224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1"],
  reserved: [
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "192.0.0.170",
    "2001:db8::1",
    "::127.0.0.1",
    "100::1",
    "4000::1",
  ],
  public: [
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "169.253.255.255",
    "192.169.0.1",
    "11.0.0.1",
    "223.255.255.255",
    "2606:4700::1111",
    "[2a00:1450:4001::200e]",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
    "0x08080808",
    "134744072",
  ],
};

test("classifyIp: every notation a URL accepts, IPv4 inside IPv6 (mapped, NAT64, 6to4) classified by its IPv4", () => {
  for (const [kind, addresses] of Object.entries(TABLE)) for (const a of addresses) assert.equal(classifyIp(a), kind, a);
  for (const notIp of [
    "localhost",
    "example.com",
    "huggingface.co",
    "1.2.3.4.example",
    "",
    "256.0.0.1",
    "::ffff:999.0.0.1",
    "a@127.0.0.1",
    "127.0.0.1/x",
  ]) {
    assert.equal(classifyIp(notIp), undefined, notIp);
  }
});

test("the URL forms of those addresses are refused before any lookup; a public https host is not", () => {
  const p = { allowHosts: [] };
  for (const [kind, addresses] of Object.entries(TABLE)) {
    for (const a of addresses) {
      if (a.includes("%")) continue; // a zone id is not URL syntax
      const host = a.includes(":") && !a.startsWith("[") ? `[${a}]` : a;
      const url = `https://${host}/m.safetensors`;
      const why = urlProblem(p, url);
      if (kind === "public") assert.equal(why, undefined, url);
      else assert.match(why ?? "", new RegExp(`is an? ${kind} address`), url);
    }
  }
  assert.equal(urlProblem(p, "https://huggingface.co/x"), undefined);
  assert.match(urlProblem(p, "http://huggingface.co/x")!, /plain http to huggingface\.co/);
  assert.match(urlProblem(p, "ftp://example.com/x")!, /scheme ftp: is not http\(s\)/);
  assert.match(urlProblem(p, "file:///etc/passwd")!, /scheme file:/);
  assert.equal(urlProblem(p, "not a url"), "not a URL");
  // the message names the URL, with a credential in it masked
  assert.equal(
    checkUrl(p, "https://10.0.0.2/m.safetensors?token=abc&x=1"),
    "refused https://10.0.0.2/m.safetensors?token=***&x=1: 10.0.0.2 is a private address (list " +
      "the host in the flowfile's settings.allowHosts to allow it)",
  );
});

test("allowHosts: matched by host as URLs write it, with the port when one is given; never by what a name resolves to", () => {
  const p = { allowHosts: ["127.0.0.1:8080", "mirror.lan", "[::1]:9000", "LOCALHOST:3000", "2130706433:81"] };
  assert.equal(isAllowed(p, "127.0.0.1", 8080), true);
  assert.equal(isAllowed(p, "127.0.0.1", 8081), false, "another port");
  assert.equal(isAllowed(p, "localhost", 8080), false, "another name for the same address");
  assert.equal(isAllowed(p, "mirror.lan", 80), true);
  assert.equal(isAllowed(p, "mirror.lan", 443), true);
  assert.equal(isAllowed(p, "MIRROR.lan.", 1), true, "case and a trailing dot do not matter");
  assert.equal(isAllowed(p, "[::1]", 9000), true);
  assert.equal(isAllowed(p, "::1", 9000), true, "undici hands IPv6 over without brackets");
  assert.equal(isAllowed(p, "localhost", 3000), true);
  assert.equal(isAllowed(p, "127.0.0.1", 81), true, "an entry in another notation is normalised as URLs are");
  assert.equal(urlProblem(p, "http://127.0.0.1:8080/x"), undefined, "plain http to a listed host");
  assert.match(urlProblem(p, "http://127.0.0.1:8081/x")!, /127\.0\.0\.1 is a loopback address/);
  assert.match(urlProblem(p, "http://mirror.example:8080/x")!, /plain http to mirror\.example:8080/);
  assert.match(urlProblem(p, "https://127.0.0.1:8081/x")!, /loopback/);
  assert.equal(urlProblem(p, "http://[::1]:9000/x"), undefined);
  assert.equal(urlProblem({}, "https://example.com/"), undefined);
});

const lookupOf =
  (table: Record<string, string[]>, calls: string[] = []): LookupAll =>
  (host, done) => {
    calls.push(host);
    if (table[host]) done(null, table[host]);
    else done(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" }), []);
  };
const dial = (p: Parameters<typeof dialTargets>[0], url: string, lookup: LookupAll) =>
  new Promise<string[]>((ok, fail) => dialTargets(p, new URL(url), (err, hosts) => (err ? fail(err) : ok(hosts)), lookup));

test("dialTargets: a name is dialled at the addresses checked, never looked up again; one inside address refuses it", async () => {
  const calls: string[] = [];
  const lookup = lookupOf(
    {
      "cdn.example": ["93.184.216.34", "2606:2800:220:1::1"],
      "rebind.example": ["93.184.216.34", "169.254.169.254"],
      "lan.example": ["192.168.0.9"],
    },
    calls,
  );
  const p = { allowHosts: ["lan.example:8443"] };
  assert.deepEqual(await dial(p, "https://cdn.example/x", lookup), ["93.184.216.34", "2606:2800:220:1::1"]);
  await assert.rejects(
    dial(p, "https://rebind.example/x", lookup),
    (e: unknown) => e instanceof NetPolicyError && /rebind\.example resolves to 169\.254\.169\.254, a link-local address/.test(e.message),
  );
  await assert.rejects(dial(p, "https://lan.example/x", lookup), /lan\.example resolves to 192\.168\.0\.9, a private address/);
  // listed: dialled by name (the system resolves it), no check of what it resolves to
  assert.deepEqual(await dial(p, "https://lan.example:8443/x", lookup), ["lan.example"]);
  // IP literals are not looked up; refused ones not either
  assert.deepEqual(await dial(p, "https://[2606:4700::1111]/x", lookup), ["2606:4700::1111"]);
  await assert.rejects(dial(p, "https://0x7f000001/x", lookup), /127\.0\.0\.1 is a loopback address/);
  await assert.rejects(dial(p, "http://cdn.example/x", lookup), /plain http/);
  await assert.rejects(dial(p, "https://nowhere.example/x", lookup), /ENOTFOUND/);
  assert.deepEqual(calls, ["cdn.example", "rebind.example", "lan.example", "nowhere.example"]);
  assert.match(addressProblem({}, new URL("https://x.example"), [])!, /no address/);
});

/** A connect function that records what it was asked to dial and hands back sockets with a given peer. */
function fakeConnect(peers: Record<string, string | Error>) {
  const dialled: { hostname: string; servername: unknown }[] = [];
  const destroyed: string[] = [];
  const connect: Connector = (opts, cb) => {
    dialled.push({ hostname: opts.hostname, servername: opts.servername });
    const peer = peers[opts.hostname];
    if (peer instanceof Error || peer === undefined) return void setImmediate(() => cb(peer ?? new Error("ECONNREFUSED"), null));
    const sock = Object.assign(new EventEmitter(), {
      remoteAddress: peer,
      destroy: () => void destroyed.push(opts.hostname),
    }) as unknown as Socket;
    setImmediate(() => cb(null, sock));
  };
  return { connect, dialled, destroyed };
}
const connectVia = (c: Connector, url: string) =>
  new Promise<Socket>((ok, fail) => {
    const u = new URL(url);
    c({ protocol: u.protocol, hostname: u.hostname.replace(/^\[|\]$/g, ""), host: u.host, port: u.port, servername: null }, (err, s) =>
      err ? fail(err) : ok(s!),
    );
  });

test("guardConnector: dials the checked addresses in turn with the TLS name kept, checks the peer it reached", async () => {
  const lookup = lookupOf({ "cdn.example": ["2606:2800:220:1::1", "93.184.216.34"], "twisted.example": ["93.184.216.35"] });
  // the IPv6 address refuses; the IPv4 one answers; twisted.example's socket ends up at a private peer
  const f = fakeConnect({ "93.184.216.34": "93.184.216.34", "93.184.216.35": "10.0.0.5", "mirror.lan": "192.168.1.2" });
  const c = guardConnector({ allowHosts: ["mirror.lan"] }, f.connect, lookup);
  const s = await connectVia(c, "https://cdn.example/x");
  assert.equal(s.remoteAddress, "93.184.216.34");
  assert.deepEqual(f.dialled, [
    { hostname: "2606:2800:220:1::1", servername: "cdn.example" },
    { hostname: "93.184.216.34", servername: "cdn.example" },
  ]);
  await assert.rejects(connectVia(c, "https://twisted.example/x"), /10\.0\.0\.5, a private address/);
  assert.deepEqual(f.destroyed, ["93.184.216.35"], "the socket to a refused peer is closed");
  await assert.rejects(connectVia(c, "https://169.254.169.254/"), /link-local/);
  assert.equal(f.dialled.length, 3, "a refused literal is never dialled");
  assert.equal((await connectVia(c, "http://mirror.lan/x")).remoteAddress, "192.168.1.2", "a listed host may be anywhere");
});
