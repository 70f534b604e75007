// Custom node packs load models with their own loaders, and some fetch whole Hugging Face
// repositories at run time. What we know of them, pure:
// - CUSTOM_LOADER_INPUTS: which folder a popular pack's loader input reads, from each pack's
//   `folder_paths.get_filename_list("...")` (a fact of a pack version; a host's /object_info wins);
// - inferLoaderInputs: the same fact read off a host's /object_info, where a combo's options are
//   exactly the files one models folder holds;
// - RUNTIME_DOWNLOADS: nodes that snapshot a repository into a models folder on first run, so
//   flow can fetch it ahead like any model;
// - matchModelName: a file name without a URL, found in listed Hugging Face repositories.
// Class, input and file names come from workflows and hosts: tables are read for own keys only.
import type { ObjectInfo, ObjectInfoNode } from "./data-schemas.ts";
import { widgetInputs } from "./convert.ts";
import { CORE_LOADER_INPUTS, MODEL_FOLDERS, canonicalFolder, type LoaderInput } from "./model-folders.ts";
import { getOwn, setOwn } from "./own-keys.ts";
import { safeFolder, safeModelRelPath } from "./safe-names.ts";

const li = (input: string, folder: string, widgetIndex: number): LoaderInput => ({ input, folder, widgetIndex });

/**
 * Loader class -> its model inputs, for packs whose loaders the workflows we see use most.
 * widgetIndex is the input's place among the node's widgets (UI widgets_values).
 */
export const CUSTOM_LOADER_INPUTS: Record<string, LoaderInput[]> = {
  // kijai/ComfyUI-WanVideoWrapper (nodes_model_loading.py, multitalk/, fantasytalking/, controlnet/, uni3c/).
  // WanVideoModelLoader lists unet_gguf + diffusion_models: both are read from models/diffusion_models (and unet).
  WanVideoModelLoader: [li("model", "diffusion_models", 0)],
  WanVideoVAELoader: [li("model_name", "vae", 0)],
  WanVideoTinyVAELoader: [li("model_name", "vae_approx", 0)],
  LoadWanVideoT5TextEncoder: [li("model_name", "text_encoders", 0)],
  // lists clip_vision + text_encoders; the clip_vision one is what it is for
  LoadWanVideoClipTextEncoder: [li("model_name", "clip_vision", 0)],
  WanVideoLoraSelect: [li("lora", "loras", 0)],
  // lora_i, strength_i pairs
  WanVideoLoraSelectMulti: [0, 1, 2, 3, 4].map((i) => li(`lora_${i}`, "loras", 2 * i)),
  WanVideoVACEModelSelect: [li("vace_model", "diffusion_models", 0)],
  MultiTalkModelLoader: [li("model", "diffusion_models", 0)],
  FantasyTalkingModelLoader: [li("model", "diffusion_models", 0)],
  WanVideoControlnetLoader: [li("model", "controlnet", 0)],
  WanVideoUni3C_ControlnetLoader: [li("model", "controlnet", 0)],
  // kijai/ComfyUI-KJNodes
  CheckpointLoaderKJ: [li("ckpt_name", "checkpoints", 0)],
  DiffusionModelLoaderKJ: [li("model_name", "diffusion_models", 0)],
  DiffusionModelSelector: [li("model_name", "diffusion_models", 0)],
  // city96/ComfyUI-GGUF: unet_gguf and clip_gguf are the core folders' paths with .gguf files
  UnetLoaderGGUF: [li("unet_name", "diffusion_models", 0)],
  UnetLoaderGGUFAdvanced: [li("unet_name", "diffusion_models", 0)],
  CLIPLoaderGGUF: [li("clip_name", "text_encoders", 0)],
  DualCLIPLoaderGGUF: [li("clip_name1", "text_encoders", 0), li("clip_name2", "text_encoders", 1)],
  TripleCLIPLoaderGGUF: [li("clip_name1", "text_encoders", 0), li("clip_name2", "text_encoders", 1), li("clip_name3", "text_encoders", 2)],
  // cubiq/ComfyUI_IPAdapter_plus registers models/ipadapter; cubiq/ComfyUI_InstantID models/instantid
  IPAdapterModelLoader: [li("ipadapter_file", "ipadapter", 0)],
  InstantIDModelLoader: [li("instantid_file", "instantid", 0)],
  // Kosinkadink/ComfyUI-AnimateDiff-Evolved (utils_model.py Folders)
  ADE_LoadAnimateDiffModel: [li("model_name", "animatediff_models", 0)],
  ADE_AnimateDiffLoaderGen1: [li("model_name", "animatediff_models", 0)],
  ADE_AnimateDiffLoaderWithContext: [li("model_name", "animatediff_models", 0)],
  AnimateDiffLoaderV1: [li("model_name", "animatediff_models", 0)],
  ADE_AnimateDiffLoaderV1Advanced: [li("model_name", "animatediff_models", 0)],
  ADE_AnimateDiffLoRALoader: [li("name", "animatediff_motion_lora", 0)],
};

