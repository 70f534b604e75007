// What the proxy on one box is, from the plugin's options and the host's `api` entry: its site
// (a domain with a public certificate, else the box's address with Caddy's internal CA), whether
// a token guards it, and the limits. The flowfile's word for a host: `api: { auth, domain, email }`.
import type { TaskContext } from "../../lib/index.ts";
import { resolveHop } from "../../lib/transport/ssh-route.ts";
import type { ProxySettings } from "./caddyfile.ts";

export interface ApiProxyOptions {
  /** Caddy's image (default the official one, pinned) */
  image?: string;
  /** request bodies above this many MB get 413 (default 100, comfyui-api's own MAX_BODY_SIZE_MB default) */
  maxBodyMb?: number;
  /** seconds a request may wait for comfyui-api's answer (default 3600: a synchronous video job) */
  timeoutSeconds?: number;
  /** where comfyui-api listens on the box (default 127.0.0.1:3000, where comfyui:up publishes it) */
  upstream?: string;
  /** seconds to wait for the proxy to answer after it is (re)created */
  readyTimeoutSeconds?: number;
  /**
   * requests a minute per token (on average; `burst` at once), over that 429 with Retry-After.
   * Caddy's core has no rate limiter: a small gate (tasks/rate-gate.ts) runs beside it. false: none
   */
  rateLimit?: { perMinute: number; burst?: number } | false;
  /** the image the rate gate runs in (any with `node` on its PATH; default the official Node image, pinned) */
  gateImage?: string;
}

export const DEFAULTS = {
  maxBodyMb: 100,
  timeoutSeconds: 3600,
  upstream: "127.0.0.1:3000",
  readyTimeoutSeconds: 60,
  rateLimit: { perMinute: 600, burst: 60 },
  /** where the rate gate listens on the box */
  gate: "127.0.0.1:3090",
} as const;

/** The rate the gate keeps, or null for none. */
export function rateOf(o: ApiProxyOptions): { perMinute: number; burst: number } | null {
  if (o.rateLimit === false) return null;
  const r = o.rateLimit ?? DEFAULTS.rateLimit;
  return { perMinute: r.perMinute, burst: r.burst ?? Math.max(1, Math.ceil(r.perMinute / 10)) };
}

export type Site = ProxySettings["site"];

/**
 * The name clients call this box by: its `api.domain`, else the address flow reaches it at (an
 * ~/.ssh/config alias as its HostName, as ssh would dial it; `hostName` resolves one).
 */
export function siteOf(
  host: Pick<TaskContext["host"], "address" | "api" | "name">,
  hostName: (address: string) => string = (a) => a,
): Site {
  const api = host.api;
  if (api?.domain) return { kind: "domain", name: api.domain.toLowerCase(), ...(api.email ? { email: api.email } : {}) };
  const address = hostName(host.address).replace(/^\[|\]$/g, "");
  return { kind: "address", name: address };
}

/** siteOf for a task's host, an ssh alias resolved through the ssh config flow uses. */
export function siteFor(ctx: Pick<TaskContext, "host" | "flow">): Site {
  const s = ctx.flow.settings.sshConfigFile;
  const route = { label: ctx.host.name, sshConfigFile: s === undefined ? `${process.env.HOME ?? ""}/.ssh/config` : s };
  return siteOf(ctx.host, (address) => {
    try {
      return resolveHop(route, address, ctx.host).hop.host;
    } catch {
      return address; // an unreadable ssh config: the address as written
    }
  });
}

export const authOn = (host: Pick<TaskContext["host"], "api">): boolean => host.api?.auth !== false;

export function proxySettings(o: ApiProxyOptions, site: Site, authHash: string | null): ProxySettings {
  return {
    site,
    upstream: o.upstream ?? DEFAULTS.upstream,
    authHash,
    maxBodyMb: o.maxBodyMb ?? DEFAULTS.maxBodyMb,
    timeoutSeconds: o.timeoutSeconds ?? DEFAULTS.timeoutSeconds,
    // the rate is per token: without auth there is none to count by
    rateGate: authHash && rateOf(o) ? DEFAULTS.gate : null,
  };
}
