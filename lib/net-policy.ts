// Where model downloads may connect. A workflow (a stranger's file) names the URLs, and both the
// user's machine (its HEAD lookups) and the GPU box (the download) fetch them: without a policy, a
// URL or a redirect could reach the cloud's metadata service, the box's own services or the LAN,
// and have the reply saved as a model. So: only public addresses, over https, unless the flowfile
// lists the host in settings.allowHosts (a local mirror, the lab). Names are checked once resolved,
// and the connection goes to the address that was checked (no second lookup a DNS rebind could
// answer differently). Pure functions, plus the two adapters that enforce them at connect time.
import { lookup as dnsLookup, ADDRCONFIG, type LookupAddress } from "node:dns";
import { isIP, type Socket } from "node:net";
import { stripUrlCredentials } from "./url-credentials.ts";

export type AddressKind = "public" | "loopback" | "private" | "link-local" | "cgnat" | "multicast" | "unspecified" | "reserved";

/** The flowfile's settings.allowHosts: host names or addresses, each with an optional port ("host", "host:port", "[v6]:port"). */
export interface NetPolicy {
  allowHosts?: readonly string[];
}

/** Thrown (or passed to a connect callback) when the policy refuses a connection; code says so to error classifiers. */
export class NetPolicyError extends Error {
  readonly code = "ERR_FLOW_NET_POLICY";
  /** where: the URL or host:port refused; reason: why, without the where */
  constructor(
    readonly where: string,
    readonly reason: string,
  ) {
    super(`refused ${where}: ${reason}`);
  }
}

// ---------- addresses ----------

const v4 = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
// [first address, prefix length, kind]; anything else is public
const V4_RANGES: [number, number, AddressKind][] = [
  [v4(0, 0, 0, 0), 8, "unspecified"],
  [v4(10, 0, 0, 0), 8, "private"],
  [v4(100, 64, 0, 0), 10, "cgnat"],
  [v4(127, 0, 0, 0), 8, "loopback"],
  [v4(169, 254, 0, 0), 16, "link-local"],
  [v4(172, 16, 0, 0), 12, "private"],
  [v4(192, 0, 0, 0), 24, "reserved"], // IETF protocol assignments
  [v4(192, 0, 2, 0), 24, "reserved"], // documentation
  [v4(192, 88, 99, 0), 24, "reserved"], // 6to4 relay
  [v4(192, 168, 0, 0), 16, "private"],
  [v4(198, 18, 0, 0), 15, "reserved"], // benchmarking
  [v4(198, 51, 100, 0), 24, "reserved"],
  [v4(203, 0, 113, 0), 24, "reserved"],
  [v4(224, 0, 0, 0), 4, "multicast"],
  [v4(240, 0, 0, 0), 4, "reserved"], // and 255.255.255.255
];

function classifyV4(n: number): AddressKind {
  for (const [base, bits, kind] of V4_RANGES) if ((n & (bits ? (~0 << (32 - bits)) >>> 0 : 0)) >>> 0 === base) return kind;
  return "public";
}

function parseV4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const p = m.slice(1).map(Number);
  return p.every((x) => x <= 255) ? v4(p[0]!, p[1]!, p[2]!, p[3]!) : undefined;
}