/** Loader facts, input by input: the later tables win (core, then the pack table, then `extra`, e.g. inferred). */
export function mergeLoaderInputs(...tables: (Record<string, LoaderInput[]> | undefined)[]): Map<string, LoaderInput[]> {
  // A Map: a node typed "constructor" must find nothing here, not Object's constructor.
  const out = new Map<string, LoaderInput[]>();
  for (const t of tables)
    for (const [cls, inputs] of Object.entries(t ?? {})) {
      const merged = [...(out.get(cls) ?? [])];
      for (const l of inputs) {
        const at = merged.findIndex((m) => m.input === l.input);
        if (at >= 0) merged[at] = l;
        else merged.push(l);
      }
      out.set(cls, merged);
    }
  return out;
}

// ---------- folders read off a host's /object_info ----------

/** Placeholders loaders add to their file lists ("none" to load nothing). */
const PLACEHOLDERS = new Set(["none", "None", "NONE"]);

/** The string options of a combo input (`[[...options], {...}]`, or `["COMBO", { options }]`); undefined for other inputs. */
export function comboOptions(spec: unknown): string[] | undefined {
  if (!Array.isArray(spec)) return undefined;
  const [type, opts] = spec as [unknown, unknown];
  const list = Array.isArray(type)
    ? type
    : type === "COMBO" && typeof opts === "object" && opts !== null && Array.isArray((opts as { options?: unknown }).options)
      ? (opts as { options: unknown[] }).options
      : undefined;
  if (!list || !list.every((o) => typeof o === "string")) return undefined;
  return list as string[];
}

function inputSpec(def: ObjectInfoNode, input: string): unknown {
  return getOwn(def.input?.required, input) ?? getOwn(def.input?.optional, input);
}

/**
 * Core loader inputs whose options are exactly one folder's files (`get_filename_list(folder)`):
 * a host's /object_info carries its folder listings in them. VAELoader is not one (it adds the
 * vae_approx decoders), nor are the multi-input CLIP loaders needed (CLIPLoader says the same).
 */
const LISTING_INPUTS: [cls: string, input: string, folder: string][] = [
  ["CheckpointLoaderSimple", "ckpt_name", "checkpoints"],
  ["LoraLoaderModelOnly", "lora_name", "loras"],
  ["UNETLoader", "unet_name", "diffusion_models"],
  ["CLIPLoader", "clip_name", "text_encoders"],
  ["CLIPVisionLoader", "clip_name", "clip_vision"],
  ["ControlNetLoader", "control_net_name", "controlnet"],
  ["UpscaleModelLoader", "model_name", "upscale_models"],
  ["StyleModelLoader", "style_model_name", "style_models"],
  ["GLIGENLoader", "gligen_name", "gligen"],
  ["HypernetworkLoader", "hypernetwork_name", "hypernetworks"],
  ["PhotoMakerLoader", "photomaker_model_name", "photomaker"],
  ["ModelPatchLoader", "name", "model_patches"],
  ["AudioEncoderLoader", "audio_encoder_name", "audio_encoders"],
];

