// A node pack as the user names it, on the command line or in nodes({ pins }): a git URL with an
// optional commit or ref (`https://github.com/kijai/ComfyUI-KJNodes@<sha>`), a registry id with an
// optional version (`comfyui-kjnodes@1.1.7`), or a bare name. Pure and strict: anything that could
// leave custom_nodes, read as an option, or fetch from a non-https place is refused with the input
// named, before any host is touched.
import { repoKey as resolveRepoKey } from "./node-resolve.ts";
import { safePackDir } from "./safe-names.ts";

export type PackSpec =
  /** dir: the folder under custom_nodes (the repository's name) */
  | { kind: "git"; repo: string; dir: string; ref?: string; input: string }
  | { kind: "registry"; id: string; version?: string; input: string }
  /** a name only: a registry id, or a repository's name in ComfyUI-Manager's list */
  | { kind: "name"; name: string; input: string };

export class PackSpecError extends Error {}

const COMMIT = /^[0-9a-f]{40}$/;
// registry ids are lowercase-ish words; versions semver-like; refs git-safe words
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$/;
const REF = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;

export const isCommit = (s: string | undefined): s is string => !!s && COMMIT.test(s);

/** `https://Host/owner/repo(.git)` → the canonical URL (no .git, no trailing slash), or why not. */
export function canonicalRepo(url: string): { repo: string; dir: string } | { why: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { why: "not a URL" };
  }
  if (u.protocol !== "https:") return { why: `only https repositories are installed (got ${u.protocol.replace(/:$/, "")})` };
  if (u.username || u.password) return { why: "credentials in the URL: give a token as a secret instead" };
  if (u.search || u.hash) return { why: "a query or fragment in the URL" };
  // URL() resolves dot segments: compare with the raw text so `a/../b` cannot pass as `b`
  if (/(^|\/)\.\.?(\/|$)/.test(url.replace(/^https:\/\/[^/]+/i, ""))) return { why: "dot segments in the path" };
  const parts = u.pathname.replace(/\/+$/, "").split("/").filter(Boolean);
  if (parts.length !== 2) return { why: "expected https://host/owner/repository" };
  const [owner, name] = [parts[0]!, parts[1]!.replace(/\.git$/i, "")];
  for (const p of [owner, name]) if (!ID.test(p)) return { why: `unsafe path segment ${JSON.stringify(p)}` };
  const dir = safePackDir(name);
  if (!dir.ok) return { why: `repository name ${JSON.stringify(name)}: ${dir.reason}` };
  return { repo: `https://${u.host.toLowerCase()}/${owner}/${name}`, dir: dir.value };
}

/** Where two spellings of one repository meet: node-resolve's key, whatever the scheme or user, without the scheme. */
export function repoKey(url: string): string {
  const https = url
    .trim()
    .replace(/^git\+/, "")
    .replace(/^(?:[a-z]+:\/\/)?(?:[^@/]+@)?/i, "https://");
  return resolveRepoKey(https).replace(/^https:\/\//, "");
}

export function parsePackSpec(input: string): PackSpec {
  const bad = (why: string): never => {
    throw new PackSpecError(`pack ${JSON.stringify(input)}: ${why}`);
  };
  const s = input.trim();
  if (!s) bad("empty");
  if (/[\s\u0000-\u001f]/.test(s)) bad("spaces or control characters");
  if (s.startsWith("-")) bad("starts with '-' (would read as an option)");
  if (/^[a-z][a-z0-9+.-]*:/i.test(s)) {
    // a URL; the last @ after the path starts the commit or ref (user@ in the authority is refused above)
    const at = s.lastIndexOf("@");
    const slash = s.indexOf("/", s.indexOf("//") + 2);
    const [url, ref] = at > slash && slash > 0 ? [s.slice(0, at), s.slice(at + 1)] : [s, undefined];
    const r = canonicalRepo(url);
    if ("why" in r) return bad(r.why);
    if (ref !== undefined && (!REF.test(ref) || ref.includes(".."))) bad(`unsafe commit or ref ${JSON.stringify(ref)}`);
    return { kind: "git", repo: r.repo, dir: r.dir, ...(ref ? { ref } : {}), input };
  }
  if (s.includes("/") || s.includes("\\")) bad("a name may not hold '/' (give the repository's https URL)");
  const at = s.indexOf("@");
  const [name, version] = at >= 0 ? [s.slice(0, at), s.slice(at + 1)] : [s, undefined];
  if (!ID.test(name) || name.includes("..")) bad("not a pack name (letters, digits, '.', '_', '-')");
  if (version !== undefined) {
    if (!VERSION.test(version) || version.includes("..")) bad(`unsafe version ${JSON.stringify(version)}`);
    return { kind: "registry", id: name, version, input };
  }
  return { kind: "name", name, input };
}
