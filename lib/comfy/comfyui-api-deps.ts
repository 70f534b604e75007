// Whether a host has what a comfyui-api workflow needs (pure): the model folders it reads from
// `config.models`, the model files it names, the node classes its prompt uses. Facts come from
// one listing of the host's models folder and ComfyUI's /object_info/<class> answers.
import type { WorkflowFacts } from "./comfyui-api-workflow.ts";
import { canonicalFolder, MODEL_FOLDERS } from "./model-folders.ts";
import { getOwn } from "./own-keys.ts";

export interface HostModels {
  /** folders directly under models/ (what comfyui-api turns into config.models entries) */
  folders: Set<string>;
  /** folder -> its top-level entries, as comfyui-api lists them for the enum (put_*_here left out) */
  entries: Map<string, string[]>;
  /** every file, "folder/sub/name" */
  files: Set<string>;
}

/** `find -L <models> -mindepth 1 -maxdepth N -printf '%y %P\n'` -> the host's models. */
export function parseModelListing(text: string): HostModels {
  const m: HostModels = { folders: new Set(), entries: new Map(), files: new Set() };
  const lines = text
    .split("\n")
    .filter(Boolean)
    .map((l) => ({ type: l[0]!, path: l.slice(2) }))
    .filter((l) => l.path);
  for (const l of lines) if (l.type === "d" && !l.path.includes("/")) m.folders.add(l.path);
  for (const l of lines) {
    const parts = l.path.split("/");
    if (parts.length < 2) continue;
    if (l.type === "f") m.files.add(l.path);
    if (parts.length === 2 && m.folders.has(parts[0]!) && !/^put_.*_here$/.test(parts[1]!)) {
      const list = m.entries.get(parts[0]!) ?? [];
      list.push(parts[1]!);
      m.entries.set(parts[0]!, list);
    }
  }
  for (const list of m.entries.values()) list.sort();
  return m;
}

/** The folder names a model folder is found under (ComfyUI's aliases: diffusion_models and unet, ...). */
export function searchFolders(folder: string): string[] {
  const canon = canonicalFolder(folder);
  const paths = canon ? getOwn(MODEL_FOLDERS, canon) : undefined;
  const names = paths ? paths.map((p) => p.replace(/^models\//, "")) : [];
  return [...new Set([folder, ...names])];
}

export interface HostFacts {
  models: HostModels;
  /** class name -> whether the host's ComfyUI knows it; absent: not asked / no answer */
  classes?: Map<string, boolean>;
}

/** What the host lacks for this workflow, one sentence each (empty: nothing). */
export function hostProblems(w: WorkflowFacts, host: HostFacts): string[] {
  const out: string[] = [];
  for (const f of w.modelFolders) {
    if (!host.models.folders.has(f)) {
      out.push(
        `reads config.models.${f}, but models/${f} is not a folder on the host: ` +
          `comfyui-api would fail to load it ("Cannot read properties of undefined")`,
      );
    } else if (!(host.models.entries.get(f) ?? []).length) {
      out.push(`reads config.models.${f}, but models/${f} on the host is empty: its model enum would offer nothing`);
    }
  }
  for (const ref of w.modelFiles) {
    const there = searchFolders(ref.folder).some((d) => host.models.files.has(`${d}/${ref.name}`));
    if (!there)
      out.push(`${ref.via} names ${ref.folder}/${ref.name}, which is not on the host (models:download fetches what workflows name)`);
  }
  for (const c of w.classTypes) {
    if (host.classes?.get(c) === false)
      out.push(`uses node class ${c}, which the host's ComfyUI does not have (its custom node pack is not installed?)`);
  }
  return out;
}
