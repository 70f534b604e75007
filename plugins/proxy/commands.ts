// Shell text for the proxy on a box, as pure functions (every value through shQuote): where its
// files live, its container, the config written and reloaded in one go, and what it reads back.
import { shQuote } from "../../lib/quote.ts";
import type { ContainerSpec } from "../../lib/commands/docker.ts";

/** Root's own folders: the Caddyfile (0600, holds the token's hash) and Caddy's state (its CA's key). */
export const PROXY_ETC = "/etc/flow-proxy";
export const PROXY_STATE = "/var/lib/flow-proxy";
export const PROXY_CONTAINER = "flow-proxy";
/** Caddy's official image, pinned; the flowfile's `apiProxy({ image })` swaps it (the lab's is built from Debian's caddy). */
export const DEFAULT_PROXY_IMAGE = "docker.io/library/caddy:2.10.2";

const CONFIG = `${PROXY_ETC}/Caddyfile`;
const NEXT = ".Caddyfile.next";
/** Caddy's internal CA root, under its data folder (XDG_DATA_HOME=/data in the image). */
export const CA_ROOT = `${PROXY_STATE}/data/caddy/pki/authorities/local/root.crt`;
/** Labels on the container: what status reports without reading root's files. */
export const SITE_LABEL = "flow.proxy.site";

/**
 * The container: host networking, so Caddy binds 80/443 on the box and reaches comfyui-api on the
 * box's loopback (3000 is published there only); the config folder read-only, so a file renamed
 * into it is what Caddy reads on a reload.
 */
export function proxySpec(image: string, site: string): ContainerSpec {
  return {
    name: PROXY_CONTAINER,
    image,
    network: "host",
    ports: [],
    volumes: [
      { host: PROXY_ETC, container: "/etc/caddy", readOnly: true },
      { host: `${PROXY_STATE}/data`, container: "/data" },
      { host: `${PROXY_STATE}/config`, container: "/config" },
    ],
    env: {},
    restart: "unless-stopped",
    labels: { [SITE_LABEL]: site },
  };
}

export const GATE_CONTAINER = "flow-proxy-gate";
/** The rate gate's script on the box (no secret in it: world-readable inside root's folder). */
export const GATE_SCRIPT = `${PROXY_ETC}/rate-gate.mjs`;
/** The official Node image, pinned: the gate needs nothing but node. */
export const DEFAULT_GATE_IMAGE = "docker.io/library/node:20.19.5-alpine";

/**
 * The rate gate's container: host networking (it listens on the box's loopback, where Caddy's
 * forward_auth dials it), the script read-only; its sha256 is a label, so a new script re-creates it.
 */
export function gateSpec(image: string, listen: string, rate: { perMinute: number; burst: number }, scriptSha: string): ContainerSpec {
  return {
    name: GATE_CONTAINER,
    image,
    network: "host",
    command: ["node", "/gate/rate-gate.mjs", "--listen", listen, "--per-minute", String(rate.perMinute), "--burst", String(rate.burst)],
    ports: [],
    volumes: [{ host: GATE_SCRIPT, container: "/gate/rate-gate.mjs", readOnly: true }],
    env: {},
    restart: "unless-stopped",
    labels: { "flow.proxy.gate-sha256": scriptSha.slice(0, 16) },
  };
}

/** Root's folders for the proxy, 0700 (the Caddyfile holds the token's hash; the state, the CA's key). */
export function installConfigDirCommand(): string {
  return `install -d -m 700 ${[PROXY_ETC, PROXY_STATE, `${PROXY_STATE}/data`, `${PROXY_STATE}/config`].map(shQuote).join(" ")}`;
}

/** Prints the sha256 of a file, or `none`. Run as root. */
export function fileHashCommand(path: string): string {
  return `if [ -f ${shQuote(path)} ]; then sha256sum < ${shQuote(path)} | cut -d' ' -f1; else echo none; fi`;
}

/** Removes a container when there is one; prints `removed` then. */
export function removeContainerCommand(name: string): string {
  return `if docker inspect ${shQuote(name)} >/dev/null 2>&1; then docker rm -f ${shQuote(name)} >/dev/null && echo removed; fi`;
}

