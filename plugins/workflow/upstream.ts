// Facts `workflow:lock` pins, asked from the real services (base URLs configurable so that tests
// and mirrors can stand in): GitHub for a branch's head commit, the Comfy Registry for a pack's
// versions, Hugging Face for a file's size and sha256 (LFS files carry them in X-Linked-* headers).
import { fetch, type Response } from "undici";
import type { HfSource } from "../../lib/comfy/model-deps.ts";
import { hfPartsProblem, hfResolveUrl } from "../../lib/comfy/hf-url.ts";

export interface UpstreamUrls {
  github: string;
  registry: string;
  hf: string;
}

export function upstreamUrls(env: NodeJS.ProcessEnv): UpstreamUrls {
  const trim = (s: string) => s.replace(/\/+$/, "");
  return {
    github: trim(env.FLOW_GITHUB_API_URL || "https://api.github.com"),
    registry: trim(env.FLOW_REGISTRY_URL || "https://api.comfy.org"),
    hf: trim(env.FLOW_HF_URL || "https://huggingface.co"),
  };
}

export interface UpstreamClient {
  /** sha of `ref` (a branch, tag or "HEAD" for the default branch) of a GitHub repo */
  githubCommit(repoUrl: string, ref?: string): Promise<string>;
  /** latest published version of a registry pack */
  registryLatest(id: string): Promise<string>;
  /** true when the registry lists that version of the pack */
  registryHasVersion(id: string, version: string): Promise<boolean>;
  /** size and sha256 (LFS files only) of a Hugging Face file, without downloading it */
  hfFileFacts(src: HfSource): Promise<{ size?: number; sha256?: string }>;
}

export class UpstreamError extends Error {}

const TIMEOUT_MS = 20_000;

export function upstreamClient(urls: UpstreamUrls, tokens: { github?: string; hf?: string } = {}): UpstreamClient {
  const get = async (url: string, headers: Record<string, string>): Promise<Response> => {
    let res: Response;
    try {
      res = await fetch(url, { headers: { "user-agent": "flow", ...headers }, signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (err) {
      const e = err as Error & { cause?: Error };
      throw new UpstreamError(`${url}: ${e.cause?.message ?? e.message}`);
    }
    return res;
  };
  const json = async (url: string, headers: Record<string, string> = {}): Promise<unknown> => {
    const res = await get(url, { accept: "application/json", ...headers });
    if (!res.ok) {
      await res.body?.cancel();
      const hint = res.status === 403 || res.status === 429 ? " (rate limited? set GITHUB_TOKEN)" : "";
      throw new UpstreamError(`${url}: HTTP ${res.status}${hint}`);
    }
    return res.json();
  };
  const ghAuth: Record<string, string> = tokens.github ? { authorization: `Bearer ${tokens.github}` } : {};
  const enc = encodeURIComponent;
  return {
    async githubCommit(repoUrl, ref = "HEAD") {
      const m = /^https:\/\/github\.com\/([A-Za-z0-9][A-Za-z0-9-]*)\/([A-Za-z0-9._-]+?)(?:\.git)?\/?$/i.exec(repoUrl);
      if (!m) throw new UpstreamError(`${repoUrl}: not a GitHub repository URL`);
      const body = (await json(`${urls.github}/repos/${enc(m[1]!)}/${enc(m[2]!)}/commits/${enc(ref)}`, {
        accept: "application/vnd.github+json",
        ...ghAuth,
      })) as { sha?: unknown };
      if (typeof body.sha !== "string" || !/^[0-9a-f]{40}$/.test(body.sha)) throw new UpstreamError(`${repoUrl}@${ref}: GitHub answered no commit sha`);
      return body.sha;
    },
    async registryLatest(id) {
      const body = (await json(`${urls.registry}/nodes/${enc(id)}`)) as { latest_version?: { version?: unknown } };
      const v = body.latest_version?.version;
      if (typeof v !== "string" || !v) throw new UpstreamError(`registry pack ${id}: no latest version published`);
      return v;
    },
    async registryHasVersion(id, version) {
      const body = await json(`${urls.registry}/nodes/${enc(id)}/versions`);
      if (!Array.isArray(body)) throw new UpstreamError(`registry pack ${id}: versions is not a list`);
      return body.some((v) => (v as { version?: unknown }).version === version);
    },
    async hfFileFacts(src) {
      // the parts come decoded from a workflow's URL: a ".." or an encoded "/" in them must not
      // pick which huggingface.co path receives the token
      const bad = hfPartsProblem(src);
      if (bad) throw new UpstreamError(`${src.repo}/${src.revision}/${src.path}: not a clean Hugging Face file (${bad})`);
      const url = hfResolveUrl(urls.hf, src);
      let res: Response;
      try {
        // redirect "manual": the X-Linked-* headers are on Hugging Face's 302, not on the CDN's answer.
        res = await fetch(url, {
          method: "HEAD",
          redirect: "manual",
          headers: { "user-agent": "flow", ...(tokens.hf ? { authorization: `Bearer ${tokens.hf}` } : {}) },
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
      } catch (err) {
        const e = err as Error & { cause?: Error };
        throw new UpstreamError(`${url}: ${e.cause?.message ?? e.message}`);
      }
      if (res.status === 401 || res.status === 403) throw new UpstreamError(`${url}: HTTP ${res.status} (gated or private: set HF_TOKEN)`);
      if (res.status >= 400) throw new UpstreamError(`${url}: HTTP ${res.status}`);
      const h = res.headers;
      const linkedSize = h.get("x-linked-size");
      const linkedEtag = h.get("x-linked-etag");
      const unq = (s: string) => s.replace(/^W\//, "").replace(/^"|"$/g, "");
      const size = linkedSize && /^\d+$/.test(linkedSize) ? Number(linkedSize) : res.status === 200 && h.get("content-length") ? Number(h.get("content-length")) : undefined;
      // X-Linked-Etag is the LFS object's sha256; a plain ETag of a non-LFS file is a git blob sha1.
      const sha = linkedEtag ? unq(linkedEtag) : undefined;
      return { ...(size !== undefined ? { size } : {}), ...(sha && /^[0-9a-f]{64}$/.test(sha) ? { sha256: sha } : {}) };
    },
  };
}

/** Run `fn` over items with at most `limit` at once. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
