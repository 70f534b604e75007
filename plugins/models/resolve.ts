// Sources resolved on the user's machine, where the tokens are: Hugging Face (HEAD on /resolve:
// X-Linked-Size, X-Linked-Etag = the LFS sha256), CivitAI (model-version API: size, SHA256, then a
// HEAD on the download to prove the token), anything else by HEAD. The result is one entry of the
// download job; a token goes only into that entry's headers (stdin to the host, never argv).
// Every request, redirects included, goes only where lib/net-policy.ts allows: public addresses over
// https, or the hosts settings.allowHosts lists; a Hugging Face URL is parsed once, strictly, and the
// request that carries HF_TOKEN is built from its parts.
import { Agent, buildConnector, fetch, type Response } from "undici";
import type { ModelDep } from "../../lib/comfy/model-deps.ts";
import { hfResolveUrl, isHfUrl, parseHfUrl } from "../../lib/comfy/hf-url.ts";
import { guardConnector, urlProblem, type Connector, type NetPolicy, type NetPolicyError } from "../../lib/net-policy.ts";
import { stripUrlCredentials } from "../../lib/url-credentials.ts";
import type { DownloadFile } from "../../tasks/lib/download/types.ts";

export interface ResolveEnv {
  hfUrl: string;
  civitaiUrl: string;
  hfToken?: string;
  civitaiToken?: string;
  /** URL prefix -> replacement (a local mirror); applied to plain URLs */
  mirrors?: Record<string, string>;
  timeoutMs?: number;
  /** settings.allowHosts: the only hosts reached over plain http or at a non-public address */
  allowHosts?: readonly string[];
}

export function resolveEnv(
  env: NodeJS.ProcessEnv,
  secrets: Record<string, string>,
  mirrors?: Record<string, string>,
  allowHosts?: readonly string[],
): ResolveEnv {
  const trim = (s: string) => s.replace(/\/+$/, "");
  return {
    hfUrl: trim(env.FLOW_HF_URL || env.HF_ENDPOINT || "https://huggingface.co"),
    civitaiUrl: trim(env.FLOW_CIVITAI_URL || "https://civitai.com"),
    hfToken: secrets.HF_TOKEN,
    civitaiToken: secrets.CIVITAI_API_TOKEN,
    mirrors,
    allowHosts,
  };
}

export type Resolved =
  | { ok: true; file: Omit<DownloadFile, "target"> }
  /** auth: a token problem; the run stops before any download starts */
  | { ok: false; reason: string; auth?: boolean };

const unquote = (s: string) => s.replace(/^W\//, "").replace(/^"|"$/g, "");
/** A URL as messages show it: a credential in it (?token=) masked. */
const shown = (url: string) => stripUrlCredentials(url, "mask");

export function applyMirror(url: string, mirrors: Record<string, string> = {}): string {
  const hit = Object.keys(mirrors)
    .filter((p) => url.startsWith(p))
    .sort((a, b) => b.length - a.length)[0];
  return hit ? mirrors[hit] + url.slice(hit.length) : url;
}

// one guarded dispatcher per allow-list: its connections are checked when made (names once resolved)
const dispatchers = new Map<string, Agent>();
function dispatcherFor(policy: NetPolicy): Agent {
  const key = JSON.stringify(policy.allowHosts ?? []);
  let d = dispatchers.get(key);
  if (!d) {
    const connect = guardConnector(policy, buildConnector({}) as unknown as Connector) as unknown as buildConnector.connector;
    dispatchers.set(key, (d = new Agent({ connect })));
  }
  return d;
}

/**
 * One request, redirects followed by hand when `follow` (each hop checked before it goes out);
 * without `follow` the 3xx itself is the answer. Errors name the URL, credentials masked.
 */
async function request(
  url: string,
  init: { method: "GET" | "HEAD"; headers: Record<string, string>; follow: boolean },
  env: ResolveEnv,
): Promise<Response> {
  const policy: NetPolicy = { allowHosts: env.allowHosts ?? [] };
  let headers = init.headers;
  let from = "";
  const refused = (why: string) =>
    new Error(from ? `refused redirect from ${shown(from)} to ${shown(url)}: ${why}` : `refused ${shown(url)}: ${why}`);
  for (let hop = 0; hop <= 10; hop++) {
    const why = urlProblem(policy, url);
    if (why) throw refused(why);
    let res: Response;
    try {
      res = await fetch(url, {
        method: init.method,
        redirect: "manual",
        headers: { "user-agent": "flow", ...headers },
        dispatcher: dispatcherFor(policy),
        signal: AbortSignal.timeout(env.timeoutMs ?? 20_000),
      });
    } catch (err) {
      const e = err as Error & { cause?: Error & { code?: string } };
      if (e.cause?.code === "ERR_FLOW_NET_POLICY") throw refused((e.cause as NetPolicyError).reason);
      throw new Error(`${shown(url)}: ${e.cause?.message ?? e.message}`);
    }
    const location = res.headers.get("location");
    if (!init.follow || res.status < 300 || res.status >= 400 || res.status === 304 || !location) return res;
    await res.body?.cancel();
    from = url;
    url = new URL(location, url).toString();
    // a token is for the origin it was given for, never for where that origin sends us
    if (new URL(url).origin !== new URL(from).origin) {
      headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !/^(authorization|cookie)$/i.test(k)));
    }
  }
  throw new Error(`${shown(url)}: more than 10 redirects`);
}

