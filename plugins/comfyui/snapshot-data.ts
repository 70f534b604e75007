// A snapshot of what a host's ComfyUI runs, as data: the image, ComfyUI's version, every pack
// under custom_nodes with where it came from, and the pip packages in the host's python target.
// Pure: the id, the file's shape and its parse, and what a restore would change.
import type { HostPack } from "../nodes/host-packs.ts";

export const SNAPSHOT_FILE = "snapshot.json";
/** packs present at restore time but absent from the snapshot go here, inside the snapshot's folder */
export const REMOVED_DIR = "removed";

export interface SnapshotPack {
  name: string;
  kind: HostPack["kind"];
  disabled: boolean;
  origin?: string;
  commit?: string;
  registryId?: string;
  version?: string;
  /** it had local changes: a restore brings back its commit, not those edits */
  dirty: boolean;
}

export type SnapshotPip = { available: true; freeze: string[] } | { available: false; reason: string };

export interface ComfySnapshot {
  format: 1;
  id: string;
  createdAt: string;
  /** why it was taken ("before comfyui:update to ...", or absent for a snapshot asked for) */
  reason?: string;
  container: string;
  /** the image the container was created from, as named (a tag) */
  image: string;
  /** that image's id then: the tag may point elsewhere later */
  imageId?: string;
  /** GET /system_stats -> system.comfyui_version; null when ComfyUI did not answer */
  comfyuiVersion: string | null;
  packs: SnapshotPack[];
  /** `pip freeze --path` of the python target inside the container */
  pip: SnapshotPip;
}

const ID_RE = /^\d{8}T\d{6}Z-[0-9a-f]{4}$/;

/** `20261130T041500Z-ab12`: sorts by time, and two taken in the same second still differ. */
export function snapshotId(now: Date = new Date(), rand?: string): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, "Z")
    .replace(/[-:]/g, "");
  const r = rand ?? Math.floor(Math.random() * 0x10000).toString(16);
  return `${stamp}-${r.padStart(4, "0").slice(-4)}`;
}

export const isSnapshotId = (s: string): boolean => ID_RE.test(s);

export function snapshotPack(p: HostPack): SnapshotPack {
  const out: SnapshotPack = { name: p.name, kind: p.kind, disabled: p.disabled, dirty: p.dirty };
  if (p.origin) out.origin = p.origin;
  if (p.commit) out.commit = p.commit;
  if (p.registryId) out.registryId = p.registryId;
  if (p.version) out.version = p.version;
  return out;
}

/** pip freeze's lines that name a package (comments and blanks dropped). */
export function freezeLines(stdout: string): string[] {
  return stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
}

/** ComfyUI's version from GET /system_stats (`{"system": {"comfyui_version": "0.3.60"}}`); null when it is not that. */
export function parseComfyVersion(body: string): string | null {
  try {
    const v = JSON.parse(body)?.system?.comfyui_version;
    return typeof v === "string" && v ? v : null;
  } catch {
    return null;
  }
}

/** The file's text: stable key order, one field per line, so a human can read and diff two snapshots. */
export function snapshotText(s: ComfySnapshot): string {
  return JSON.stringify(s, null, 2) + "\n";
}

