// The models tier's decisions as pure functions over facts: what the workflows need, what the
// host has (one scan), and from those the report, the moves and links of organize, the files
// cleanup may remove, and the progress line. No I/O here: the tasks feed in and act on results.
import { FOLDER_ALIASES, MODEL_FOLDERS, canonicalFolder, hasModelExtension } from "../../lib/comfy/model-folders.ts";
import { parseModelUrl, type ModelDep } from "../../lib/comfy/model-deps.ts";
import type { RepoSnapshot } from "../../lib/comfy/custom-loaders.ts";
import { isHfUrl, parseHfUrl } from "../../lib/comfy/hf-url.ts";
import { safeUrl } from "../../lib/comfy/safe-names.ts";
import { stripUrlCredentials } from "../../lib/url-credentials.ts";
import { getOwn } from "../../lib/comfy/own-keys.ts";
import { SCAN_FILES_MARK } from "./commands.ts";
import { fmtBytes, fmtEta } from "../../lib/format.ts";
export { fmtBytes, fmtEta };

export interface ScanFile {
  size: number;
  ino: number;
  links: number;
  /** relative to the models root */
  path: string;
}

export interface Scan {
  files: ScanFile[];
  /** bytes of the models volume; undefined when df said nothing usable */
  disk?: { size: number; free: number };
  downloadRunning: boolean;
}

export function parseScan(out: string): Scan {
  const at = out.indexOf(`${SCAN_FILES_MARK}\n`);
  const head = (at >= 0 ? out.slice(0, at) : out).split("\n").filter(Boolean);
  const body = at >= 0 ? out.slice(at + SCAN_FILES_MARK.length + 1) : "";
  const downloadRunning = head[0]?.trim() === "running";
  // POSIX df -P: Filesystem 1-blocks Used Available Capacity Mounted-on
  const df = head[1]?.trim().split(/\s+/);
  const numbers = df && df.length >= 6 && /^\d+$/.test(df[1]!) && /^\d+$/.test(df[3]!);
  const disk = numbers ? { size: Number(df[1]), free: Number(df[3]) } : undefined;
  const files: ScanFile[] = [];
  for (const rec of body.split("\0")) {
    const m = /^(\d+)\t(\d+)\t(\d+)\t([\s\S]+)$/.exec(rec.replace(/^\n/, ""));
    if (m) files.push({ size: Number(m[1]), ino: Number(m[2]), links: Number(m[3]), path: m[4]! });
  }
  return { files, disk, downloadRunning };
}

/** A model some workflow needs, merged over workflows. */
export interface Needed {
  /** canonical folder (possibly with a sub-path: "controlnet/SDXL") */
  folder: string;
  name: string;
  optional: boolean;
  /** the dependency whose source is used: the flowfile's, else the workflows' (agreeing), else model-list.json's */
  dep: ModelDep;
  workflows: string[];
  /** Workflows name different sources for this file and the flowfile does not say which: it is not downloaded. */
  conflict?: string;
}

export interface WorkflowDeps {
  workflow: string;
  models: ModelDep[];
  /** repositories its nodes snapshot at run time (expanded into models by resolve.ts lookupSources) */
  snapshots?: RepoSnapshot[];
}

/**
 * Where a model lands, relative to the models root: its folder's first segment canonical
 * (unet -> diffusion_models, clip -> text_encoders), the sub-path on either side, "//" collapsed.
 * Case is kept: ComfyUI's folders are case-sensitive on Linux.
 */
export function finalPath(folder: string, name: string): string {
  const [first, ...rest] = `${folder}/${name}`.split("/").filter(Boolean);
  return [canonicalFolder(first!) ?? first, ...rest].join("/");
}

const baseOf = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** Two URLs for one file are the same source: the same Hugging Face file (resolve or blob), or the same URL. */
function sourceKey(url: string): string {
  if (isHfUrl(url)) {
    const hf = parseHfUrl(url);
    if (hf.ok) return `hf:${hf.value.repo}@${hf.value.revision}/${hf.value.path}`;
  }
  try {
    return new URL(url).href;
  } catch {
    return url;
  }
}

function sourceOf(url: string): ModelDep["source"] {
  try {
    return parseModelUrl(url);
  } catch {
    return { kind: "url" }; // a malformed escape: resolution refuses it for that model alone
  }
}

