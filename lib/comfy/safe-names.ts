// Workflows come from strangers. Every name that becomes a path (model file, model folder,
// node pack directory) or a URL we download from passes through here: harmless forms are
// normalised (Windows backslashes), anything that could leave its folder or reach a shell
// unquoted is refused with a reason. Callers still quote for the shell; this is the second wall.
import { posix } from "node:path";

export type Safe<T> = { ok: true; value: T } | { ok: false; reason: string };

const CONTROL = /[\u0000-\u001f\u007f]/;
// Characters a shell would interpret; never needed in a model or pack name.
const SHELL_META = /[`$;&|<>*?!{}[\]"'\\~#%\n\r\t]/;
const SEGMENT_OK = /^[\p{L}\p{N}._+@=,() -]+$/u;
const MAX_LEN = 255;

/**
 * A relative file path inside a models folder ("flux/model.safetensors" is legit: ComfyUI lists
 * sub-folders). Backslashes from Windows exports become slashes; everything else suspicious is refused.
 */
export function safeModelRelPath(name: unknown): Safe<string> {
  if (typeof name !== "string" || name === "") return { ok: false, reason: "empty or not a string" };
  if (CONTROL.test(name)) return { ok: false, reason: "contains a control character (NUL, newline, ...)" };
  let s = name.normalize("NFC").replace(/\\/g, "/");
  if (s.startsWith("/") || /^[A-Za-z]:/.test(s)) return { ok: false, reason: "absolute path" };
  if (/^[a-z][a-z0-9+.-]*:/i.test(s)) return { ok: false, reason: "looks like a URL, not a file name" };
  s = s.replace(/\/+/g, "/");
  const parts = s.split("/");
  for (const p of parts) {
    if (p === "" || p === "." || p === "..") return { ok: false, reason: `path segment ${JSON.stringify(p)} not allowed` };
    if (p.startsWith("-")) return { ok: false, reason: "segment starts with '-' (could read as an option)" };
    if (SHELL_META.test(p) || !SEGMENT_OK.test(p)) return { ok: false, reason: `unsafe characters in ${JSON.stringify(p)}` };
  }
  if (s.length > MAX_LEN) return { ok: false, reason: "too long" };
  const norm = posix.normalize(s);
  if (norm !== s || norm.startsWith("..")) return { ok: false, reason: "path does not normalise to itself" };
  return { ok: true, value: s };
}

/** A model folder name ("loras", "ipadapter", "controlnet/SDXL"): same rules as a relative path. */
export function safeFolder(folder: unknown): Safe<string> {
  const r = safeModelRelPath(folder);
  if (!r.ok) return { ok: false, reason: `folder: ${r.reason}` };
  return r;
}

/** Join under a root and prove the result stays inside it. */
export function joinInside(root: string, ...rel: string[]): Safe<string> {
  const base = posix.resolve("/", root);
  const full = posix.resolve(base, ...rel);
  if (full !== base && !full.startsWith(base.endsWith("/") ? base : base + "/")) return { ok: false, reason: `${full} leaves ${base}` };
  return { ok: true, value: full };
}

/** A custom node pack directory name under custom_nodes: one plain segment. */
export function safePackDir(name: unknown): Safe<string> {
  if (typeof name !== "string") return { ok: false, reason: "not a string" };
  const r = safeModelRelPath(name);
  if (!r.ok) return r;
  if (r.value.includes("/")) return { ok: false, reason: "pack directory must be a single segment" };
  if (r.value.startsWith(".")) return { ok: false, reason: "hidden directory" };
  return r;
}

const HOST_RE = /^[a-z0-9.-]+$/;

/**
 * A download URL: https only (http allowed for explicit local mirrors), no credentials in it,
 * no control characters or spaces, a plain host name.
 */
export function safeUrl(url: unknown, opts: { allowHttp?: boolean } = {}): Safe<string> {
  if (typeof url !== "string" || url === "") return { ok: false, reason: "empty URL" };
  if (CONTROL.test(url) || /\s/.test(url)) return { ok: false, reason: "URL contains whitespace or control characters" };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { ok: false, reason: "not a valid URL" };
  }
  if (u.protocol !== "https:" && !(opts.allowHttp && u.protocol === "http:"))
    return { ok: false, reason: `scheme ${u.protocol} not allowed` };
  if (u.username || u.password) return { ok: false, reason: "credentials embedded in URL" };
  if (!HOST_RE.test(u.hostname)) return { ok: false, reason: `odd host name ${JSON.stringify(u.hostname)}` };
  return { ok: true, value: u.toString() };
}

/** A GitHub repository URL for a node pack: https://github.com/<owner>/<repo>, nothing else. */
export function safeRepoUrl(url: unknown): Safe<string> {
  const r = safeUrl(url);
  if (!r.ok) return r;
  const m = /^https:\/\/github\.com\/([A-Za-z0-9][A-Za-z0-9-]{0,38})\/([A-Za-z0-9._-]{1,100}?)(\.git)?\/?$/.exec(r.value);
  if (!m || m[2] === "." || m[2] === ".." || m[2].startsWith("-"))
    return { ok: false, reason: "not a plain https://github.com/<owner>/<repo> URL" };
  return { ok: true, value: `https://github.com/${m[1]}/${m[2]}` };
}
