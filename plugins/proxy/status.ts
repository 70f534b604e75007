// The proxy's part of `status`: one section of status's single remote command (its `$D` is the
// docker that may be asked), read back into proxy up / auth on / TLS kind / certificate expiry.
// Auth is what a stranger gets (GET /ready without a token: 401 means on), not what a file says.
import { shQuote } from "../../lib/quote.ts";
import { GATE_CONTAINER, PROXY_CONTAINER, SITE_LABEL } from "./commands.ts";

export interface ProxyStatus {
  /** the container's state; null when there is none */
  state: string | null;
  site: string | null;
  /** GET /health through the proxy (000: nothing answered) */
  health: number | null;
  /** GET /ready through the proxy without a token: 401 when auth is on */
  unauthenticated: number | null;
  auth: "on" | "off" | "unknown";
  tls: { kind: "internal" | "public"; issuer: string; expires: string } | null;
  /** the rate gate's container state; null when there is none */
  gate: string | null;
}

export function proxyStatusCommand(timeoutSeconds = 3): string {
  const t = Math.max(1, Math.round(timeoutSeconds));
  const fmt = shQuote(`{{.State.Status}}|{{index .Config.Labels "${SITE_LABEL}"}}`);
  return [
    `pf=; if [ -n "$D" ] && [ "$D" != - ]; then pf=$($D inspect -f ${fmt} ${shQuote(PROXY_CONTAINER)} 2>/dev/null); fi`,
    `if [ -z "$pf" ]; then echo '!no-proxy'; else`,
    `  echo "container $pf"; ps=\${pf#*|}; ph=$ps; case "$ps" in *:*) ph="[$ps]";; esac`,
    `  gs=$($D inspect -f '{{.State.Status}}' ${shQuote(GATE_CONTAINER)} 2>/dev/null) && echo "gate $gs"`,
    `  pc() { curl -sk -o /dev/null --max-time ${t} --connect-to "$ph:443:127.0.0.1:443" "$@"; }`,
    `  pc -w 'health %{http_code}\\n' "https://$ph/health"`,
    // -v prints the certificate's issuer and expiry (to stderr): only those lines are kept
    `  pc -v -w 'ready %{http_code}\\n' "https://$ph/ready" 2>&1 | grep -E '^ready |^\\*\\s+(issuer|expire date):'`,
    "fi",
  ].join("\n");
}

export function parseProxyStatus(raw: string): ProxyStatus {
  const none: ProxyStatus = { state: null, site: null, health: null, unauthenticated: null, auth: "unknown", tls: null, gate: null };
  if (raw.includes("!no-proxy")) return none;
  const s = { ...none };
  let issuer = "";
  let expires = "";
  for (const line of raw.split("\n")) {
    let m: RegExpExecArray | null;
    if ((m = /^container ([^|]*)\|(.*)$/.exec(line))) [s.state, s.site] = [m[1]!, m[2]! || null];
    else if ((m = /^health (\d{3})/.exec(line))) s.health = Number(m[1]);
    else if ((m = /^gate (\S+)/.exec(line))) s.gate = m[1]!;
    else if ((m = /^ready (\d{3})/.exec(line))) s.unauthenticated = Number(m[1]);
    else if ((m = /^\*\s+issuer:\s*(.*)$/.exec(line))) issuer = m[1]!.trim();
    else if ((m = /^\*\s+expire date:\s*(.*)$/.exec(line))) expires = m[1]!.trim();
  }
  s.auth =
    s.unauthenticated === 401
      ? "on"
      : s.unauthenticated !== null && s.unauthenticated >= 200 && s.unauthenticated < 400
        ? "off"
        : "unknown";
  if (issuer || expires) {
    const when = Date.parse(expires);
    s.tls = {
      kind: /Caddy Local Authority/i.test(issuer) ? "internal" : "public",
      issuer: (/CN\s*=\s*([^,;]+)/.exec(issuer)?.[1] ?? issuer).trim(),
      expires: Number.isNaN(when) ? expires : new Date(when).toISOString(),
    };
  }
  return s;
}

/** `up auth internal-CA 11h`, `auth OFF`, `down`, `-` (no proxy). */
export function proxyCell(p: ProxyStatus | null | undefined, now = Date.now()): string {
  if (!p || p.state === null) return "-";
  if (p.state !== "running") return p.state;
  if (p.health === 0 || p.health === null) return "no answer";
  const auth = p.auth === "on" ? "auth" : p.auth === "off" ? "auth OFF" : "auth ?";
  if (!p.tls) return `up ${auth}`;
  const left = Date.parse(p.tls.expires) - now;
  const h = Math.floor(left / 3_600_000);
  const ttl = Number.isNaN(left) ? "?" : left <= 0 ? "EXPIRED" : h >= 48 ? `${Math.floor(h / 24)}d` : `${h}h`;
  return `up ${auth} ${p.tls.kind === "internal" ? "own-CA" : "public"} ${ttl}`;
}

/** The line under status's table for a proxy that leaves the API open, or is not answering. */
export function proxyNotes(p: ProxyStatus | null | undefined): string[] {
  if (!p || p.state === null) return [];
  const out: string[] = [];
  if (p.auth === "off") out.push("proxy: auth is OFF (flowfile api: { auth: false }): anyone who reaches 443 can run jobs on this GPU");
  if (p.state !== "running") out.push(`proxy: container ${PROXY_CONTAINER} is ${p.state} (flow run api:proxy)`);
  else if (!p.health) out.push("proxy: nothing answers on 443 (docker logs flow-proxy)");
  // requests with the token go through the gate: without it they get 502
  if (p.gate !== null && p.gate !== "running") out.push(`proxy: the rate gate ${GATE_CONTAINER} is ${p.gate} (flow run api:proxy)`);
  return out;
}
