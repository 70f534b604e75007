// Sources resolved on the user's machine, where the tokens are: Hugging Face (../shared/hf.ts:
// size and LFS sha256 from the repository's paths-info, then a HEAD on the resolve URL to prove
// the download will be let in), CivitAI (model-version API: size, SHA256, then a HEAD on the
// download to prove the token), anything else by HEAD. The result is one entry of the download
// job; a token goes only into that entry's headers (stdin to the host, never argv).
// Every request, redirects included, goes only where lib/net-policy.ts allows (../shared/http.ts);
// a Hugging Face URL is parsed once, strictly, and the requests that carry HF_TOKEN are built from its parts.
// A model a workflow names without a URL is first looked up in flow.lock.json, then by file name in
// settings.modelRepos (each repository listed once per run); a repository a node snapshots at run
// time is expanded the same way into one entry per file.
import { parseModelUrl, type ModelDep } from "../../lib/comfy/model-deps.ts";
import { matchModelName, snapshotFiles, type RepoListing, type RepoSnapshot } from "../../lib/comfy/custom-loaders.ts";
import { lockedModels, type LockFile } from "../../lib/comfy/lockfile.ts";
import { isHfUrl, parseHfUrl, type HfFile } from "../../lib/comfy/hf-url.ts";
import type { RetryPolicy } from "../../lib/retry.ts";
import type { DownloadFile } from "../../tasks/lib/download/types.ts";
import { guardedFetch, shownUrl, type HttpOptions } from "../shared/http.ts";
import { hfClient, hfHubUrl, HfError, listRepoOnce, type HfClient, type HfRepoFile } from "../shared/hf.ts";
import { mapLimit } from "../shared/map-limit.ts";
import { DEFAULT_MODEL_REPOS } from "../../lib/comfy/custom-loaders.ts";
import type { TaskContext } from "../../lib/index.ts";

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
  /** back-off for 429 / 5xx / dropped connections (default: ../shared/http.ts's LOOKUP_RETRY) */
  retry?: RetryPolicy;
}

