// Sources resolved on the user's machine, where the tokens are: Hugging Face (HEAD on /resolve:
// X-Linked-Size, X-Linked-Etag = the LFS sha256), CivitAI (model-version API: size, SHA256, then a
// HEAD on the download to prove the token), anything else by HEAD. The result is one entry of the
// download job; a token goes only into that entry's headers (stdin to the host, never argv).
import { fetch, type Response } from "undici";
import type { ModelDep } from "../../lib/comfy/model-deps.ts";
import type { DownloadFile } from "../../tasks/lib/download/types.ts";

export interface ResolveEnv {
  hfUrl: string;
  civitaiUrl: string;
  hfToken?: string;
  civitaiToken?: string;
  /** URL prefix -> replacement (a local mirror); applied to plain URLs */
  mirrors?: Record<string, string>;
  timeoutMs?: number;
}

export function resolveEnv(env: NodeJS.ProcessEnv, secrets: Record<string, string>, mirrors?: Record<string, string>): ResolveEnv {
  const trim = (s: string) => s.replace(/\/+$/, "");
  return {
    hfUrl: trim(env.FLOW_HF_URL || env.HF_ENDPOINT || "https://huggingface.co"),
    civitaiUrl: trim(env.FLOW_CIVITAI_URL || "https://civitai.com"),
    hfToken: secrets.HF_TOKEN,
    civitaiToken: secrets.CIVITAI_API_TOKEN,
    mirrors,
  };
}

export type Resolved =
  | { ok: true; file: Omit<DownloadFile, "target"> }
  /** auth: a token problem; the run stops before any download starts */
  | { ok: false; reason: string; auth?: boolean };

