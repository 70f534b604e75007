// comfyui-api builds on a host, as data: where one comes from, what it is called, which to keep,
// which one a rollback goes back to. Pure functions; the shell text is in ./build-commands.ts.
//
// On the host, under <data root>/comfyui-api/bin (mounted read-only at /app/bin):
//   current -> 1.18.1        the build in use; the container runs /app/bin/current/comfyui-api
//   1.18.1/                  a release: comfyui-api (the binary), .flow-manifest.sha256, .flow-build.json
//   3f2a9c01b7de/            a build from a file, folder or URL: the first 12 hex of its sha256
//   .flow-history            the builds switched to, oldest first (a stack: rollback pops it)
//   .incoming/               uploads and downloads on their way in
import { createHash } from "node:crypto";
import type { PublishedPort } from "../../lib/commands/docker.ts";
import { parseDockerPort } from "../../lib/commands/docker.ts";

export const RELEASES_URL = "https://github.com/SaladTechnologies/comfyui-api/releases/download";
/** points --version at a mirror (or a test server) when the task's --release-url is not given */
export const RELEASES_ENV = "FLOW_COMFYUI_API_RELEASES_URL";
/** the launcher at the top of every build, as the real image names its binary */
export const LAUNCHER = "comfyui-api";
export const MARKER = ".flow-build.json";
export const MANIFEST = ".flow-manifest.sha256";
export const HISTORY = ".flow-history";
export const INCOMING = ".incoming";
export const KEEP_BUILDS = 3;
/** the image's own comfyui-api (no bin/current): where a rollback past the first build goes */
export const IMAGE = "image";

export type BuildSource =
  | { kind: "release"; version: string; url: string }
  | { kind: "url"; url: string }
  /** one executable: the real comfyui-api is a single pkg binary */
  | { kind: "binary"; path: string }
  /** a build folder: the launcher comfyui-api at its top, and whatever it runs (dist/, node_modules/) */
  | { kind: "folder"; path: string }
  /** a tar (gzip or not) of a build folder; a single top folder is stepped into */
  | { kind: "archive"; path: string };

/** What the marker file of a build says. */
export interface BuildMarker {
  id: string;
  /** where it came from: "release 1.18.1", a URL (credentials masked), "file <local path>" */
  source: string;
  /** sha256 of the binary, archive or folder listing it was made from */
  sha256: string;
  bytes?: number;
  version?: string;
  addedAt: string;
  /** set when it failed its check after a switch: pruned first, never a rollback target */
  failedAt?: string;
  failure?: string;
}

export interface BuildInfo {
  id: string;
  marker: BuildMarker;
}

const VERSION = /^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$/;

/** Why `v` cannot name a release (it becomes a folder name and a URL segment); undefined when it can. */
export function versionProblem(v: string): string | undefined {
  if (!VERSION.test(v)) return `${JSON.stringify(v)} is not a version (letters, digits, . _ + -; at most 64)`;
  if (v === IMAGE || v === "current") return `${JSON.stringify(v)} is a reserved name`;
  return undefined;
}

/** A build folder name: a release version, or 12 hex of a sha256; never current, image, . or .. */
export function isBuildId(name: string): boolean {
  return VERSION.test(name) && name !== "current" && name !== IMAGE && !/^\.+$/.test(name);
}

/** The release asset's URL: <base>/<version>/comfyui-api (GitHub: releases/download/<tag>/<asset>). */
export function releaseUrl(version: string, base = RELEASES_URL): string {
  return `${base.replace(/\/+$/, "")}/${encodeURIComponent(version)}/${LAUNCHER}`;
}