export function resolveEnv(
  env: NodeJS.ProcessEnv,
  secrets: Record<string, string>,
  mirrors?: Record<string, string>,
  allowHosts?: readonly string[],
): ResolveEnv {
  return {
    hfUrl: hfHubUrl(env),
    civitaiUrl: (env.FLOW_CIVITAI_URL || "https://civitai.com").replace(/\/+$/, ""),
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

export function applyMirror(url: string, mirrors: Record<string, string> = {}): string {
  const hit = Object.keys(mirrors)
    .filter((p) => url.startsWith(p))
    .sort((a, b) => b.length - a.length)[0];
  return hit ? mirrors[hit] + url.slice(hit.length) : url;
}

const httpOf = (env: ResolveEnv): HttpOptions => ({ allowHosts: env.allowHosts, timeoutMs: env.timeoutMs, retry: env.retry });

async function resolveHf(parts: HfFile, label: string, env: ResolveEnv): Promise<Resolved> {
  const hub = hfClient({ hubUrl: env.hfUrl, token: env.hfToken, ...httpOf(env) });
  try {
    // access first: on the Hub a gated repository lists its files to anyone, but lets only granted tokens download
    await hub.checkAccess(parts);
    const facts = await hub.fileFacts(parts);
    const auth = env.hfToken ? { headers: { authorization: `Bearer ${env.hfToken}` } } : {};
    const sha256 = facts.sha256 ? { sha256: facts.sha256 } : {};
    return { ok: true, file: { url: hub.resolveUrl(parts), name: label, size: facts.size, ...sha256, ...auth } };
  } catch (e) {
    if (!(e instanceof HfError) || e.kind !== "auth") return { ok: false, reason: (e as Error).message };
    return {
      ok: false,
      auth: true,
      reason: env.hfToken
        ? `Hugging Face refused HF_TOKEN for ${parts.path} in ${parts.repo} (HTTP ${e.status ?? "?"}): ` +
          "check the token and that it was granted access to the repository"
        : `${parts.path} is in the gated or private repository ${parts.repo}: ` +
          "set HF_TOKEN (accept the repository's terms on Hugging Face first)",
    };
  }
}

async function resolveCivitai(dep: ModelDep, versionId: string, label: string, env: ResolveEnv): Promise<Resolved> {
  const auth: Record<string, string> = env.civitaiToken ? { authorization: `Bearer ${env.civitaiToken}` } : {};
  const api = `${env.civitaiUrl}/api/v1/model-versions/${versionId}`;
  const res = await guardedFetch(api, { headers: { accept: "application/json", ...auth } }, httpOf(env));
  const civitaiAuth = (status: number): Resolved => ({
    ok: false,
    auth: true,
    reason: env.civitaiToken
      ? `CivitAI refused CIVITAI_API_TOKEN for model version ${versionId} (${dep.name}, HTTP ${status}): check the token`
      : `CivitAI needs a login for model version ${versionId} (${dep.name}): set CIVITAI_API_TOKEN`,
  });
  if (!res.ok) {
    await res.body?.cancel();
    if (res.status === 401 || res.status === 403) return civitaiAuth(res.status);
    return { ok: false, reason: `CivitAI model version ${versionId}: HTTP ${res.status}` };
  }
  type CivitaiFile = { name?: string; sizeKB?: number; primary?: boolean; downloadUrl?: string; hashes?: { SHA256?: string } };
  const body = (await res.json()) as { files?: CivitaiFile[] };
  const files = Array.isArray(body.files) ? body.files : [];
  const want = dep.name.slice(dep.name.lastIndexOf("/") + 1);
  const f = files.find((x) => x.name === want) ?? files.find((x) => x.primary) ?? files[0];
  if (!f) return { ok: false, reason: `CivitAI model version ${versionId} lists no files` };
  // The token goes only to the configured CivitAI origin: a downloadUrl elsewhere (another host,
  // plain http) is not followed; the download URL is built on the configured origin instead.
  let download = `${env.civitaiUrl}/api/download/models/${versionId}`;
  try {
    if (f.downloadUrl && new URL(f.downloadUrl).origin === new URL(env.civitaiUrl).origin) download = f.downloadUrl;
  } catch {
    /* keep the constructed one */
  }
  // the API answers without a login; the download is where CivitAI checks it: ask before any byte moves
  const probe = await guardedFetch(download, { method: "HEAD", headers: auth, redirect: "manual" }, httpOf(env));
  if (probe.status === 401 || probe.status === 403) return civitaiAuth(probe.status);
  if (probe.status >= 400) return { ok: false, reason: `CivitAI download of version ${versionId}: HTTP ${probe.status}` };
  const sha = f.hashes?.SHA256?.toLowerCase();
  // sizeKB is rounded by CivitAI: a hint, the sha256 is what proves the file
  const bytes = typeof f.sizeKB === "number" ? f.sizeKB * 1024 : NaN;
  const size = Math.abs(bytes - Math.round(bytes)) < 1e-6 && bytes > 0 ? Math.round(bytes) : undefined;
  const file = { url: download, name: label, ...(size ? { size } : {}), ...(sha && /^[0-9a-f]{64}$/.test(sha) ? { sha256: sha } : {}) };
  return { ok: true, file: { ...file, ...(env.civitaiToken ? { headers: auth } : {}) } };
}

async function resolvePlain(url: string, label: string, env: ResolveEnv): Promise<Resolved> {
  const res = await guardedFetch(url, { method: "HEAD" }, httpOf(env));
  if (res.status === 405 || res.status === 501) return { ok: true, file: { url, name: label } }; // no HEAD: the engine learns the size
  if (res.status >= 400) return { ok: false, reason: `${shownUrl(url)}: HTTP ${res.status}` };
  if (/text\/html/i.test(res.headers.get("content-type") ?? "")) {
    return { ok: false, reason: `${shownUrl(url)} answers an HTML page, not a model file (a login wall or an error page?)` };
  }
  const len = res.headers.get("content-length");
  return { ok: true, file: { url, name: label, ...(len && /^\d+$/.test(len) && Number(len) > 0 ? { size: Number(len) } : {}) } };
}

export async function resolveModel(dep: ModelDep, env: ResolveEnv): Promise<Resolved> {
  const label = `${dep.folder ?? "?"}/${dep.name}`;
  if (!dep.url) return { ok: false, reason: "no source known: add it to the flowfile's models map" };
  try {
    // Hugging Face is known by the URL's host, whatever an earlier parse made of it
    if (isHfUrl(dep.url)) {
      const hf = parseHfUrl(dep.url);
      if (!hf.ok) return { ok: false, reason: `${shownUrl(dep.url)} is not a clean Hugging Face file URL: ${hf.reason}` };
      return await resolveHf(hf.value, label, env);
    }
    if (dep.source?.kind === "civitai") {
      if (!dep.source.modelVersionId) {
        return { ok: false, reason: `${shownUrl(dep.url)} names a CivitAI model but no version: use a URL with ?modelVersionId=` };
      }
      return await resolveCivitai(dep, dep.source.modelVersionId, label, env);
    }
    return await resolvePlain(applyMirror(dep.url, env.mirrors), label, env);
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

// ---------- sources by name: the lock, then settings.modelRepos ----------

/** One workflow's models (completed in place) and the repositories its nodes snapshot. */
export interface SourceWork {
  workflow: string;
  models: ModelDep[];
  snapshots: readonly RepoSnapshot[];
}

export interface SourceLookupOptions {
  client: HfClient;
  /** settings.modelRepos, in order */
  repos: readonly string[];
  /** flow.lock.json: its entries are used first (models:*); workflow:lock, rewriting it, passes none */
  lock?: LockFile;
  /** list nothing: say what stays unresolved */
  offline: boolean;
}

export interface SourceLookupResult {
  /** URL -> size and sha256 as the listings gave them (workflow:lock records them without asking again) */
  facts: Record<string, { size: number; sha256?: string }>;
  /** "name: repo/path" for each model found by name */
  found: string[];
  /** a name several different files carry: which one was taken, and why */
  notes: string[];
  /** names and repositories still without a source, with why */
  unresolved: string[];
  /** repositories that could not be listed, listed paths refused */
  problems: string[];
}

const sameFolder = (a: string, b: string) => a.replace(/\/+$/, "") === b.replace(/\/+$/, "");

function snapshotDep(snap: RepoSnapshot, name: string, folder: string, url: string, urlFrom: ModelDep["urlFrom"]): ModelDep {
  return {
    name,
    folder,
    url,
    urlFrom,
    source: parseModelUrl(url),
    optional: snap.optional,
    usedBy: [...snap.usedBy],
    found: ["runtime-download"],
  };
}

/**
 * Fill in what the workflows leave open: each model without a URL gets the lock's entry, else the
 * file of that name in `repos` (matchModelName: a folder without one from the path); each snapshot
 * becomes its files (the lock's entries under its folder, else the repository's listing). The
 * repositories needed are listed concurrently, each once per run. Models are changed in place.
 */
export async function lookupSources(work: SourceWork[], o: SourceLookupOptions): Promise<SourceLookupResult> {
  const r: SourceLookupResult = { facts: {}, found: [], notes: [], unresolved: [], problems: [] };
  const open: { w: SourceWork; dep: ModelDep }[] = [];
  const openSnaps: { w: SourceWork; snap: RepoSnapshot }[] = [];
  for (const w of work) {
    const locked = o.lock ? lockedModels(o.lock, w.workflow) : [];
    for (const dep of w.models) {
      if (dep.url) continue;
      const hit = locked.find((e) => e.name === dep.name && (!dep.folder || sameFolder(e.folder, dep.folder)));
      if (!hit) {
        open.push({ w, dep });
        continue;
      }
      Object.assign(dep, { url: hit.url, urlFrom: "lock", source: parseModelUrl(hit.url), folder: dep.folder ?? hit.folder });
    }
    for (const snap of w.snapshots) {
      const files = locked.filter((e) => sameFolder(e.folder, snap.folder));
      if (!files.length) openSnaps.push({ w, snap });
      else for (const f of files) w.models.push(snapshotDep(snap, f.name, f.folder, f.url, "lock"));
    }
  }
  const label = (d: ModelDep) => `${d.folder ?? "?"}/${d.name}`;
  if (o.offline) {
    for (const { dep } of open) r.unresolved.push(`${label(dep)}: not looked up by name (offline)`);
    for (const { snap } of openSnaps) r.unresolved.push(`${snap.repo} (for ${snap.folder}): not listed (offline)`);
    r.unresolved = [...new Set(r.unresolved)];
    return r;
  }
  const wanted = [...new Set([...(open.length ? o.repos : []), ...openSnaps.map((s) => s.snap.repo)])];
  const listed = new Map<string, HfRepoFile[]>();
  await mapLimit(wanted, 4, async (repo) => {
    try {
      listed.set(repo, await listRepoOnce(o.client, repo));
    } catch (e) {
      r.problems.push(`${repo}: ${(e as Error).message}`);
    }
  });
  const listings: RepoListing[] = o.repos.flatMap((repo) => (listed.has(repo) ? [{ repo, files: listed.get(repo)! }] : []));
  const notes = new Set<string>();
  const unresolved = new Set<string>();
  for (const { dep } of open) {
    const m = matchModelName(dep.name, dep.folder, listings);
    r.problems.push(...(m.refused ?? []));
    if (!m.found) {
      const some = listings.length < o.repos.length ? ` (${listings.length} of ${o.repos.length} could be listed)` : "";
      const why = o.repos.length
        ? `not in the repositories of settings.modelRepos${some}`
        : "settings.modelRepos names no repository to look in";
      unresolved.add(`${label(dep)}: ${why}`);
      continue;
    }
    const { match } = m;
    Object.assign(dep, { url: match.url, urlFrom: "repo-lookup", source: parseModelUrl(match.url) });
    dep.folder ??= match.folderFromPath;
    r.facts[match.url] = { size: match.size, ...(match.sha256 ? { sha256: match.sha256 } : {}) };
    r.found.push(`${label(dep)}: ${match.repo}/${match.path}`);
    if (m.note) notes.add(m.note);
  }
  for (const { w, snap } of openSnaps) {
    const files = listed.get(snap.repo);
    if (!files) {
      unresolved.add(`${snap.repo} (for ${snap.folder}): could not be listed`);
      continue;
    }
    const got = snapshotFiles(snap, files);
    r.problems.push(...got.refused);
    for (const f of got.files) {
      w.models.push(snapshotDep(snap, f.name, f.folder, f.url, "repo-snapshot"));
      r.facts[f.url] = { size: f.size, ...(f.sha256 ? { sha256: f.sha256 } : {}) };
    }
  }
  r.found = [...new Set(r.found)];
  r.notes = [...notes];
  r.unresolved = [...unresolved];
  r.problems = [...new Set(r.problems)];
  return r;
}

/**
 * lookupSources as the step "sources by name": what was found, which name several files carry,
 * what stays without a source (all of it with --offline, where nothing is listed).
 */
export async function sourcesByName(
  ctx: TaskContext,
  work: SourceWork[],
  o: { offline: boolean; lock?: LockFile; env: ResolveEnv },
): Promise<SourceLookupResult> {
  let r!: SourceLookupResult;
  await ctx.step("sources by name", async () => {
    const { env } = o;
    const client = hfClient({ hubUrl: env.hfUrl, token: env.hfToken, ...httpOf(env) });
    const repos = ctx.flow.settings.modelRepos ?? DEFAULT_MODEL_REPOS;
    r = await lookupSources(work, { client, repos, lock: o.lock, offline: o.offline });
    for (const p of r.problems) ctx.warn(p);
    for (const n of r.notes) ctx.warn(n);
    for (const f of r.found) ctx.log(`found by name: ${f}`);
    for (const u of r.unresolved) ctx.log(`no source: ${u}`);
    const note = `${r.found.length} found by name${r.unresolved.length ? `, ${r.unresolved.length} without a source` : ""}`;
    return { status: "ok", note: o.offline ? `${note} (offline: nothing listed)` : note };
  });
  return r;
}
