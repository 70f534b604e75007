// The Caddyfile flow writes for a box, as a pure function of typed settings. Caddy stores only a
// bcrypt hash of the token (basic_auth is the one credential check in Caddy's core), so the token
// is base64("flow:<secret>"): the config turns `Authorization: Bearer <token>` into the Basic
// header that form makes, and Caddy's bcrypt compare (constant time) does the rest. GET /health
// stays open so load balancers and uptime checks need no secret.

/** The user name inside every token (see token.ts). */
export const TOKEN_USER = "flow";

export interface ProxySettings {
  /**
   * The names a client calls the box by: a domain gets a public certificate from Caddy (ACME);
   * otherwise the box's address, signed by Caddy's internal CA (api:ca hands out its root).
   */
  site: { kind: "domain"; name: string; email?: string } | { kind: "address"; name: string };
  /** where comfyui-api listens, as the proxy dials it (the host's loopback) */
  upstream: string;
  /** the token's bcrypt hash; null: no auth (the flowfile said `api: { auth: false }`) */
  authHash: string | null;
  /** request bodies above this are refused with 413 (comfyui-api's MAX_BODY_SIZE_MB default is 100) */
  maxBodyMb: number;
  /** how long a request may wait for comfyui-api's answer (a synchronous video job takes many minutes) */
  timeoutSeconds: number;
  /**
   * the rate gate (tasks/rate-gate.ts) on the box's loopback, asked before every authenticated
   * request with the token's user; null: no per-token rate
   */
  rateGate: string | null;
}

/** Caddyfile values are whitespace-separated tokens: refuse anything that could start another one. */
function token(what: string, v: string): string {
  if (!/^[A-Za-z0-9._:\-[\]@$/+=]+$/.test(v)) throw new Error(`${what} ${JSON.stringify(v)} cannot go into a Caddyfile`);
  return v;
}

/** A whole number in range, or a clear error naming the setting. */
function whole(what: string, v: number, min: number, max: number): number {
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`apiProxy({ ${what} }) must be between ${min} and ${max} (got ${v})`);
  return Math.floor(v);
}

/** An IPv6 address as a site address needs brackets. */
const siteAddress = (name: string) => (name.includes(":") && !name.startsWith("[") ? `[${name}]` : name);

export function caddyfile(s: ProxySettings): string {
  const name = token("site name", s.site.name);
  const maxBodyMb = whole("maxBodyMb", s.maxBodyMb, 1, 1 << 20);
  const timeout = whole("timeoutSeconds", s.timeoutSeconds, 1, 7 * 86400);
  const global = [
    "{",
    // Caddy runs with the host's network: its admin API on a socket in root's 0700 folder, not on
    // localhost:2019 where any local process could read the config or load another
    "\tadmin unix//config/caddy-admin.sock",
    // the box's trust store is not ours to change; api:ca hands the root to clients
    "\tskip_install_trust",
    // a client that calls an IP address sends no SNI: give it this site's certificate
    `\tdefault_sni ${name.replace(/^\[|\]$/g, "")}`,
    ...(s.site.kind === "domain" && s.site.email ? [`\temail ${token("email", s.site.email)}`] : []),
    "\tservers {",
    // headers must come quickly; a body may be large; the answer may take as long as the job
    "\t\ttimeouts {",
    "\t\t\tread_header 30s",
    `\t\t\tread_body ${Math.max(60, Math.ceil(maxBodyMb / 2))}s`,
    "\t\t\tidle 5m",
    "\t\t}",
    "\t}",
    "}",
  ];
  const proxy = [
    `reverse_proxy ${token("upstream", s.upstream)} {`,
    // comfyui-api answers a synchronous POST only when the job is done
    "\ttransport http {",
    `\t\tresponse_header_timeout ${timeout}s`,
    "\t}",
    "}",
  ];
  const indent = (lines: string[], n: number) => lines.map((l) => "\t".repeat(n) + l);
  const guarded = s.authHash
    ? [
        "route {",
        `\t@bearer header_regexp bearer Authorization "^Bearer ([A-Za-z0-9+/]+={0,2})$"`,
        `\trequest_header @bearer Authorization "Basic {re.bearer.1}"`,
        "\tbasicauth {",
        `\t\t${TOKEN_USER} ${token("token hash", s.authHash)}`,
        "\t}",
        // comfyui-api (and the rate gate) have no use for the token: it does not travel further
        "\trequest_header -Authorization",
        ...(s.rateGate
          ? [
              `\tforward_auth ${token("rate gate", s.rateGate)} {`,
              "\t\turi /check",
              "\t\theader_up X-Flow-Token {http.auth.user.id}",
              "\t}",
            ]
          : []),
        ...indent(proxy, 1),
        "}",
      ]
    : proxy;
  const site = [
    `${s.site.kind === "domain" ? name : `https://${siteAddress(name)}`} {`,
    ...(s.site.kind === "address" ? ["\ttls internal"] : []),
    "\trequest_body {",
    `\t\tmax_size ${maxBodyMb}MiB`,
    "\t}",
    "\t@health {",
    "\t\tmethod GET",
    "\t\tpath /health",
    "\t}",
    "\thandle @health {",
    // the open check reaches comfyui-api's /health only (the matcher also takes /HEALTH, //health),
    // and a client that sends its token everywhere does not hand it on
    "\t\trewrite * /health",
    "\t\trequest_header -Authorization",
    ...indent(proxy, 2),
    "\t}",
    "\thandle {",
    ...indent(guarded, 2),
    "\t}",
    "}",
  ];
  return ["# Written by flow (api:proxy) from the flowfile; a change here is replaced on the next run.", ...global, "", ...site, ""].join(
    "\n",
  );
}