/** The folder listings a host's /object_info shows through its core loaders' combos. */
export function folderListingsFromObjectInfo(oi: ObjectInfo): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [cls, input, folder] of LISTING_INPUTS) {
    const def = getOwn(oi, cls);
    const opts = def ? comboOptions(inputSpec(def, input)) : undefined;
    if (opts && !Object.hasOwn(out, folder)) out[folder] = opts;
  }
  return out;
}

/** Each widget input's place in widgets_values (a seed's control_after_generate value takes one more). */
function widgetIndexes(def: ObjectInfoNode): Map<string, number> {
  const out = new Map<string, number>();
  let i = 0;
  for (const w of widgetInputs(def)) {
    out.set(w.name, i);
    i += w.control ? 2 : 1;
  }
  return out;
}

const setKey = (names: readonly string[]) => [...new Set(names)].sort().join("\u0000");

/**
 * Loader inputs read off a host: a combo whose options (placeholders like "none" aside) are exactly
 * the files one folder lists there reads that folder. `listings`: folder -> file names, from the
 * host's GET /models/<folder> and/or folderListingsFromObjectInfo; empty listings say nothing, and
 * two folders listing the same files leave their inputs undecided. Core classes are left to the
 * core table (their facts are ComfyUI's own).
 */
export function inferLoaderInputs(oi: ObjectInfo, listings: Readonly<Record<string, readonly string[]>>): Record<string, LoaderInput[]> {
  const byFiles = new Map<string, Set<string>>();
  for (const [folder, files] of Object.entries(listings)) {
    const real = files.filter((f) => !PLACEHOLDERS.has(f));
    const ok = safeFolder(folder);
    if (!real.length || !ok.ok) continue;
    const key = setKey(real);
    const canon = canonicalFolder(ok.value) ?? ok.value;
    byFiles.set(key, (byFiles.get(key) ?? new Set()).add(canon));
  }
  const out: Record<string, LoaderInput[]> = {};
  for (const [cls, def] of Object.entries(oi)) {
    if (Object.hasOwn(CORE_LOADER_INPUTS, cls)) continue;
    const idx = widgetIndexes(def);
    const found: LoaderInput[] = [];
    for (const [input, at] of idx) {
      const opts = comboOptions(inputSpec(def, input))?.filter((o) => !PLACEHOLDERS.has(o));
      if (!opts?.length) continue;
      const folders = byFiles.get(setKey(opts));
      if (folders?.size === 1) found.push(li(input, [...folders][0]!, at));
    }
    if (found.length) setOwn(out, cls, found);
  }
  return out;
}

// ---------- nodes that download a Hugging Face repository at run time ----------

export interface RuntimeDownloadNode {
  /** the widget naming the repository */
  input: string;
  widgetIndex: number;
  /** the repositories the node's combo offers; any other value is refused (ComfyUI refuses it too) */
  repos: readonly string[];
  /** where the node looks for (and snapshots) the repository, under the models root */
  folder(repo: string): string;
  /** the node's snapshot_download ignore_patterns (fnmatch on the path) */
  ignore?(repo: string): string[];
}

const FLORENCE2_REPOS = [
  "microsoft/Florence-2-base",
  "microsoft/Florence-2-base-ft",
  "microsoft/Florence-2-large",
  "microsoft/Florence-2-large-ft",
  "HuggingFaceM4/Florence-2-DocVQA",
  "thwri/CogFlorence-2.1-Large",
  "thwri/CogFlorence-2.2-Large",
  "gokaygokay/Florence-2-SD3-Captioner",
  "gokaygokay/Florence-2-Flux-Large",
  "MiaoshouAI/Florence-2-base-PromptGen-v1.5",
  "MiaoshouAI/Florence-2-large-PromptGen-v1.5",
  "MiaoshouAI/Florence-2-base-PromptGen-v2.0",
  "MiaoshouAI/Florence-2-large-PromptGen-v2.0",
];