const enc = (s: string) => s.split("/").map(encodeURIComponent).join("/");
const unquote = (s: string) => s.replace(/^W\//, "").replace(/^"|"$/g, "");

export function applyMirror(url: string, mirrors: Record<string, string> = {}): string {
  const hit = Object.keys(mirrors)
    .filter((p) => url.startsWith(p))
    .sort((a, b) => b.length - a.length)[0];
  return hit ? mirrors[hit] + url.slice(hit.length) : url;
}

async function head(url: string, headers: Record<string, string>, env: ResolveEnv, redirect: "manual" | "follow"): Promise<Response> {
  try {
    return await fetch(url, { method: "HEAD", redirect, headers: { "user-agent": "flow", ...headers }, signal: AbortSignal.timeout(env.timeoutMs ?? 20_000) });
  } catch (err) {
    const e = err as Error & { cause?: Error };
    throw new Error(`${url}: ${e.cause?.message ?? e.message}`);
  }
}

export async function resolveModel(dep: ModelDep, env: ResolveEnv): Promise<Resolved> {
  const label = `${dep.folder ?? "?"}/${dep.name}`;
  if (!dep.url) return { ok: false, reason: "no source known: add it to the flowfile's models map" };
  try {
    const src = dep.source;
    if (src?.kind === "huggingface") {
      const url = `${env.hfUrl}/${enc(src.repo)}/resolve/${encodeURIComponent(src.revision)}/${enc(src.path)}`;
      const auth: Record<string, string> = env.hfToken ? { authorization: `Bearer ${env.hfToken}` } : {};
      // manual: the X-Linked-* facts are on Hugging Face's own 302, not on the CDN's answer
      const res = await head(url, auth, env, "manual");
      if (res.status === 401 || res.status === 403) {
        return {
          ok: false,
          auth: true,
          reason: env.hfToken
            ? `Hugging Face refused HF_TOKEN for ${src.path} in ${src.repo} (HTTP ${res.status}): check the token and that it was granted access to the repository`
            : `${src.path} is in the gated or private repository ${src.repo}: set HF_TOKEN (accept the repository's terms on Hugging Face first)`,
        };
      }
      if (res.status >= 400) return { ok: false, reason: `${src.repo}/${src.path}: HTTP ${res.status} from Hugging Face` };
      const h = res.headers;
      const linkedSize = h.get("x-linked-size");
      const size = linkedSize && /^\d+$/.test(linkedSize) ? Number(linkedSize) : res.status === 200 && h.get("content-length") ? Number(h.get("content-length")) : undefined;
      const etag = h.get("x-linked-etag");
      const sha = etag ? unquote(etag).toLowerCase() : undefined;
      return { ok: true, file: { url, name: label, ...(size !== undefined ? { size } : {}), ...(sha && /^[0-9a-f]{64}$/.test(sha) ? { sha256: sha } : {}), ...(env.hfToken ? { headers: auth } : {}) } };
    }
    if (src?.kind === "civitai") {
      if (!src.modelVersionId) return { ok: false, reason: `${dep.url} names a CivitAI model but no version: use a URL with ?modelVersionId=` };
      const auth: Record<string, string> = env.civitaiToken ? { authorization: `Bearer ${env.civitaiToken}` } : {};
      const api = `${env.civitaiUrl}/api/v1/model-versions/${src.modelVersionId}`;
      let res: Response;
      try {
        res = await fetch(api, { headers: { "user-agent": "flow", accept: "application/json", ...auth }, signal: AbortSignal.timeout(env.timeoutMs ?? 20_000) });
      } catch (err) {
        const e = err as Error & { cause?: Error };
        throw new Error(`${api}: ${e.cause?.message ?? e.message}`);
      }
      const civitaiAuth = (status: number) => ({
        ok: false as const,
        auth: true,
        reason: env.civitaiToken
          ? `CivitAI refused CIVITAI_API_TOKEN for model version ${src.modelVersionId} (${dep.name}, HTTP ${status}): check the token`
          : `CivitAI needs a login for model version ${src.modelVersionId} (${dep.name}): set CIVITAI_API_TOKEN`,
      });
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel();
        return civitaiAuth(res.status);
      }
      if (!res.ok) {
        await res.body?.cancel();
        return { ok: false, reason: `CivitAI model version ${src.modelVersionId}: HTTP ${res.status}` };
      }
      const body = (await res.json()) as { files?: { name?: string; sizeKB?: number; primary?: boolean; downloadUrl?: string; hashes?: { SHA256?: string } }[] };
      const files = Array.isArray(body.files) ? body.files : [];
      const want = dep.name.slice(dep.name.lastIndexOf("/") + 1);
      const f = files.find((x) => x.name === want) ?? files.find((x) => x.primary) ?? files[0];
      if (!f) return { ok: false, reason: `CivitAI model version ${src.modelVersionId} lists no files` };
      // The token goes only to the configured CivitAI origin: a downloadUrl elsewhere (another host,
      // plain http) is not followed; the download URL is built on the configured origin instead.
      let download = `${env.civitaiUrl}/api/download/models/${src.modelVersionId}`;
      try {
        if (f.downloadUrl && new URL(f.downloadUrl).origin === new URL(env.civitaiUrl).origin) download = f.downloadUrl;
      } catch {
        /* keep the constructed one */
      }
      // the API answers without a login; the download is where CivitAI checks it: ask before any byte moves
      const probe = await head(download, auth, env, "manual");
      if (probe.status === 401 || probe.status === 403) return civitaiAuth(probe.status);
      if (probe.status >= 400) return { ok: false, reason: `CivitAI download of version ${src.modelVersionId}: HTTP ${probe.status}` };
      const sha = f.hashes?.SHA256?.toLowerCase();
      // sizeKB is rounded by CivitAI: a hint, the sha256 is what proves the file
      const bytes = typeof f.sizeKB === "number" ? f.sizeKB * 1024 : NaN;
      const size = Math.abs(bytes - Math.round(bytes)) < 1e-6 && bytes > 0 ? Math.round(bytes) : undefined;
      return { ok: true, file: { url: download, name: label, ...(size ? { size } : {}), ...(sha && /^[0-9a-f]{64}$/.test(sha) ? { sha256: sha } : {}), ...(env.civitaiToken ? { headers: auth } : {}) } };
    }
    const url = applyMirror(dep.url, env.mirrors);
    const res = await head(url, {}, env, "follow");
    if (res.status === 405 || res.status === 501) return { ok: true, file: { url, name: label } }; // no HEAD: the engine learns the size
    if (res.status >= 400) return { ok: false, reason: `${url}: HTTP ${res.status}` };
    if (/text\/html/i.test(res.headers.get("content-type") ?? "")) return { ok: false, reason: `${url} answers an HTML page, not a model file (a login wall or an error page?)` };
    const len = res.headers.get("content-length");
    return { ok: true, file: { url, name: label, ...(len && /^\d+$/.test(len) && Number(len) > 0 ? { size: Number(len) } : {}) } };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}