/** Eight 16-bit groups of an IPv6 address (zone dropped, a trailing dotted IPv4 folded in). */
function parseV6(s: string): number[] | undefined {
  let t = s.replace(/%.*$/, "");
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (dotted) {
    const n = parseV4(dotted[2]!);
    if (n === undefined) return undefined;
    t = `${dotted[1]}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = t.split("::");
  if (halves.length > 2) return undefined;
  const part = (h: string) => (h === "" ? [] : h.split(":").map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN)));
  const head = part(halves[0]!);
  const tail = halves.length === 2 ? part(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 2 ? fill < 1 : fill !== 0) || [...head, ...tail].some(Number.isNaN)) return undefined;
  return [...head, ...Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
}

function classifyV6(g: number[]): AddressKind {
  const embedded = (hi: number, lo: number) => classifyV4(((hi << 16) | lo) >>> 0);
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 8)) return "unspecified";
  if (zeros(0, 7) && g[7] === 1) return "loopback";
  if (zeros(0, 5) && g[5] === 0xffff) return embedded(g[6]!, g[7]!); // IPv4-mapped
  if (zeros(0, 6)) return "reserved"; // IPv4-compatible, deprecated
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return embedded(g[6]!, g[7]!); // NAT64
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return "private"; // local-use NAT64
  if (g[0] === 0x2002) return embedded(g[1]!, g[2]!); // 6to4
  if (g[0] === 0x2001 && (g[1] === 0 || g[1] === 0xdb8)) return "reserved"; // Teredo, documentation
  if (g[0] === 0x100 && zeros(1, 4)) return "reserved"; // discard
  if ((g[0]! & 0xfe00) === 0xfc00) return "private"; // unique local fc00::/7
  if ((g[0]! & 0xffc0) === 0xfe80) return "link-local";
  if ((g[0]! & 0xffc0) === 0xfec0) return "private"; // site-local, deprecated
  if ((g[0]! & 0xff00) === 0xff00) return "multicast";
  return (g[0]! & 0xe000) === 0x2000 ? "public" : "reserved"; // global unicast is 2000::/3
}

/**
 * What kind of address an IP literal is, in any notation a URL accepts ("2130706433", "0x7f.1",
 * "0177.0.0.1", "[::ffff:127.0.0.1]"): read the way WHATWG URL parsing and the resolver read it.
 * undefined: not an IP literal (a host name).
 */
export function classifyIp(s: string): AddressKind | undefined {
  let t = s.trim().replace(/^\[(.*)\]$/, "$1");
  if (!isIP(t) && /^[0-9a-fx.]+$/i.test(t)) {
    // numeric IPv4 forms: let the URL parser normalise them, as it does for every URL we fetch
    try {
      t = new URL(`http://${t}/`).hostname;
    } catch {
      return undefined;
    }
  }
  const n = parseV4(t);
  if (n !== undefined) return classifyV4(n);
  if (isIP(t) !== 6) return undefined;
  const g = parseV6(t);
  return g ? classifyV6(g) : undefined;
}

// ---------- allowHosts ----------

/** Why an allowHosts entry is not a host or host:port; undefined when it is one. */
export function allowEntryProblem(entry: string): string | undefined {
  return parseEntry(entry) ? undefined : `${JSON.stringify(entry)} is not a host name or address, with an optional :port`;
}

function parseEntry(entry: string): { host: string; port?: number } | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s/?#@:[\]\\]+)(?::(\d{1,5}))?$/.exec(entry.trim());
  if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) return undefined;
  try {
    // the same normalisation URL hosts get: case, IDN, numeric IPv4 forms, IPv6 spelling
    return { host: new URL(`http://${m[1]}/`).hostname, ...(m[2] !== undefined ? { port: Number(m[2]) } : {}) };
  } catch {
    return undefined;
  }
}

/** Brackets around IPv6, as URL.hostname spells it, so a host compares equal however it arrived. */
function urlHost(host: string): string {
  const h = host.toLowerCase().replace(/\.$/, "");
  return isIP(h) === 6 ? `[${h}]` : h;
}

const defaultPort = (protocol: string) => (protocol === "https:" ? 443 : 80);

/** The host (and port) is listed in allowHosts. Matched by name as written in the URL, never by what it resolves to. */
export function isAllowed(p: NetPolicy, hostname: string, port: number): boolean {
  const h = urlHost(hostname);
  return (p.allowHosts ?? []).some((e) => {
    const a = parseEntry(e);
    return !!a && a.host === h && (a.port === undefined || a.port === port);
  });
}

// ---------- checks ----------

const hint = "(list the host in the flowfile's settings.allowHosts to allow it)";
const kindText = (k: AddressKind) => (/^[aeiou]/.test(k) ? `an ${k}` : `a ${k}`);

export interface Target {
  protocol: string;
  hostname: string;
  /** "" or undefined: the protocol's default */
  port?: string | number;
}

const portOf = (t: Target) => Number(t.port) || defaultPort(t.protocol);
const hostPort = (t: Target) => `${urlHost(t.hostname)}${t.port ? `:${t.port}` : ""}`;

/**
 * Why a request to url must not go out, decided before any name is resolved: another scheme than
 * http(s); plain http, or an IP literal that is not public, to a host allowHosts does not list.
 * undefined: it may go (a name must still resolve to public addresses: dialTargets checks that).
 */
export function urlProblem(p: NetPolicy, url: string | URL): string | undefined {
  let t: URL;
  try {
    t = typeof url === "string" ? new URL(url) : url;
  } catch {
    return "not a URL";
  }
  if (t.protocol !== "https:" && t.protocol !== "http:") return `scheme ${t.protocol} is not http(s)`;
  return targetProblem(p, t);
}

/** urlProblem as a message naming the URL (credentials masked): "refused <url>: <why>". */
export function checkUrl(p: NetPolicy, url: string | URL): string | undefined {
  const why = urlProblem(p, url);
  return why && `refused ${stripUrlCredentials(String(url), "mask")}: ${why}`;
}