/** Node class -> the repository it snapshots on first run (skipped when the folder exists). */
export const RUNTIME_DOWNLOADS: Record<string, RuntimeDownloadNode> = {
  // WanVideoWrapper fantasytalking/nodes.py: models/transformers/<owner>/<repo>
  DownloadAndLoadWav2VecModel: {
    input: "model",
    widgetIndex: 0,
    repos: ["facebook/wav2vec2-base-960h", "TencentGameMate/chinese-wav2vec2-base"],
    folder: (repo) => `transformers/${repo}`,
    ignore: (repo) => (repo === "facebook/wav2vec2-base-960h" ? ["*.bin", "*.h5"] : ["*.pt"]),
  },
  // kijai/ComfyUI-Florence2 nodes.py: models/LLM/<repo name without owner>
  DownloadAndLoadFlorence2Model: {
    input: "model",
    widgetIndex: 0,
    repos: FLORENCE2_REPOS,
    folder: (repo) => `LLM/${repo.slice(repo.indexOf("/") + 1)}`,
  },
};

/** A repository a workflow's node will snapshot: flow fetches its files ahead into `folder`. */
export interface RepoSnapshot {
  repo: string;
  folder: string;
  ignore: string[];
  optional: boolean;
  usedBy: { key: string; type: string; input?: string }[];
}

/** fnmatch as huggingface_hub applies ignore_patterns: `*` and `?` match any character, "/" included. */
export function fnmatch(pattern: string, path: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "s").test(path);
}

/** A listed file of a repository: its path, size, and the LFS sha256 when the file is in LFS. */
export interface ListedFile {
  path: string;
  size: number;
  sha256?: string;
}

/** The canonical download URL of a file on Hugging Face (what workflows and the lock write). */
export function hfModelUrl(repo: string, path: string, revision = "main"): string {
  const enc = (s: string) => s.split("/").map(encodeURIComponent).join("/");
  return `https://huggingface.co/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(path)}`;
}

export interface SnapshotFile {
  folder: string;
  name: string;
  url: string;
  size: number;
  sha256?: string;
}

/**
 * The files of a snapshot as model entries (folder: the snapshot's folder, name: the path in the
 * repository), ignore patterns applied. A listed path that could leave the folder is refused.
 */
export function snapshotFiles(snap: RepoSnapshot, files: readonly ListedFile[]): { files: SnapshotFile[]; refused: string[] } {
  const out: SnapshotFile[] = [];
  const refused: string[] = [];
  const folder = safeFolder(snap.folder);
  if (!folder.ok) return { files: [], refused: [`${snap.repo}: ${folder.reason}`] };
  for (const f of files) {
    if (snap.ignore.some((p) => fnmatch(p, f.path))) continue;
    const name = safeModelRelPath(f.path);
    if (!name.ok) {
      refused.push(`${snap.repo}: listed path ${JSON.stringify(f.path).slice(0, 200)} refused: ${name.reason}`);
      continue;
    }
    const sha = f.sha256 ? { sha256: f.sha256 } : {};
    out.push({ folder: folder.value, name: name.value, url: hfModelUrl(snap.repo, name.value), size: f.size, ...sha });
  }
  return { files: out, refused };
}

// ---------- a file name looked up in Hugging Face repositories ----------

/**
 * Where to look for a model file a workflow names without a URL: Comfy-Org's repackaged
 * repositories (the files ComfyUI's own templates use), then Kijai's WanVideo repository.
 * settings.modelRepos replaces it.
 */