/**
 * One entry per final path (two entries for one file would mean two writers at once); a model
 * required by any workflow is required. Its source: the flowfile's models entry (userModels: file
 * name, or folder/name -> URL) wins over any workflow's; workflows that name different URLs, with
 * no flowfile entry to settle it, make that file a conflict (never settled by file order);
 * model-list.json only fills in. Models without a folder are returned apart.
 */
export function neededModels(
  all: WorkflowDeps[],
  opts: { userModels?: Record<string, string> } = {},
): { needed: Needed[]; noFolder: { workflow: string; name: string }[] } {
  const groups = new Map<string, { path: string; sightings: { workflow: string; dep: ModelDep }[] }>();
  const noFolder: { workflow: string; name: string }[] = [];
  for (const w of all)
    for (const d of w.models) {
      if (!d.folder) {
        noFolder.push({ workflow: w.workflow, name: d.name });
        continue;
      }
      const path = finalPath(d.folder, d.name);
      const g = groups.get(path) ?? { path, sightings: [] };
      g.sightings.push({ workflow: w.workflow, dep: d });
      groups.set(path, g);
    }
  const needed = [...groups.values()].map(({ path, sightings }) => {
    const first = sightings[0]!.dep;
    const folder = finalPath(first.folder!, ""); // path is this folder, "/", then the name
    const n: Needed = {
      folder,
      name: path.slice(folder.length + 1),
      optional: sightings.every((s) => s.dep.optional),
      dep: first,
      workflows: [...new Set(sightings.map((s) => s.workflow))],
    };
    const user = flowfileUrl(path, sightings, opts.userModels);
    if (user) {
      n.dep = { ...first, url: user, urlFrom: "user-map", source: sourceOf(user) };
      return n;
    }
    const fromWorkflows = sightings.filter((s) => s.dep.url && (s.dep.urlFrom ?? "workflow") === "workflow");
    const distinct = new Map<string, { url: string; workflows: string[]; dep: ModelDep }>();
    for (const s of fromWorkflows) {
      const k = sourceKey(s.dep.url!);
      const e = distinct.get(k) ?? { url: s.dep.url!, workflows: [], dep: s.dep };
      if (!e.workflows.includes(s.workflow)) e.workflows.push(s.workflow);
      distinct.set(k, e);
    }
    const pick = [...distinct.values()][0] ?? sightings.find((s) => s.dep.url);
    if (pick) n.dep = pick.dep;
    if (distinct.size > 1) {
      const each = [...distinct.values()].map((e) => `${e.workflows.join(", ")}: ${stripUrlCredentials(e.url, "mask")}`).join("; ");
      n.conflict =
        `${path}: the workflows name different sources (${each}); ` +
        `say which in the flowfile's models map, e.g. models: { ${JSON.stringify(baseOf(path))}: "<url>" }`;
    }
    return n;
  });
  return { needed, noFolder };
}

/** The flowfile's entry for the file: by final path, then by each sighting's folder/name, name and base name (as modelDeps looks). */
function flowfileUrl(path: string, sightings: { dep: ModelDep }[], map?: Record<string, string>): string | undefined {
  if (!map) return undefined;
  const keys = [path, ...sightings.flatMap(({ dep }) => [`${dep.folder}/${dep.name}`, dep.name, baseOf(dep.name)]), baseOf(path)];
  for (const k of keys) {
    const url = getOwn(map, k); // a name like "constructor" is a key, not Object.prototype's
    if (url === undefined) continue;
    const safe = safeUrl(url);
    if (safe.ok) return safe.value; // an unsafe entry was reported when the workflows were read
  }
  return sightings.find(({ dep }) => dep.urlFrom === "user-map" && dep.url)?.dep.url;
}