/** A snapshot file read back; `where` names it in the error. */
export function parseSnapshot(text: string, where: string): ComfySnapshot {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not JSON (${(e as Error).message})`);
  }
  const s = j as Partial<ComfySnapshot> | null;
  const bad = (what: string) => new Error(`${where}: not a comfyui snapshot (${what})`);
  if (!s || typeof s !== "object" || Array.isArray(s)) throw bad("not an object");
  if (s.format !== 1) throw bad(`format ${JSON.stringify(s.format)}, expected 1`);
  if (typeof s.id !== "string" || !isSnapshotId(s.id)) throw bad(`id ${JSON.stringify(s.id)}`);
  if (typeof s.image !== "string" || !s.image) throw bad("no image");
  if (!Array.isArray(s.packs) || s.packs.some((p) => !p || typeof p.name !== "string")) throw bad("packs is not a list of packs");
  const pip = s.pip as Partial<{ available: boolean; freeze: unknown; reason: unknown }> | undefined;
  if (!pip || (pip.available === true ? !Array.isArray(pip.freeze) : typeof pip.reason !== "string"))
    throw bad("pip is neither a freeze nor a reason");
  return s as ComfySnapshot;
}

/** The marker line the list command prints before each snapshot's JSON (folded onto one line). */
export const LIST_MARK = "##flow-snapshot";

export interface ListedSnapshot {
  id: string;
  snapshot?: ComfySnapshot;
  /** why the folder's file could not be read as a snapshot */
  problem?: string;
}

export function parseSnapshotList(out: string): ListedSnapshot[] {
  const found: ListedSnapshot[] = [];
  const lines = out.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const [mark, id] = lines[i]!.split("\t");
    if (mark !== LIST_MARK || !id) continue;
    try {
      found.push({ id, snapshot: parseSnapshot(lines[i + 1] ?? "", `snapshot ${id}`) });
    } catch (e) {
      found.push({ id, problem: (e as Error).message });
    }
  }
  return found.sort((a, b) => a.id.localeCompare(b.id));
}

/** What nodes:install takes for a pack: `<origin>@<commit>` or `<registry id>@<version>`; none for a hand-made folder. */
export function packSpec(p: SnapshotPack): string | undefined {
  if (p.origin && p.commit) return `${p.origin}@${p.commit}`;
  if (p.registryId && p.version) return `${p.registryId}@${p.version}`;
  return undefined;
}

function samePack(s: SnapshotPack, now: HostPack): boolean {
  if (s.commit) return now.commit === s.commit && (!s.origin || now.origin === s.origin);
  if (s.registryId) return now.registryId === s.registryId && now.version === s.version;
  return true; // a folder flow cannot identify: present is all it can tell
}

export interface PackRestorePlan {
  /** specs for nodes:install: packs missing now or at another commit / version */
  install: string[];
  /** packs present now that the snapshot does not have: moved aside, not deleted */
  moveAside: HostPack[];
  /** packs of the snapshot flow cannot bring back (a folder without git or registry record), with why */
  unrestorable: string[];
  /** packs already as in the snapshot */
  same: number;
}

export function packRestorePlan(snap: SnapshotPack[], now: HostPack[]): PackRestorePlan {
  const plan: PackRestorePlan = { install: [], moveAside: [], unrestorable: [], same: 0 };
  for (const s of snap) {
    const cur = now.find((n) => n.name === s.name);
    if (cur && samePack(s, cur)) {
      plan.same++;
      continue;
    }
    const spec = packSpec(s);
    if (spec) plan.install.push(spec);
    else plan.unrestorable.push(`${s.name} (${cur ? "changed" : "gone"}; a ${s.kind} with no git origin or registry record)`);
  }
  plan.moveAside = now.filter((n) => !snap.some((s) => s.name === n.name));
  return plan;
}

/** pip's name rule (PEP 503): case and runs of -_. do not matter. */
const pipName = (n: string) => n.toLowerCase().replace(/[-_.]+/g, "-");

function pinned(line: string): { name: string; version: string } | null {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$/.exec(line);
  return m ? { name: pipName(m[1]!), version: m[2]! } : null;
}

export interface PipRestorePlan {
  /** `name==version` lines to install (missing now, or at another version) */
  install: string[];
  /** lines of another form (a URL, an editable install) that differ: not brought back */
  unrestorable: string[];
  /** packages installed since: a restore leaves them (pip cannot uninstall from a --target folder) */
  extra: string[];
}

export function pipRestorePlan(snap: string[], now: string[]): PipRestorePlan {
  const current = new Map<string, string>();
  for (const l of now) {
    const p = pinned(l);
    if (p) current.set(p.name, p.version);
  }
  const plan: PipRestorePlan = { install: [], unrestorable: [], extra: [] };
  const wanted = new Set<string>();
  for (const l of snap) {
    const p = pinned(l);
    if (!p) {
      if (!now.includes(l)) plan.unrestorable.push(l);
      continue;
    }
    wanted.add(p.name);
    if (current.get(p.name) !== p.version) plan.install.push(l);
  }
  plan.extra = [...current.keys()].filter((n) => !wanted.has(n)).sort();
  return plan;
}