export const DEFAULT_MODEL_REPOS: readonly string[] = [
  "Comfy-Org/Wan_2.1_ComfyUI_repackaged",
  "Comfy-Org/Wan_2.2_ComfyUI_Repackaged",
  "Comfy-Org/HunyuanVideo_repackaged",
  "Comfy-Org/Qwen-Image_ComfyUI",
  "Comfy-Org/Qwen-Image-Edit_ComfyUI",
  "Comfy-Org/flux1-dev",
  "Comfy-Org/flux1-schnell",
  "Comfy-Org/stable-diffusion-3.5-fp8",
  "Comfy-Org/HiDream-I1_ComfyUI",
  "Comfy-Org/Lumina_Image_2.0_Repackaged",
  "Comfy-Org/mochi_preview_repackaged",
  "Comfy-Org/ACE-Step_ComfyUI_repackaged",
  "Kijai/WanVideo_comfy",
];

export interface RepoListing {
  repo: string;
  files: readonly ListedFile[];
}

export interface NameMatch {
  repo: string;
  path: string;
  size: number;
  sha256?: string;
  url: string;
  /** a folder the path names (split_files/vae/x -> vae), for a model no loader gave one */
  folderFromPath?: string;
}

export type NameLookup = (
  | { found: true; match: NameMatch; /** several different files carry the name: which one was taken, and why */ note?: string }
  | { found: false }
) & {
  /** listed paths with the name that are not plain relative paths ("../x", "/abs/x"): never matched, said */
  refused?: string[];
};

const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** The folder names ComfyUI reads for a folder (diffusion_models: also unet): what a repository's path may call it. */
function folderAliases(folder: string): string[] {
  const first = folder.split("/")[0]!;
  const canon = canonicalFolder(first) ?? first;
  const paths = getOwn(MODEL_FOLDERS, canon)?.map((p) => p.replace(/^models\//, "")) ?? [];
  return [...new Set([first, canon, ...paths])];
}

/** The last directory of a path that is a known model folder, canonical. */
function knownFolderIn(path: string): string | undefined {
  const dirs = path.split("/").slice(0, -1).reverse();
  for (const d of dirs) {
    const c = canonicalFolder(d);
    if (c) return c;
  }
  return undefined;
}

/**
 * A file name in listed repositories, by base name. Several hits: the one whose path names the
 * model's folder, else the first in the repositories' order; a note says which when the hits
 * differ (the same sha256 in two repositories is one file, mirrored). Listed paths that are not
 * plain relative paths are never matched.
 */
export function matchModelName(name: string, folder: string | undefined, listings: readonly RepoListing[]): NameLookup {
  const want = baseName(name);
  const hits: NameMatch[] = [];
  const bad: string[] = [];
  for (const l of listings)
    for (const f of l.files) {
      if (baseName(f.path) !== want) continue;
      const safe = safeModelRelPath(f.path);
      if (!safe.ok) {
        bad.push(`${l.repo}: listed path ${JSON.stringify(f.path).slice(0, 200)} refused: ${safe.reason}`);
        continue;
      }
      const sha = f.sha256 ? { sha256: f.sha256 } : {};
      const inFolder = knownFolderIn(f.path);
      hits.push({
        repo: l.repo,
        path: f.path,
        size: f.size,
        ...sha,
        url: hfModelUrl(l.repo, f.path),
        ...(inFolder ? { folderFromPath: inFolder } : {}),
      });
    }
  const refused = bad.length ? { refused: bad } : {};
  if (!hits.length) return { found: false, ...refused };
  const aliases = folder ? folderAliases(folder) : [];
  const named = aliases.length
    ? hits.find((h) =>
        h.path
          .split("/")
          .slice(0, -1)
          .some((d) => aliases.includes(d)),
      )
    : undefined;
  const match = named ?? hits[0]!;
  const distinct = new Set(hits.map((h) => h.sha256 ?? `${h.repo}/${h.path}`));
  if (distinct.size < 2) return { found: true, match, ...refused };
  const where = hits.map((h) => `${h.repo}/${h.path}`).join(", ");
  const why = named ? `its path names the folder ${folder}` : "first in settings.modelRepos order";
  return {
    found: true,
    match,
    note: `${name}: ${hits.length} different files carry this name (${where}); took ${match.repo}/${match.path} (${why})`,
    ...refused,
  };
}
