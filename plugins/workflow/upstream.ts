// Facts `workflow:lock` pins from GitHub (a branch's head commit) and the Comfy Registry (a pack's
// versions); base URLs configurable so that tests and mirrors can stand in. Hugging Face facts come
// from ../shared/hf.ts. Requests go through ../shared/http.ts: the address policy and one back-off.
import { guardedFetch, HttpError } from "../shared/http.ts";

export interface UpstreamUrls {
  github: string;
  registry: string;
}

export function upstreamUrls(env: NodeJS.ProcessEnv): UpstreamUrls {
  const trim = (s: string) => s.replace(/\/+$/, "");
  return {
    github: trim(env.FLOW_GITHUB_API_URL || "https://api.github.com"),
    registry: trim(env.FLOW_REGISTRY_URL || "https://api.comfy.org"),
  };
}

export interface UpstreamClient {
  /** sha of `ref` (a branch, tag or "HEAD" for the default branch) of a GitHub repo */
  githubCommit(repoUrl: string, ref?: string): Promise<string>;
  /** latest published version of a registry pack */
  registryLatest(id: string): Promise<string>;
  /** true when the registry lists that version of the pack */
  registryHasVersion(id: string, version: string): Promise<boolean>;
  /** the pack's repository URL, when the registry knows one */
  registryPack(id: string): Promise<{ repository?: string }>;
  /** where the archive of that version is (the registry's `downloadUrl`) */
  registryDownloadUrl(id: string, version: string): Promise<string>;
}

export class UpstreamError extends Error {}

export interface UpstreamOptions {
  github?: string;
  /** settings.allowHosts */
  allowHosts?: readonly string[];
}

export function upstreamClient(urls: UpstreamUrls, o: UpstreamOptions = {}): UpstreamClient {
  const json = async (url: string, headers: Record<string, string> = {}): Promise<unknown> => {
    const res = await guardedFetch(url, { headers: { accept: "application/json", ...headers } }, { allowHosts: o.allowHosts }).catch(
      (e) => {
        throw new UpstreamError(e instanceof HttpError ? e.message : `${url}: ${(e as Error).message}`);
      },
    );
    if (!res.ok) {
      await res.body?.cancel();
      const hint = res.status === 403 ? " (rate limited? set GITHUB_TOKEN)" : "";
      throw new UpstreamError(`${url}: HTTP ${res.status}${hint}`);
    }
    return res.json();
  };
  const ghAuth: Record<string, string> = o.github ? { authorization: `Bearer ${o.github}` } : {};
  const enc = encodeURIComponent;
  return {
    async githubCommit(repoUrl, ref = "HEAD") {
      const m = /^https:\/\/github\.com\/([A-Za-z0-9][A-Za-z0-9-]*)\/([A-Za-z0-9._-]+?)(?:\.git)?\/?$/i.exec(repoUrl);
      if (!m) throw new UpstreamError(`${repoUrl}: not a GitHub repository URL`);
      const body = (await json(`${urls.github}/repos/${enc(m[1]!)}/${enc(m[2]!)}/commits/${enc(ref)}`, {
        accept: "application/vnd.github+json",
        ...ghAuth,
      })) as { sha?: unknown };
      if (typeof body.sha !== "string" || !/^[0-9a-f]{40}$/.test(body.sha)) {
        throw new UpstreamError(`${repoUrl}@${ref}: GitHub answered no commit sha`);
      }
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
    async registryPack(id) {
      const body = (await json(`${urls.registry}/nodes/${enc(id)}`)) as { repository?: unknown };
      return typeof body.repository === "string" && body.repository ? { repository: body.repository } : {};
    },
    async registryDownloadUrl(id, version) {
      const body = (await json(`${urls.registry}/nodes/${enc(id)}/versions/${enc(version)}`)) as { downloadUrl?: unknown };
      if (typeof body.downloadUrl !== "string" || !/^https?:\/\//.test(body.downloadUrl)) {
        throw new UpstreamError(`registry pack ${id}@${version}: no download URL`);
      }
      return body.downloadUrl;
    },
  };
}
