// The packs a run wants on every host, decided once on this machine before any host is touched:
// the chosen workflows' entries in flow.lock.json (or the packs named on the command line), with
// the flowfile's pins winning. Every pack ends as an exact git commit or registry version, so every
// host of the fleet gets the same bytes.
import { join } from "node:path";
import { TaskError } from "../../lib/index.ts";
import { workflowContentHash, type LockedPack } from "../../lib/comfy/lockfile.ts";
import { canonicalRepo, isCommit, parsePackSpec, repoKey, type PackSpec } from "../../lib/comfy/pack-spec.ts";
import { safePackDir } from "../../lib/comfy/safe-names.ts";
import { readWorkflowFile, workflowFiles } from "../shared/workflow-files.ts";
import type { UpstreamClient } from "../workflow/upstream.ts";

import { LOCK_FILE } from "../workflow/index.ts";
import { readLockFile } from "../workflow/lock-file.ts";

export { LOCK_FILE };

export interface WantedPack {
  /** the folder under custom_nodes */
  dir: string;
  kind: "git" | "registry";
  /** canonical https URL: the git origin, or the registry pack's repository when known */
  repo?: string;
  commit?: string;
  registryId?: string;
  version?: string;
  /** node classes the workflows use from it (verified in /object_info after the restart) */
  classes: string[];
  /** every use is muted or bypassed: installed, but its classes are not required */
  optional: boolean;
  /** which workflows (or "command line", "pin") asked for it */
  from: string[];
  /** other names it goes by (a pin's key) */
  aliases?: string[];
}

export class WantedError extends TaskError {}

/** The registry writes a nightly's version as the commit it was saved at: that is a git pin. */
function fromLocked(p: LockedPack, workflow: string): WantedPack {
  const base = { classes: p.classes, optional: p.optional, from: [workflow] };
  const repoOf = (url: string) => {
    const r = canonicalRepo(url);
    if ("why" in r) throw new WantedError(`${workflow}: pack ${url} in ${LOCK_FILE}: ${r.why}`);
    return r;
  };
  if (p.kind === "git" || isCommit(p.version) || (p.kind === "registry" && !p.version)) {
    const url = p.kind === "git" ? p.repo : p.repo;
    if (!url) throw new WantedError(`${workflow}: pack ${p.kind === "registry" ? p.id : "?"} has a commit but no repository`);
    const r = repoOf(url);
    const commit = p.kind === "git" ? p.commit : p.version;
    if (!isCommit(commit)) throw new WantedError(`${workflow}: pack ${url}: ${JSON.stringify(commit)} is not a commit`);
    return { ...base, dir: r.dir, kind: "git", repo: r.repo, commit, ...(p.kind === "registry" ? { registryId: p.id } : {}) };
  }
  const r = p.repo ? repoOf(p.repo) : undefined;
  const dir = r?.dir ?? p.id;
  if (!safePackDir(dir).ok) throw new WantedError(`${workflow}: registry pack ${JSON.stringify(p.id)}: not a safe folder name`);
  return { ...base, dir, kind: "registry", registryId: p.id, version: p.version, ...(r ? { repo: r.repo } : {}) };
}

/** Keys a pin or a host folder may use to name this pack. */
export function packKeys(p: Pick<WantedPack, "dir" | "repo" | "registryId" | "aliases">): string[] {
  return [
    p.dir.toLowerCase(),
    ...(p.repo ? [repoKey(p.repo)] : []),
    ...(p.registryId ? [p.registryId.toLowerCase()] : []),
    ...(p.aliases ?? []).map((a) => a.toLowerCase()),
  ];
}

/**
 * Packs the chosen workflows need, as flow.lock.json pins them. A missing or stale entry is an
 * error naming the file, unless `onUnlocked` takes it (deploy: that workflow's packs are left out,
 * said, and its verify is the red line).
 */
