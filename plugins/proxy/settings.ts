// What the proxy on one box is, from the plugin's options and the host's `api` entry: its site
// (a domain with a public certificate, else the box's address with Caddy's internal CA), whether
// a token guards it, and the limits. The flowfile's word for a host: `api: { auth, domain, email }`.
import type { TaskContext } from "../../lib/index.ts";
import { isIP } from "node:net";
import type { ProxySettings } from "./caddyfile.ts";
import { DEFAULT_PROXY_IMAGE } from "./commands.ts";

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
}

export const DEFAULTS = { maxBodyMb: 100, timeoutSeconds: 3600, upstream: "127.0.0.1:3000", readyTimeoutSeconds: 60 } as const;

export type Site = ProxySettings["site"];

/** The name clients call this box by: its `api.domain`, else the address flow reaches it at. */
export function siteOf(host: Pick<TaskContext["host"], "address" | "api" | "name">): Site {
  const api = host.api;
  if (api?.domain) return { kind: "domain", name: api.domain.toLowerCase(), ...(api.email ? { email: api.email } : {}) };
  const address = host.address.replace(/^\[|\]$/g, "");
  return { kind: "address", name: address };
}

export const authOn = (host: Pick<TaskContext["host"], "api">): boolean => host.api?.auth !== false;

export const isIpSite = (s: Site): boolean => isIP(s.name) !== 0;

export function proxySettings(o: ApiProxyOptions, site: Site, authHash: string | null): ProxySettings {
  return {
    site,
    upstream: o.upstream ?? DEFAULTS.upstream,
    authHash,
    maxBodyMb: o.maxBodyMb ?? DEFAULTS.maxBodyMb,
    timeoutSeconds: o.timeoutSeconds ?? DEFAULTS.timeoutSeconds,
  };
}