function targetProblem(p: NetPolicy, t: Target): string | undefined {
  if (isAllowed(p, t.hostname, portOf(t))) return undefined;
  const kind = classifyIp(t.hostname);
  if (kind && kind !== "public") return `${urlHost(t.hostname)} is ${kindText(kind)} address ${hint}`;
  if (t.protocol === "http:") return `plain http to ${hostPort(t)}, which settings.allowHosts does not list`;
  return undefined;
}

/** Why a host that resolved to these addresses must not be reached (every one must be public); undefined when it may. */
export function addressProblem(p: NetPolicy, t: Target, addresses: readonly string[]): string | undefined {
  if (isAllowed(p, t.hostname, portOf(t))) return undefined;
  if (!addresses.length) return "no address to check";
  for (const a of addresses) {
    const kind = classifyIp(a) ?? "reserved";
    if (kind === "public") continue;
    const what = `${kindText(kind)} address ${hint}`;
    return classifyIp(t.hostname) ? `${a} is ${what}` : `${urlHost(t.hostname)} resolves to ${a}, ${what}`;
  }
  return undefined;
}

// ---------- enforcement at connect time ----------

export type LookupAll = (hostname: string, done: (err: Error | null, addresses: string[]) => void) => void;

const systemLookup: LookupAll = (hostname, done) =>
  dnsLookup(hostname, { all: true, hints: ADDRCONFIG }, (err, list: LookupAddress[]) => done(err, err ? [] : list.map((a) => a.address)));

/**
 * What to dial for a connection to t, in order: the host itself when allowHosts lists it; else the
 * checked addresses (the socket then goes to an address that was checked, not to a second lookup
 * a DNS rebind could answer differently). A NetPolicyError when the policy refuses it.
 */
export function dialTargets(
  p: NetPolicy,
  t: Target,
  done: (err: Error | null, hosts: string[]) => void,
  lookup: LookupAll = systemLookup,
): void {
  const bare = t.hostname.replace(/^\[(.*)\]$/, "$1");
  const why = targetProblem(p, t);
  if (why) return done(new NetPolicyError(hostPort(t), why), []);
  if (isAllowed(p, t.hostname, portOf(t)) || isIP(bare)) return done(null, [bare]);
  lookup(bare, (err, addresses) => {
    if (err) return done(err, []);
    const bad = addressProblem(p, t, addresses);
    done(bad ? new NetPolicyError(hostPort(t), bad) : null, bad ? [] : addresses);
  });
}

/** Why the socket's peer (the address actually connected to) is not one this connection may reach. */
export function peerProblem(p: NetPolicy, t: Target, socket: Pick<Socket, "remoteAddress">): string | undefined {
  return addressProblem(p, t, socket.remoteAddress ? [socket.remoteAddress] : []);
}

/** undici's connector shape (buildConnector's result), declared here so lib/ does not import undici. */
export type Connector<S extends Socket = Socket> = (
  opts: { hostname: string; host?: string; protocol: string; port: string; servername?: string | null; [k: string]: unknown },
  callback: (err: Error | null, socket: S | null) => void,
) => unknown;

/**
 * An undici connector that dials only what the policy allows: each address dialTargets gives, in
 * turn until one answers, with the TLS name kept; then the peer is checked once more.
 */
export function guardConnector<S extends Socket>(p: NetPolicy, connect: Connector<S>, lookup?: LookupAll): Connector<S> {
  return (opts, callback) => {
    const t: Target = { protocol: opts.protocol, hostname: opts.hostname, port: opts.port };
    dialTargets(
      p,
      t,
      (err, hosts) => {
        if (err) return callback(err, null);
        // the TLS name stays the URL's host name when the dial goes to one of its addresses
        const servername = opts.servername || (isIP(opts.hostname.replace(/^\[|\]$/g, "")) ? null : opts.hostname);
        const attempt = (i: number, last?: Error): unknown => {
          if (i >= hosts.length) return callback(last ?? new NetPolicyError(hostPort(t), "no address answered"), null);
          return connect({ ...opts, hostname: hosts[i]!, servername }, (e, socket) => {
            if (e || !socket) return attempt(i + 1, e ?? undefined);
            const bad = peerProblem(p, t, socket);
            if (!bad) return callback(null, socket);
            socket.destroy();
            callback(new NetPolicyError(hostPort(t), bad), null);
          });
        };
        attempt(0);
      },
      lookup,
    );
  };
}
