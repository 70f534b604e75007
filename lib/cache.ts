// A small on-disk HTTP cache for reference data fetched at run time (maps, lists, specs).
// One body file plus a `.meta.json` beside it; refreshed with a conditional request when older
// than maxAgeMs; usable offline; a stale copy beats a failed network with a warning.
import { mkdir, readFile, rename, writeFile, unlink } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import { randomBytes } from "node:crypto";
import { fetch } from "undici";

export const DAY_MS = 24 * 60 * 60 * 1000;

export interface CacheMeta {
  url: string;
  /** ISO time of the last successful fetch or 304 revalidation */
  fetchedAt: string;
  etag?: string;
  lastModified?: string;
  size: number;
}

export interface FetchCachedOptions {
  url: string;
  /** cache key, a relative path such as "comfy-data/abc/extension-node-map.json" */
  name: string;
  cacheDir?: string;
  /** refresh when the copy is older than this (default: one day) */
  maxAgeMs?: number;
  /** never touch the network: use the cache or fail */
  offline?: boolean;
  /** per request, default 30 s */
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export interface FetchCachedResult {
  body: Buffer;
  /** the cached body's path */
  path: string;
  meta: CacheMeta;
  /** "network": downloaded now; "revalidated": 304; "cache": fresh copy used as is; "stale": network failed, old copy used */
  how: "network" | "revalidated" | "cache" | "stale";
  /** things the caller should show the user (stale data used) */
  warnings: string[];
}

export class CacheError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CacheError";
  }
}

/** `$XDG_CACHE_HOME/flow`, else `~/.cache/flow`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith("/") ? env.XDG_CACHE_HOME : join(homedir(), ".cache");
  return join(base, "flow");
}

/** Paths of a cache entry; the name may not climb out of the cache folder. */
export function cachePaths(cacheDir: string, name: string): { body: string; meta: string } {
  const root = resolve(cacheDir);
  const body = resolve(root, name);
  if (!name || name.includes("\0") || !body.startsWith(root + sep)) throw new CacheError(`bad cache name ${JSON.stringify(name)}`);
  return { body, meta: `${body}.meta.json` };
}

/** Write through a temporary file and rename, so a reader never sees half a file. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode?: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await writeFile(tmp, data, mode === undefined ? undefined : { mode });
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

async function readCached(paths: { body: string; meta: string }, url: string): Promise<{ body: Buffer; meta: CacheMeta } | undefined> {
  let meta: CacheMeta;
  try {
    meta = JSON.parse(await readFile(paths.meta, "utf8")) as CacheMeta;
  } catch {
    return undefined;
  }
  // A copy of another URL (the base URL was changed) is not this file.
  if (meta.url !== url || typeof meta.fetchedAt !== "string") return undefined;
  try {
    const body = await readFile(paths.body);
    if (body.length !== meta.size) return undefined;
    return { body, meta };
  } catch {
    return undefined;
  }
}

const ageOf = (meta: CacheMeta, now: number) => now - Date.parse(meta.fetchedAt);
const describeAge = (ms: number) =>
  ms < 3600_000 ? `${Math.round(ms / 60_000)} min` : ms < 2 * DAY_MS ? `${Math.round(ms / 3600_000)} h` : `${Math.round(ms / DAY_MS)} days`;

/** Fetch `url` through the cache. Throws CacheError with a message naming the file and the fix. */
export async function fetchCached(opts: FetchCachedOptions): Promise<FetchCachedResult> {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const maxAgeMs = opts.maxAgeMs ?? DAY_MS;
  const paths = cachePaths(cacheDir, opts.name);
  const cached = await readCached(paths, opts.url);
  const now = Date.now();
  const label = opts.name.split("/").pop();

  if (opts.offline) {
    if (cached) {
      const age = ageOf(cached.meta, now);
      const warnings = age > maxAgeMs ? [`${label}: offline, using a copy ${describeAge(age)} old (${paths.body})`] : [];
      return { body: cached.body, path: paths.body, meta: cached.meta, how: "cache", warnings };
    }
    throw new CacheError(`${label}: --offline, and no cached copy of ${opts.url} at ${paths.body}; run once without --offline to fetch it`);
  }
  if (cached && ageOf(cached.meta, now) >= 0 && ageOf(cached.meta, now) < maxAgeMs)
    return { body: cached.body, path: paths.body, meta: cached.meta, how: "cache", warnings: [] };

  const headers: Record<string, string> = { "user-agent": "flow (ComfyUI fleet tool)", ...opts.headers };
  if (cached?.meta.etag) headers["if-none-match"] = cached.meta.etag;
  if (cached?.meta.lastModified) headers["if-modified-since"] = cached.meta.lastModified;

  let failure: string;
  try {
    const res = await fetch(opts.url, { headers, signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000) });
    if (res.status === 304 && cached) {
      await res.body?.cancel();
      const meta: CacheMeta = { ...cached.meta, fetchedAt: new Date().toISOString() };
      await writeFileAtomic(paths.meta, JSON.stringify(meta, null, 2) + "\n");
      return { body: cached.body, path: paths.body, meta, how: "revalidated", warnings: [] };
    }
    if (res.ok) {
      const body = Buffer.from(await res.arrayBuffer());
      const meta: CacheMeta = {
        url: opts.url,
        fetchedAt: new Date().toISOString(),
        ...(res.headers.get("etag") ? { etag: res.headers.get("etag")! } : {}),
        ...(res.headers.get("last-modified") ? { lastModified: res.headers.get("last-modified")! } : {}),
        size: body.length,
      };
      // Body first: a crash between the two leaves old metadata, which only forces a refresh.
      await writeFileAtomic(paths.body, body);
      await writeFileAtomic(paths.meta, JSON.stringify(meta, null, 2) + "\n");
      return { body, path: paths.body, meta, how: "network", warnings: [] };
    }
    await res.body?.cancel();
    failure = `HTTP ${res.status} ${res.statusText}`.trim();
  } catch (err) {
    const e = err as Error & { cause?: Error };
    failure = e.name === "TimeoutError" ? "timed out" : (e.cause?.message ?? e.message);
  }
  if (cached) {
    const age = describeAge(ageOf(cached.meta, now));
    return {
      body: cached.body,
      path: paths.body,
      meta: cached.meta,
      how: "stale",
      warnings: [`${label}: cannot refresh from ${opts.url} (${failure}); using the cached copy, ${age} old`],
    };
  }
  throw new CacheError(`${label}: cannot fetch ${opts.url} (${failure}) and there is no cached copy at ${paths.body}`);
}