/** Prints the sha256 of the Caddyfile in place, or `none`. Run as root. */
export function configHashCommand(): string {
  return fileHashCommand(CONFIG);
}

/**
 * stdin: the new Caddyfile. Written beside the old one (0600, root's folder). A running Caddy must
 * load it (a graceful reload: requests in flight finish on the old config) before it replaces the
 * old one; without one, Caddy's own validation (a throwaway container of `image`, no network)
 * must pass. Either way a config Caddy refuses leaves the box as it was. Run as root.
 */
export function installConfigCommand(image: string): string {
  const next = `${PROXY_ETC}/${NEXT}`;
  const name = shQuote(PROXY_CONTAINER);
  const inside = shQuote(`/etc/caddy/${NEXT}`);
  return [
    "set -e",
    "umask 077",
    installConfigDirCommand(),
    `next=${shQuote(next)}`,
    `trap 'rm -f "$next"' EXIT`,
    `cat > "$next"`,
    `chmod 600 "$next"`,
    `if [ "$(docker inspect -f '{{.State.Status}}' ${name} 2>/dev/null)" = running ]; then`,
    `  check() { docker exec ${name} caddy reload --config ${inside} --adapter caddyfile; }`,
    "else",
    `  check() { docker run --rm --network none -v ${shQuote(`${PROXY_ETC}:/etc/caddy:ro`)} ${shQuote(image)} ` +
      `caddy adapt --config ${inside} --adapter caddyfile --validate >/dev/null; }`,
    "fi",
    `if ! out=$(check 2>&1); then printf '%s\\n' "$out" | tail -n 5 >&2; exit 1; fi`,
    `mv -f "$next" ${shQuote(CONFIG)}`,
    "trap - EXIT",
  ].join("\n");
}

/** The Caddyfile as the box has it (root's; the token's hash is in it). */
export function readConfigCommand(): string {
  return `cat ${shQuote(CONFIG)} 2>/dev/null || true`;
}

/** Prints Caddy's internal CA root certificate (public; its key stays on the box). Run as root. */
export function caRootCommand(): string {
  return `cat ${shQuote(CA_ROOT)}`;
}

/**
 * From the box itself: GET `path` through the proxy as a client calling `site` would (SNI and Host
 * are the site's, the connection goes to the box's own 443). Prints `<http code> <seconds>`;
 * `000` when nothing answered. No token is sent: what a stranger gets.
 */
export function probeCommand(site: string, path: string, timeoutSeconds = 5): string {
  const host = site.includes(":") ? `[${site}]` : site;
  return (
    `curl -sk -o /dev/null -w '%{http_code} %{time_total}\\n' --max-time ${Math.max(1, Math.floor(timeoutSeconds))} ` +
    `--connect-to ${shQuote(`${host}:443:127.0.0.1:443`)} ${shQuote(`https://${host}${path}`)} || true`
  );
}

/**
 * What answers on the box's own non-loopback addresses at these ports: one line per
 * address:port, `open` or `closed`. (A port published on 127.0.0.1 only is closed there.)
 */
export function exposureCommand(ports: number[]): string {
  return [
    `addrs=$(hostname -I 2>/dev/null || ip -o addr show | awk '{print $4}' | cut -d/ -f1)`,
    `for a in $addrs; do case "$a" in 127.*|::1|fe80:*) continue;; esac`,
    `  for p in ${ports.map((p) => shQuote(p)).join(" ")}; do`,
    `    h=$a; case "$a" in *:*) h="[$a]";; esac`,
    `    curl -s -o /dev/null --max-time 2 "http://$h:$p/" 2>/dev/null; r=$?`,
    `    if [ $r = 7 ] || [ $r = 28 ]; then echo "$a $p closed"; else echo "$a $p open"; fi`,
    "  done",
    "done",
  ].join("\n");
}

export function parseExposure(out: string): { address: string; port: number; open: boolean }[] {
  return out
    .split("\n")
    .map((l) => l.trim().split(" "))
    .filter((p) => p.length === 3 && (p[2] === "open" || p[2] === "closed"))
    .map(([address, port, state]) => ({ address: address!, port: Number(port), open: state === "open" }));
}