export async function packsOfWorkflows(
  projectDir: string,
  files?: string[],
  onUnlocked?: (message: string) => void,
): Promise<WantedPack[]> {
  const lock = await readLockFile(join(projectDir, LOCK_FILE));
  const out: WantedPack[] = [];
  const stale: string[] = [];
  for (const f of workflowFiles(projectDir, files)) {
    const entry = lock && Object.hasOwn(lock.workflows, f.name) ? lock.workflows[f.name] : undefined;
    const { json } = await readWorkflowFile(f);
    if (!entry || entry.contentHash !== workflowContentHash(json)) {
      stale.push(`${f.name} (${entry ? "changed since it was locked" : "not locked"})`);
      continue;
    }
    for (const p of entry.packs) out.push(fromLocked(p, f.name));
  }
  if (stale.length) {
    const msg = `${LOCK_FILE} does not pin ${stale.join(", ")}: run flow run workflow:lock, so every host installs the same commits`;
    if (!onUnlocked) throw new WantedError(msg);
    onUnlocked(`${msg}; their packs are not installed`);
  }
  return out;
}

/** Turn a spec into an exact pin, asking GitHub or the registry only when the spec leaves it open. */
export async function pinSpec(spec: PackSpec, up: UpstreamClient, from: string): Promise<WantedPack> {
  const base = { classes: [], optional: false, from: [from] };
  if (spec.kind === "git") {
    const commit = isCommit(spec.ref) ? spec.ref : await up.githubCommit(spec.repo, spec.ref ?? "HEAD");
    return { ...base, dir: spec.dir, kind: "git", repo: spec.repo, commit };
  }
  const id = spec.kind === "registry" ? spec.id : spec.name;
  const version = spec.kind === "registry" && spec.version ? spec.version : await up.registryLatest(id);
  const info = await up.registryPack(id).catch(() => undefined);
  const r = info?.repository ? canonicalRepo(info.repository) : undefined;
  const repo = r && !("why" in r) ? r : undefined;
  return { ...base, dir: repo?.dir ?? id, kind: "registry", registryId: id, version, ...(repo ? { repo: repo.repo } : {}) };
}

/**
 * One entry per folder. Two sources that agree merge; a pin replaces what the workflows said; two
 * workflows that disagree are an error naming both, unless a pin settles it.
 */
export function mergeWanted(fromWorkflows: WantedPack[], pins: WantedPack[]): WantedPack[] {
  const byKey = new Map<string, WantedPack>();
  const find = (p: WantedPack) =>
    packKeys(p)
      .map((k) => byKey.get(k))
      .find(Boolean);
  const put = (p: WantedPack) => packKeys(p).forEach((k) => byKey.set(k, p));
  const same = (a: WantedPack, b: WantedPack) => a.kind === b.kind && a.commit === b.commit && a.version === b.version;
  const conflicts: string[] = [];
  const pinned = new Set<WantedPack>();
  for (const pin of pins) {
    const had = find(pin);
    const merged = had ? { ...pin, classes: [...new Set([...had.classes, ...pin.classes])], from: [...had.from, ...pin.from] } : pin;
    if (had) packKeys(had).forEach((k) => byKey.delete(k));
    put(merged);
    pinned.add(merged);
  }
  for (const p of fromWorkflows) {
    const had = find(p);
    if (!had) {
      put({ ...p, classes: [...p.classes], from: [...p.from] });
      continue;
    }
    had.classes = [...new Set([...had.classes, ...p.classes])];
    had.optional = had.optional && p.optional;
    if (!had.from.includes(p.from[0]!)) had.from.push(...p.from);
    if (!pinned.has(had) && !same(had, p)) {
      const at = (x: WantedPack) => (x.kind === "git" ? x.commit!.slice(0, 10) : x.version);
      conflicts.push(`${p.dir}: ${had.from[0]} wants ${at(had)}, ${p.from[0]} wants ${at(p)}`);
    }
  }
  if (conflicts.length) {
    throw new WantedError(
      `workflows disagree on a pack's version: ${conflicts.join("; ")}; ` +
        `pin one in the flowfile: nodes({ pins: { "<pack>": "<url>@<commit>" } })`,
    );
  }
  return [...new Set(byKey.values())].sort((a, b) => a.dir.localeCompare(b.dir));
}

/** Parse the pins of the flowfile (pack name -> spec); a bad one names its key. */
export function parsePins(pins: Record<string, string> | undefined): { key: string; spec: PackSpec }[] {
  return Object.entries(pins ?? {}).map(([key, value]) => {
    try {
      return { key, spec: parsePackSpec(value) };
    } catch (e) {
      throw new WantedError(`nodes({ pins }) ${JSON.stringify(key)}: ${(e as Error).message}`);
    }
  });
}
