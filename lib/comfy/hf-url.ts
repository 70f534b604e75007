// A Hugging Face file URL, read once into repo / revision / path, strictly. The request that
// carries HF_TOKEN is built from these parts, never from the string a workflow wrote: a decoded
// %2F or a ".." must not choose which huggingface.co path receives the token, and a malformed
// escape must fail that one model, not throw through the whole run.

export interface HfFile {
  /** "owner/name", or "datasets/owner/name" / "spaces/owner/name" */
  repo: string;
  /** one segment: a branch, tag or commit */
  revision: string;
  /** "/"-separated segments inside the repo, each plain */
  path: string;
}

export type HfParse = { ok: true; value: HfFile } | { ok: false; reason: string };

const HF_HOSTS = new Set(["huggingface.co", "www.huggingface.co", "hf.co"]);

/** The URL names a file on Hugging Face's own site (where the token is meant for). */
export function isHfUrl(url: string): boolean {
  try {
    return HF_HOSTS.has(new URL(url).hostname.toLowerCase());
  } catch {
    return false;
  }
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}$/;
const REVISION = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Why a decoded path segment cannot be part of a file path in a repository. */
function segmentProblem(s: string): string | undefined {
  if (s === "" || s === "." || s === "..") return `path segment ${JSON.stringify(s)} not allowed`;
  if (s.includes("/") || s.includes("\\")) return `encoded slash or backslash in ${JSON.stringify(s)}`;
  if (CONTROL.test(s)) return "control character in the path";
  return undefined;
}

/** Why already-decoded parts are not a plain repo / revision / path (for callers handed parts, not a URL). */
export function hfPartsProblem(f: HfFile): string | undefined {
  const repo = f.repo.split("/");
  const names = repo[0] === "datasets" || repo[0] === "spaces" ? repo.slice(1) : repo;
  if (names.length !== 2 || !names.every((n) => NAME.test(n) && !n.includes(".."))) {
    return `repository ${JSON.stringify(f.repo)} is not owner/name`;
  }
  if (!REVISION.test(f.revision) || f.revision.includes("..")) return `revision ${JSON.stringify(f.revision)} is not one plain segment`;
  for (const s of f.path.split("/")) {
    const why = segmentProblem(s);
    if (why) return why;
  }
  return undefined;
}

/**
 * https://huggingface.co/<owner>/<name>/(resolve|blob)/<revision>/<path...> (datasets/ and spaces/
 * prefixed too) into its parts; query and fragment ignored. Anything else is refused with a reason:
 * another shape, a malformed %-escape, an empty, "." or ".." segment, an encoded / or \ where one
 * segment is expected. Call it only for URLs isHfUrl() accepts.
 */
export function parseHfUrl(url: string): HfParse {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { ok: false, reason: "not a URL" };
  }
  // pathname as WHATWG parsing left it: dot segments (also %2e forms) are already resolved away
  const raw = u.pathname.split("/").slice(1);
  const parts: string[] = [];
  for (const r of raw) {
    const d = decode(r);
    if (d === undefined) return { ok: false, reason: `malformed %-escape in ${JSON.stringify(r)}` };
    parts.push(d);
  }
  const prefix = parts[0] === "datasets" || parts[0] === "spaces" ? `${parts.shift()}/` : "";
  const [owner, name, kind, revision, ...path] = parts;
  if (!owner || !name || (kind !== "resolve" && kind !== "blob") || revision === undefined || !path.length) {
    return { ok: false, reason: "not <owner>/<repo>/resolve/<revision>/<path>" };
  }
  const value = { repo: `${prefix}${owner}/${name}`, revision, path: path.join("/") };
  // a part that held an encoded "/" now splits differently: compare segment by segment
  for (const s of path) {
    const why = segmentProblem(s);
    if (why) return { ok: false, reason: why };
  }
  const why = hfPartsProblem(value);
  return why ? { ok: false, reason: why } : { ok: true, value };
}

/** The resolve URL of a file on `base` (huggingface.co or a mirror), every segment encoded: the only URL the token goes to. */
export function hfResolveUrl(base: string, f: HfFile): string {
  const enc = (s: string) => s.split("/").map(encodeURIComponent).join("/");
  return `${base.replace(/\/+$/, "")}/${enc(f.repo)}/resolve/${encodeURIComponent(f.revision)}/${enc(f.path)}`;
}