export const isArchiveName = (name: string): boolean => /\.(tgz|tar\.gz|tar)$/i.test(name);
export const isUrl = (s: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(s);

/** A release's build is its version; anything else is named by its content. */
export function buildIdFor(src: Pick<BuildSource, "kind"> & { version?: string }, sha256: string): string {
  if (src.kind === "release" && src.version) return src.version;
  return sha256.toLowerCase().slice(0, 12);
}

/** The download's file name on the host: the URL's last path segment when it is a plain name, else the launcher's. */
export function downloadName(url: string): string {
  const last = decodeURIComponent(new URL(url).pathname.split("/").pop() ?? "");
  return /^[0-9A-Za-z][0-9A-Za-z._+-]{0,100}$/.test(last) ? last : LAUNCHER;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

// ---------- a folder's manifest ----------

export interface TreeEntry {
  /** relative, with / separators */
  path: string;
  type: "file" | "link";
  /** file: sha256 hex */
  sha256?: string;
  /** file: executable by its owner */
  executable?: boolean;
  /** link: its target */
  target?: string;
}

/** Names a sha256sum manifest line cannot carry plainly (it escapes them), or that could leave the folder. */
export function pathProblem(p: string): string | undefined {
  if (/[\n\r\\]/.test(p)) return `${JSON.stringify(p)}: a newline or backslash in a file name`;
  if (p.startsWith("/") || p.split("/").includes("..")) return `${JSON.stringify(p)}: leaves the folder`;
  return undefined;
}

/**
 * The folder as two texts: `sums`, `sha256sum -c` input for its regular files (checked on the host
 * after unpacking, and again before each switch), and the build's sha256 over a listing that also
 * covers symlinks and executable bits (two folders differing only in a mode get two names).
 */
export function folderManifest(entries: TreeEntry[]): { sums: string; sha256: string } {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const e of sorted) {
    const why = pathProblem(e.path);
    if (why) throw new Error(why);
  }
  const sums = sorted
    .filter((e) => e.type === "file")
    .map((e) => `${e.sha256}  ${e.path}\n`)
    .join("");
  const listing = sorted
    .map((e) => (e.type === "file" ? `f ${e.executable ? "x" : "-"} ${e.sha256} ${e.path}\n` : `l ${e.target} ${e.path}\n`))
    .join("");
  return { sums, sha256: sha256Hex(listing) };
}

// ---------- which builds to keep, where a rollback goes ----------

/**
 * The builds to delete so that `keep` remain: the current one always stays; the others rank by
 * their last switch (later in the history first), then by when they arrived; failed ones go first.
 */
export function choosePrune(builds: BuildInfo[], opts: { current: string | null; history: string[]; keep: number }): string[] {
  const keep = Math.max(1, opts.keep);
  const lastUse = new Map<string, number>();
  opts.history.forEach((id, i) => lastUse.set(id, i));
  const rank = (b: BuildInfo) => [
    b.id === opts.current ? 1 : 0,
    b.marker.failedAt ? 0 : 1,
    lastUse.get(b.id) ?? -1,
    Date.parse(b.marker.addedAt) || 0,
  ];
  const sorted = [...builds].sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return y[i]! - x[i]!;
    return a.id < b.id ? -1 : 1;
  });
  return sorted.slice(keep).map((b) => b.id);
}

/**
 * Where api:rollback goes: down the history stack from the current build, to the first build that
 * is still on the host and did not fail its check; past the bottom, the image's own comfyui-api.
 * `history` is what the stack becomes (that build on top). null: nothing to go back to.
 */
export function rollbackTarget(
  history: string[],
  current: string | null,
  builds: BuildInfo[],
): { target: string; history: string[] } | null {
  const usable = new Set(builds.filter((b) => !b.marker.failedAt).map((b) => b.id));
  let i = history.length - 1;
  // the current build is on top (or was, before a switch that was not recorded); step past it
  while (i >= 0 && history[i] === current) i--;
  for (; i >= 0; i--) {
    const id = history[i]!;
    if (id !== current && usable.has(id)) return { target: id, history: history.slice(0, i + 1) };
  }
  return current === null ? null : { target: IMAGE, history: [] };
}

/** The history after a switch to `id` succeeded: pushed, unless it is already on top; at most 50 entries. */
export function pushHistory(history: string[], id: string): string[] {
  const h = history[history.length - 1] === id ? history : [...history, id];
  return h.slice(-50);
}

// ---------- the host's facts ----------

export interface BuildsFact {
  /** the build bin/current points at; null without the link */
  current: string | null;
  /** the container's command (docker inspect .Config.Cmd); null when there is no container */
  command: string[] | null;
  history: string[];
  builds: BuildInfo[];
  ports: PublishedPort[];
  /** build folders whose marker could not be read */
  unreadable: string[];
}

export const FACT_MARKS = { current: "#current", command: "#command", history: "#history", builds: "#builds", ports: "#ports" } as const;

/** Parses buildsFactCommand's output (see ./build-commands.ts). */
export function parseBuildsFact(stdout: string): BuildsFact {
  const sections = new Map<string, string[]>();
  let at = "";
  for (const line of stdout.split("\n")) {
    if (line.startsWith("#") && Object.values(FACT_MARKS).includes(line.trim() as never)) {
      at = line.trim();
      sections.set(at, []);
    } else if (at) sections.get(at)!.push(line);
  }
  const lines = (k: string) => (sections.get(k) ?? []).map((l) => l.trim()).filter(Boolean);
  const current = lines(FACT_MARKS.current)[0]?.replace(/\/+$/, "").split("/").pop() ?? null;
  let command: string[] | null = null;
  try {
    const c = lines(FACT_MARKS.command)[0];
    if (c) command = JSON.parse(c) ?? [];
  } catch {
    command = [];
  }
  const builds: BuildInfo[] = [];
  const unreadable: string[] = [];
  for (const l of lines(FACT_MARKS.builds)) {
    const tab = l.indexOf("\t");
    const id = tab < 0 ? l : l.slice(0, tab);
    if (!isBuildId(id)) continue;
    try {
      const marker = JSON.parse(l.slice(tab + 1)) as BuildMarker;
      if (typeof marker !== "object" || !marker || typeof marker.sha256 !== "string") throw new Error("no sha256");
      builds.push({ id, marker: { ...marker, id } });
    } catch {
      unreadable.push(id);
    }
  }
  return {
    current: current && isBuildId(current) ? current : null,
    command,
    history: lines(FACT_MARKS.history).filter(isBuildId),
    builds,
    ports: parseDockerPort(lines(FACT_MARKS.ports).join("\n")),
    unreadable,
  };
}

/** The container runs the build bin/current points at (a switch is then a symlink and a restart). */
export function runsCurrent(command: string[] | null, currentBinary: string): boolean {
  return !!command && command[0] === currentBinary;
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}
