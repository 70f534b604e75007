// Hugging Face, asked from the user's machine (where HF_TOKEN is) with @huggingface/hub: a file's
// size and LFS sha256 (an LFS file's oid is its sha256, so the expected hash is known before any
// byte moves), whether the token may download it (gated or private), whether the token is good at
// all (whoAmI), and a repository's files. Every request goes through ./http.ts (the address
// policy, retries); a repository, revision and path are checked by lib/comfy/hf-url.ts before
// anything is sent, and the token goes only to that repository's API and resolve paths (and to
// /api/whoami-v2): the fetch drops it anywhere else, redirects included.
import { TaskError, type PreflightContext } from "../../lib/task.ts";
import { HubApiError, listFiles, pathsInfo, whoAmI } from "@huggingface/hub";
import { hfPartsProblem, hfResolveUrl, type HfFile } from "../../lib/comfy/hf-url.ts";
import type { RetryPolicy } from "../../lib/retry.ts";
import { guardedFetch, HttpError, policyFetch, type HttpOptions } from "./http.ts";

export type { HfFile } from "../../lib/comfy/hf-url.ts";

export const DEFAULT_HF_URL = "https://huggingface.co";

/** FLOW_HF_URL (tests, mirrors), then HF_ENDPOINT (the Hub's own variable), then huggingface.co; no trailing "/". */
export function hfHubUrl(env: NodeJS.ProcessEnv): string {
  return (env.FLOW_HF_URL || env.HF_ENDPOINT || DEFAULT_HF_URL).replace(/\/+$/, "");
}

export interface HfOptions {
  hubUrl: string;
  token?: string;
  /** settings.allowHosts */
  allowHosts?: readonly string[];
  timeoutMs?: number;
  retry?: RetryPolicy;
}

/**
 * auth: 401/403 (gated, private, or a token refused); missing: no such repository, revision or
 * file; refused: the address policy said no; other: anything else (HTTP status, network).
 */
export type HfErrorKind = "auth" | "missing" | "refused" | "other";

export class HfError extends Error {
  constructor(
    message: string,
    readonly kind: HfErrorKind,
    readonly status?: number,
  ) {
    super(message);
    this.name = "HfError";
  }
}

export interface HfFileFacts {
  size: number;
  /** the LFS object's sha256; undefined for a file kept in git itself (its oid is a git blob sha1) */
  sha256?: string;
}

export interface HfRepoFile {
  path: string;
  size: number;
  sha256?: string;
}

