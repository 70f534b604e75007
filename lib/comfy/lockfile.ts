// flow.lock.json: the exact packs and models each workflow needs, so every host of a fleet
// installs the identical set. Pure: whoever fetches commits, sizes and hashes passes them in.
import { createHash } from "node:crypto";
import { stripUrlCredentials } from "../url-credentials.ts";
import type { ModelDep } from "./model-deps.ts";
import type { WorkflowResolution } from "./node-resolve.ts";
import { getOwn } from "./own-keys.ts";

export const LOCK_VERSION = 1;

export type LockedPack =
  | { kind: "git"; repo: string; commit: string; classes: string[]; optional: boolean }
  | { kind: "registry"; id: string; version: string; repo?: string; classes: string[]; optional: boolean };

export interface LockedModel {
  folder: string;
  name: string;
  url: string;
  size?: number;
  sha256?: string;
  optional: boolean;
}

export interface LockedWorkflow {
  /** sha256 of the workflow file's canonical JSON; `workflow:lock --check` compares it. */
  contentHash: string;
  packs: LockedPack[];
  models: LockedModel[];
  /** What could not be locked, with why (unknown class, model without source, ...). */
  unresolved: string[];
}

export interface LockFile {
  version: typeof LOCK_VERSION;
  workflows: Record<string, LockedWorkflow>;
}

/** JSON with object keys sorted, so that re-saving a workflow in another key order keeps its hash. */
export function canonicalJson(v: unknown): string {
  // Its own stack, not recursion: a file may nest values 10^5 deep. Items are values to write, or
  // punctuation ({ text }) due after them; pushed in reverse so they pop in writing order.
  const out: string[] = [];
  const todo: ({ value: unknown } | { text: string })[] = [{ value: v }];
  while (todo.length) {
    const item = todo.pop()!;
    if ("text" in item) {
      out.push(item.text);
      continue;
    }
    const x = item.value;
    if (Array.isArray(x)) {
      out.push("[");
      todo.push({ text: "]" });
      for (let i = x.length - 1; i >= 0; i--) {
        todo.push({ value: x[i] });
        if (i > 0) todo.push({ text: "," });
      }
    } else if (x && typeof x === "object") {
      const keys = Object.keys(x).sort();
      out.push("{");
      todo.push({ text: "}" });
      for (let i = keys.length - 1; i >= 0; i--) {
        todo.push({ value: (x as Record<string, unknown>)[keys[i]!] }, { text: `${JSON.stringify(keys[i])}:` });
        if (i > 0) todo.push({ text: "," });
      }
    } else out.push(JSON.stringify(x) ?? "null");
  }
  return out.join("");
}

export function workflowContentHash(workflowJson: unknown): string {
  return createHash("sha256").update(canonicalJson(workflowJson)).digest("hex");
}

/** Facts fetched elsewhere: repo -> commit to pin (when the node did not carry one), model URL -> size/sha256. */
export interface LockFacts {
  commits?: Record<string, string>;
  models?: Record<string, { size?: number; sha256?: string }>;
}

export function lockWorkflow(workflowJson: unknown, nodes: WorkflowResolution, models: ModelDep[], facts: LockFacts = {}): LockedWorkflow {
  const unresolved: string[] = [];
  const packs: LockedPack[] = [];
  for (const p of nodes.packs) {
    const { repo, registryId, version, commit } = p.pack;
    if (registryId && version)
      packs.push({ kind: "registry", id: registryId, version, ...(repo ? { repo } : {}), classes: p.classes, optional: p.optional });
    else if (repo && (commit ?? facts.commits?.[repo]))
      packs.push({ kind: "git", repo, commit: (commit ?? facts.commits?.[repo]) as string, classes: p.classes, optional: p.optional });
    else unresolved.push(`pack ${repo ?? registryId}: no version or commit known (fetch the default branch's head commit)`);
  }
  for (const c of nodes.classes)
    if (c.status === "unknown" || c.status === "comfyui-too-old") unresolved.push(`class ${c.classType}: ${c.reason ?? c.status}`);
  const locked: LockedModel[] = [];
  for (const m of models) {
    if (!m.url || !m.folder) {
      unresolved.push(`model ${m.folder ?? "?"}/${m.name}: ${!m.url ? "no source URL" : "no target folder"}`);
      continue;
    }
    const f = facts.models?.[m.url] ?? {};
    const sha = f.sha256 ?? (m.hash?.type === "sha256" ? m.hash.value : undefined);
    // A URL's token (`?token=` from the flowfile's models map) is never written into the committed lock file.
    locked.push({
      folder: m.folder,
      name: m.name,
      url: stripUrlCredentials(m.url),
      ...(f.size !== undefined ? { size: f.size } : {}),
      ...(sha ? { sha256: sha } : {}),
      optional: m.optional,
    });
  }
  packs.sort((a, b) => (a.kind === "git" ? a.repo : a.id).localeCompare(b.kind === "git" ? b.repo : b.id));
  return { contentHash: workflowContentHash(workflowJson), packs, models: locked, unresolved };
}

/** A lock file's text as a LockFile; undefined when it is not JSON or not this version (the caller says so). */
export function parseLock(text: string): LockFile | undefined {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return undefined;
  }
  const l = j as Partial<LockFile> | null;
  if (l?.version !== LOCK_VERSION || typeof l.workflows !== "object" || l.workflows === null) return undefined;
  return l as LockFile;
}

/** The well-formed model entries the lock pins for a workflow (none when it has no entry). */
export function lockedModels(lock: LockFile, workflow: string): LockedModel[] {
  const models = getOwn(lock.workflows, workflow)?.models;
  if (!Array.isArray(models)) return [];
  const str = (v: unknown) => typeof v === "string" && v !== "";
  return models.filter((m) => !!m && str(m.folder) && str(m.name) && str(m.url));
}

/** Names of workflows whose file changed (or appeared, or vanished) since the lock was written. */
export function checkLock(lock: LockFile, current: Record<string, unknown>): { changed: string[]; added: string[]; removed: string[] } {
  const changed: string[] = [];
  const added: string[] = [];
  for (const [name, json] of Object.entries(current)) {
    const l = getOwn(lock.workflows, name); // file names are data: "constructor" is not a locked workflow
    if (!l) added.push(name);
    else if (l.contentHash !== workflowContentHash(json)) changed.push(name);
  }
  const removed = Object.keys(lock.workflows).filter((n) => !Object.hasOwn(current, n));
  return { changed, added, removed };
}

export function serializeLock(lock: LockFile): string {
  const sorted: LockFile = {
    version: lock.version,
    workflows: Object.fromEntries(Object.entries(lock.workflows).sort(([a], [b]) => a.localeCompare(b))),
  };
  return JSON.stringify(sorted, null, 2) + "\n";
}