const head = (url: string, headers: Record<string, string>, env: ResolveEnv, redirect: "manual" | "follow") =>
  request(url, { method: "HEAD", headers, follow: redirect === "follow" }, env);

export async function resolveModel(dep: ModelDep, env: ResolveEnv): Promise<Resolved> {
  const label = `${dep.folder ?? "?"}/${dep.name}`;
  if (!dep.url) return { ok: false, reason: "no source known: add it to the flowfile's models map" };
  try {
    const src = dep.source;
    // Hugging Face is known by the URL's host, whatever an earlier parse made of it
    if (isHfUrl(dep.url)) {
      const hf = parseHfUrl(dep.url);
      if (!hf.ok) return { ok: false, reason: `${shown(dep.url)} is not a clean Hugging Face file URL: ${hf.reason}` };
      const parts = hf.value;
      const url = hfResolveUrl(env.hfUrl, parts);
      const auth: Record<string, string> = env.hfToken ? { authorization: `Bearer ${env.hfToken}` } : {};
      // manual: the X-Linked-* facts are on Hugging Face's own 302, not on the CDN's answer
      const res = await head(url, auth, env, "manual");
      if (res.status === 401 || res.status === 403) {
        return {
          ok: false,
          auth: true,
          reason: env.hfToken
            ? `Hugging Face refused HF_TOKEN for ${parts.path} in ${parts.repo} (HTTP ${res.status}): ` +
              "check the token and that it was granted access to the repository"
            : `${parts.path} is in the gated or private repository ${parts.repo}: ` +
              "set HF_TOKEN (accept the repository's terms on Hugging Face first)",
        };
      }
      if (res.status >= 400) return { ok: false, reason: `${parts.repo}/${parts.path}: HTTP ${res.status} from Hugging Face` };
      const h = res.headers;
      const linkedSize = h.get("x-linked-size");
      const size = linkedSize && /^\d+$/.test(linkedSize) ? Number(linkedSize) : res.status === 200 && h.get("content-length") ? Number(h.get("content-length")) : undefined;
      const etag = h.get("x-linked-etag");
      const sha = etag ? unquote(etag).toLowerCase() : undefined;
      return { ok: true, file: { url, name: label, ...(size !== undefined ? { size } : {}), ...(sha && /^[0-9a-f]{64}$/.test(sha) ? { sha256: sha } : {}), ...(env.hfToken ? { headers: auth } : {}) } };
    }
    if (src?.kind === "civitai") {
      if (!src.modelVersionId) {
        return { ok: false, reason: `${shown(dep.url)} names a CivitAI model but no version: use a URL with ?modelVersionId=` };
      }
      const auth: Record<string, string> = env.civitaiToken ? { authorization: `Bearer ${env.civitaiToken}` } : {};
      const api = `${env.civitaiUrl}/api/v1/model-versions/${src.modelVersionId}`;
      const res = await request(api, { method: "GET", headers: { accept: "application/json", ...auth }, follow: true }, env);
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
    if (res.status >= 400) return { ok: false, reason: `${shown(url)}: HTTP ${res.status}` };
    if (/text\/html/i.test(res.headers.get("content-type") ?? "")) {
      return { ok: false, reason: `${shown(url)} answers an HTML page, not a model file (a login wall or an error page?)` };
    }
    const len = res.headers.get("content-length");
    return { ok: true, file: { url, name: label, ...(len && /^\d+$/.test(len) && Number(len) > 0 ? { size: Number(len) } : {}) } };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}