export interface HfClient {
  readonly hubUrl: string;
  /** the URL a download of this file starts at (the token goes there, nowhere else) */
  resolveUrl(f: HfFile): string;
  /** size and sha256 from the repository's paths-info; HfError "missing" when there is no such file */
  fileFacts(f: HfFile): Promise<HfFileFacts>;
  /** the download would be let in: a HEAD on the resolve URL (Hugging Face's own answer, no byte from its CDN) */
  checkAccess(f: HfFile): Promise<void>;
  /** the account HF_TOKEN belongs to; HfError "auth" naming HF_TOKEN when the Hub refuses it */
  whoAmI(): Promise<string>;
  /** every file of a repository (or of a folder in it), with sizes and LFS sha256s */
  listFiles(repo: string, opts?: { revision?: string; path?: string; recursive?: boolean }): Promise<HfRepoFile[]>;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** "o/r" -> models, "datasets/o/r" -> datasets, "spaces/o/s" -> spaces: the API's path for a repository. */
function apiPath(repo: string): string {
  const m = /^(datasets|spaces)\/(.+)$/.exec(repo);
  return m ? `/api/${m[1]}/${m[2]}/` : `/api/models/${repo}/`;
}

/** Why a repository (and revision, folder) is not plain: hf-url's rules, with a placeholder file when no path is given. */
function repoProblem(repo: string, revision: string, path?: string): string | undefined {
  return hfPartsProblem({ repo, revision, path: path || "_" });
}

export function hfClient(o: HfOptions): HfClient {
  const hub = o.hubUrl.replace(/\/+$/, "");
  const token = o.token || undefined;
  const http = (scope: (u: URL) => boolean): HttpOptions => ({
    allowHosts: o.allowHosts,
    timeoutMs: o.timeoutMs,
    retry: o.retry,
    credentialScope: scope,
  });
  const under = (prefix: string) => (u: URL) => u.href.startsWith(prefix);
  const cred = token ? { accessToken: token } : {};
  const where = (f: HfFile) => `${f.path} in ${f.repo}${f.revision === "main" ? "" : `@${f.revision}`}`;
  const clean = (f: HfFile) => {
    const bad = hfPartsProblem(f);
    if (bad) throw new HfError(`${f.repo}/${f.revision}/${f.path}: not a clean Hugging Face file (${bad})`, "other");
  };
  return {
    hubUrl: hub,
    resolveUrl: (f) => hfResolveUrl(hub, f),
    async fileFacts(f) {
      clean(f);
      const fetch = policyFetch(http(under(`${hub}${apiPath(f.repo)}paths-info/`)));
      let items;
      try {
        items = await pathsInfo({ repo: f.repo, paths: [f.path], revision: f.revision, hubUrl: hub, fetch, ...cred });
      } catch (e) {
        throw hfError(e, where(f));
      }
      const item = items.find((i) => i.path === f.path && i.type === "file");
      if (!item) throw new HfError(`${where(f)}: no such file on Hugging Face`, "missing", 404);
      const sha = item.lfs?.oid?.toLowerCase();
      return { size: item.lfs?.size ?? item.size, ...(sha && SHA256.test(sha) ? { sha256: sha } : {}) };
    },
    async checkAccess(f) {
      clean(f);
      const url = hfResolveUrl(hub, f);
      // the 302 to the CDN is the answer: following it would fetch from the CDN for nothing
      const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      const res = await guardedFetch(url, { method: "HEAD", headers, redirect: "manual" }, http(under(url))).catch((e) => {
        throw hfError(e, where(f));
      });
      await res.body?.cancel().catch(() => undefined);
      if (res.status < 400) return;
      const code = res.headers.get("x-error-code");
      throw new HfError(
        `${where(f)}: HTTP ${res.status} from Hugging Face${code ? ` (${code})` : ""}`,
        res.status === 401 || res.status === 403 ? "auth" : res.status === 404 ? "missing" : "other",
        res.status,
      );
    },
    async whoAmI() {
      if (!token) throw new HfError("no HF_TOKEN to check", "auth");
      const url = `${hub}/api/whoami-v2`;
      try {
        const me = await whoAmI({ hubUrl: hub, accessToken: token, fetch: policyFetch(http((u) => u.href === url)) });
        return me.name;
      } catch (e) {
        const err = hfError(e, url);
        if (err.kind !== "auth") throw new HfError(`cannot check HF_TOKEN: ${err.message}`, err.kind, err.status);
        if (err.status === undefined) throw new HfError(NOT_A_TOKEN, "auth");
        throw new HfError(
          `Hugging Face refused HF_TOKEN (HTTP ${err.status ?? "?"} from ${url}): the token is wrong, expired or revoked. ` +
            "Set a valid one in the environment or .env, or leave HF_TOKEN unset for public models only",
          "auth",
          err.status,
        );
      }
    },
    async listFiles(repo, opts = {}) {
      const revision = opts.revision ?? "main";
      const bad = repoProblem(repo, revision, opts.path);
      if (bad) {
        throw new HfError(`${repo}@${revision}${opts.path ? `/${opts.path}` : ""}: not a clean Hugging Face repository (${bad})`, "other");
      }
      const fetch = policyFetch(http(under(`${hub}${apiPath(repo)}tree/`)));
      const out: HfRepoFile[] = [];
      try {
        const path = opts.path?.split("/").map(encodeURIComponent).join("/");
        for await (const e of listFiles({ repo, revision, path, recursive: opts.recursive ?? true, hubUrl: hub, fetch, ...cred })) {
          if (e.type !== "file") continue;
          const sha = e.lfs?.oid?.toLowerCase();
          out.push({ path: e.path, size: e.lfs?.size ?? e.size, ...(sha && SHA256.test(sha) ? { sha256: sha } : {}) });
        }
      } catch (e) {
        throw hfError(e, `${repo}@${revision}`);
      }
      return out;
    },
  };
}

const NOT_A_TOKEN = "HF_TOKEN is not a Hugging Face access token (those start with hf_)";

/** Any failure of a Hub call as an HfError naming what was asked (never the token). */
function hfError(e: unknown, what: string): HfError {
  if (e instanceof HfError) return e;
  if (e instanceof HubApiError) {
    const s = e.statusCode;
    // the Hub's message ("Access to model x is restricted...") without its "URL: ..." trailer
    const msg = e.message.replace(/\.\s*URL: .*$/s, "");
    const kind = s === 401 || s === 403 ? "auth" : s === 404 ? "missing" : "other";
    return new HfError(`${what}: HTTP ${s} from Hugging Face: ${msg}`, kind, s);
  }
  if (e instanceof HttpError) return new HfError(e.message, e.refused ? "refused" : "other", e.status);
  // @huggingface/hub refuses a token that does not start with hf_ before sending it
  if (e instanceof TypeError && /access token/i.test(e.message)) return new HfError(`${what}: ${NOT_A_TOKEN}`, "auth");
  return new HfError(`${what}: ${(e as Error).message ?? String(e)}`, "other");
}

const listings = new Map<string, Promise<HfRepoFile[]>>();

/**
 * A repository's files (recursive, main), listed once per process: a run over many workflows and
 * hosts lists each repository once. A failed listing is not remembered (the next call asks again).
 */
export function listRepoOnce(client: HfClient, repo: string): Promise<HfRepoFile[]> {
  const key = `${client.hubUrl}\0${repo}`;
  let p = listings.get(key);
  if (!p) {
    listings.set(key, (p = client.listFiles(repo, { recursive: true })));
    p.catch(() => listings.delete(key));
  }
  return p;
}

const verified = new Map<string, Promise<string>>();

/** whoAmI once per hub and token in this process (a run over many hosts asks once); the account name. */
export function verifyHfToken(o: HfOptions & { token: string }): Promise<string> {
  const key = `${o.hubUrl}\0${o.token}`;
  let p = verified.get(key);
  if (!p) {
    verified.set(key, (p = hfClient(o).whoAmI()));
    // a failure is not remembered: the next run (or a fixed network) asks again
    p.catch(() => verified.delete(key));
  }
  return p;
}

/**
 * A run's preflight: a set HF_TOKEN that Hugging Face refuses stops the run before any host is
 * touched (named, never shown). A hub that cannot be reached is only a warning here: the tasks
 * themselves report what they could not look up.
 */
export async function hfTokenPreflight(pf: PreflightContext): Promise<void> {
  const token = pf.secrets.HF_TOKEN;
  if (!token) return;
  try {
    await verifyHfToken({ hubUrl: hfHubUrl(process.env), token, allowHosts: pf.flow.settings.allowHosts });
  } catch (e) {
    if (e instanceof HfError && e.kind === "auth") throw new TaskError(e.message);
    pf.log(`HF_TOKEN not checked: ${(e as Error).message}`);
  }
}