/** Every folder name ComfyUI reads for a canonical folder: diffusion_models -> [diffusion_models, unet]. */
export function folderNames(folder: string): string[] {
  const [first, ...rest] = folder.split("/");
  const canon = canonicalFolder(first!) ?? first!;
  const names = [canon, ...(getOwn(MODEL_FOLDERS, canon)?.map((p) => p.replace(/^models\//, "")) ?? []).filter((n) => n !== canon)];
  const sub = rest.length ? `/${rest.join("/")}` : "";
  return names.map((n) => n + sub);
}

/** Where a needed model may sit (every alias folder), canonical first. */
export function candidatePaths(n: { folder: string; name: string }): string[] {
  return folderNames(n.folder).map((f) => `${f}/${n.name}`);
}

export const isTransient = (p: string) => /\.part(\.state(\.tmp)?)?$/.test(p) || /\.flow-link$/.test(p);
const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);
const isSidecar = (p: string) => base(p).startsWith(".") && p.endsWith(".sha256");

export function findPresent(files: Map<string, ScanFile>, n: { folder: string; name: string }): ScanFile | undefined {
  for (const p of candidatePaths(n)) {
    const f = files.get(p);
    if (f) return f;
  }
  return undefined;
}

export const indexFiles = (files: ScanFile[]) => new Map(files.map((f) => [f.path, f]));

/** Present and of the expected size (when one is known). */
export function isReady(f: ScanFile | undefined, size?: number): boolean {
  return !!f && (size === undefined || f.size === size);
}

// ---------- report ----------

export interface FolderUsage {
  folder: string;
  files: number;
  bytes: number;
}

/** Bytes per top-level folder; hardlinked copies counted once. */
export function folderUsage(files: ScanFile[]): FolderUsage[] {
  const seen = new Set<number>();
  const by = new Map<string, FolderUsage>();
  for (const f of files) {
    if (isSidecar(f.path)) continue;
    const folder = f.path.includes("/") ? f.path.slice(0, f.path.indexOf("/")) : ".";
    const u = by.get(folder) ?? { folder, files: 0, bytes: 0 };
    u.files++;
    if (!(f.links > 1 && seen.has(f.ino))) u.bytes += f.size;
    if (f.links > 1) seen.add(f.ino);
    by.set(folder, u);
  }
  return [...by.values()].sort((a, b) => a.folder.localeCompare(b.folder));
}

export interface WorkflowStatus {
  workflow: string;
  ready: boolean;
  missing: { path: string; bytes?: number }[];
  /** sum of known missing sizes; `unknownSizes` counts the others */
  bytesToDownload: number;
  unknownSizes: number;
}

export function workflowStatus(
  w: WorkflowDeps,
  files: Map<string, ScanFile>,
  sizeOf: (d: ModelDep) => number | undefined,
  includeOptional = false,
): WorkflowStatus {
  const missing: WorkflowStatus["missing"] = [];
  for (const d of w.models) {
    if (d.optional && !includeOptional) continue;
    const size = sizeOf(d);
    const present = d.folder ? findPresent(files, { folder: d.folder, name: d.name }) : undefined;
    if (!isReady(present, size)) {
      // the whole size: a .part is sparse, its length says nothing about what is written
      missing.push({ path: `${d.folder ?? "?"}/${d.name}`, ...(size !== undefined ? { bytes: size } : {}) });
    }
  }
  const known = missing.filter((m) => m.bytes !== undefined);
  const bytesToDownload = known.reduce((n, m) => n + m.bytes!, 0);
  return { workflow: w.workflow, ready: !missing.length, missing, bytesToDownload, unknownSizes: missing.length - known.length };
}

// ---------- organize ----------

export interface Move {
  from: string;
  to: string;
  /** keep the source too (it is needed where it is): a hardlink instead of a move */
  link: boolean;
}

/**
 * Needed models that are not where ComfyUI looks but sit elsewhere in the root under the same
 * file name (and size, when known) are moved to the canonical folder; a source that is itself
 * needed where it is gets a hardlink instead.
 */
export function planMoves(files: ScanFile[], needed: Needed[], sizeOf: (n: Needed) => number | undefined = () => undefined): Move[] {
  const idx = indexFiles(files);
  const neededPaths = new Set<string>();
  for (const n of needed) {
    const p = findPresent(idx, n);
    if (p) neededPaths.add(p.path);
  }
  const taken = new Set<string>();
  const moves: Move[] = [];
  for (const n of needed) {
    if (findPresent(idx, n)) continue;
    const size = sizeOf(n);
    const want = base(n.name);
    const src = files
      .filter((f) => base(f.path) === want && !isTransient(f.path) && (size === undefined || f.size === size) && !taken.has(f.path))
      .sort((a, b) => Number(neededPaths.has(a.path)) - Number(neededPaths.has(b.path)) || a.path.localeCompare(b.path))[0];
    if (!src) continue;
    const link = neededPaths.has(src.path);
    if (!link) taken.add(src.path);
    moves.push({ from: src.path, to: `${n.folder}/${n.name}`, link });
  }
  return moves;
}

/** Files that could be identical: model files of equal size on different inodes (only these get hashed). */
export function sameSizeGroups(files: ScanFile[]): ScanFile[][] {
  const by = new Map<number, ScanFile[]>();
  for (const f of files) {
    if (f.size === 0 || isTransient(f.path) || isSidecar(f.path) || !hasModelExtension(f.path)) continue;
    by.set(f.size, [...(by.get(f.size) ?? []), f]);
  }
  return [...by.values()].filter((g) => new Set(g.map((f) => f.ino)).size > 1);
}

/** Given sha256 per path: identical files on other inodes become links to the first (by path). */
export function planLinks(groups: ScanFile[][], hashes: Map<string, string>): { keep: string; replace: string }[] {
  const out: { keep: string; replace: string }[] = [];
  for (const g of groups) {
    const byHash = new Map<string, ScanFile[]>();
    for (const f of g) {
      const h = hashes.get(f.path);
      if (!h || h === "-") continue;
      byHash.set(h, [...(byHash.get(h) ?? []), f]);
    }
    for (const same of byHash.values()) {
      const sorted = [...same].sort((a, b) => a.path.localeCompare(b.path));
      const keep = sorted[0]!;
      for (const f of sorted.slice(1)) if (f.ino !== keep.ino) out.push({ keep: keep.path, replace: f.path });
    }
  }
  return out;
}

// ---------- cleanup ----------

export interface CleanupPlan {
  remove: ScanFile[];
  /** .part files left alone because a download is running */
  protectedParts: string[];
  /** bytes freed once removed (a file with other links frees nothing) */
  freed: number;
}

/**
 * Model files no workflow needs (optional ones count as needed), with their sidecars, and
 * leftover .part files of models no longer needed. While a download runs, no .part is touched.
 * Files without a model extension (configs, placeholders) are never listed. Everything under
 * `keepUnder` (folders a node snapshots a repository into) is kept whole.
 */
export function planCleanup(
  files: ScanFile[],
  needed: { folder: string; name: string }[],
  downloadRunning: boolean,
  keepUnder: readonly string[] = [],
): CleanupPlan {
  const keep = new Set<string>();
  for (const n of needed) for (const p of candidatePaths(n)) keep.add(p);
  const under = keepUnder.map((d) => `${d.replace(/\/+$/, "")}/`);
  files = files.filter((f) => !under.some((d) => f.path.startsWith(d)));
  const remove: ScanFile[] = [];
  const protectedParts: string[] = [];
  for (const f of files) {
    if (isTransient(f.path)) {
      const target = f.path.replace(/\.part(\.state(\.tmp)?)?$/, "").replace(/\.flow-link$/, "");
      if (downloadRunning) {
        protectedParts.push(f.path);
        continue;
      }
      if (!keep.has(target) && hasModelExtension(target)) remove.push(f);
      continue;
    }
    if (isSidecar(f.path)) {
      const target = f.path.replace(/(^|\/)\.([^/]+)\.sha256$/, "$1$2");
      if (!keep.has(target) && !files.some((g) => g.path === target)) remove.push(f);
      continue;
    }
    if (!hasModelExtension(f.path) || keep.has(f.path)) continue;
    remove.push(f);
    const side = f.path.replace(/([^/]+)$/, ".$1.sha256");
    const s = files.find((g) => g.path === side);
    if (s && !remove.includes(s)) remove.push(s);
  }
  const freed = remove.reduce((n, f) => n + (f.links > 1 ? 0 : f.size), 0);
  return { remove, protectedParts, freed };
}

// ---------- output ----------

interface ProgressFile {
  name: string;
  done: number;
  total: number;
  speed: number;
  eta: number | null;
}

/** One line: total bytes, speed and ETA, then each active file. */
export function progressLine(ev: { done: number; total: number; speed: number; eta: number | null; files?: ProgressFile[] }): string {
  const pct = (d: number, t: number) => (t > 0 ? `${Math.floor((d / t) * 100)}%` : "?%");
  const head = `${fmtBytes(ev.done)} / ${fmtBytes(ev.total)} ${pct(ev.done, ev.total)} at ${fmtBytes(ev.speed)}/s, ${fmtEta(ev.eta)}`;
  const files = (ev.files ?? []).map((f) => `${f.name} ${pct(f.done, f.total)} ${fmtBytes(f.speed)}/s ${fmtEta(f.eta)}`);
  return [head, ...files].join(" | ");
}

export { FOLDER_ALIASES };
