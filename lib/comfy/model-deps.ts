// Which model files a workflow needs, into which folder, from where.
// Sources, merged per (folder, file): properties.models on any node (subgraphs included),
// loader widget values (UI) or inputs (API) of known loaders (core, popular packs' in
// custom-loaders.ts, and any the caller read off a host), any other string value with a model
// extension. Folder precedence: the user's `models` map, then the loader facts. URL precedence: the
// workflow's own, then the user's `models` map, then ComfyUI-Manager's model-list.json. Models used
// only by muted/bypassed nodes are optional. Nodes that snapshot a repository at run time are
// returned apart (snapshots): listing the repository is I/O, left to the caller.
// Class, input and file names come from the file: every table is read for own keys only.
import { isHfUrl, parseHfUrl } from "./hf-url.ts";
import type { ModelList } from "./data-schemas.ts";
import { CUSTOM_LOADER_INPUTS, RUNTIME_DOWNLOADS, mergeLoaderInputs, type RepoSnapshot } from "./custom-loaders.ts";
import {
  CORE_LOADER_INPUTS,
  INPUT_NAME_FOLDERS,
  MODEL_LIST_DEFAULT_FOLDERS,
  canonicalFolder,
  hasModelExtension,
  type LoaderInput,
} from "./model-folders.ts";
import { getOwn } from "./own-keys.ts";
import { safeFolder, safeModelRelPath, safeUrl } from "./safe-names.ts";
import type { FlatNode, Workflow } from "./workflow-read.ts";

export interface HfSource {
  kind: "huggingface";
  repo: string;
  revision: string;
  path: string;
}
export interface CivitaiSource {
  kind: "civitai";
  modelVersionId?: string;
  modelId?: string;
}
export type ParsedSource = HfSource | CivitaiSource | { kind: "url" };

/** lock: flow.lock.json; repo-lookup: found by name in settings.modelRepos; repo-snapshot: a file of a repository a node snapshots */
export type UrlOrigin = "workflow" | "user-map" | "model-list" | "lock" | "repo-lookup" | "repo-snapshot";

export interface ModelDep {
  name: string;
  /** Canonical folder (aliases resolved); undefined when no loader or data says which. */
  folder?: string;
  url?: string;
  urlFrom?: UrlOrigin;
  source?: ParsedSource;
  hash?: { type: string; value: string };
  /** Size in bytes when a data source says (model-list gives "4.71MB" style sizes). */
  sizeHint?: string;
  optional: boolean;
  /** Node keys and types that use the model. */
  usedBy: { key: string; type: string; input?: string }[];
  /** How it was found. */
  found: ("properties.models" | "loader-widget" | "api-input" | "extension" | "runtime-download")[];
}

export interface RefusedName {
  node: string;
  value: string;
  reason: string;
}

export interface ModelDepsResult {
  models: ModelDep[];
  refused: RefusedName[];
  /** repositories nodes download at run time (one entry per repository and folder) */
  snapshots: RepoSnapshot[];
}

/** The folder the flowfile sets for a file (settings' models map, { folder } entries: by name, then base name). */
export function userModelFolder(folders: Readonly<Record<string, string>> | undefined, name: string): string | undefined {
  return getOwn(folders, name) ?? getOwn(folders, baseName(name));
}

export interface ModelDepsOptions {
  modelList?: ModelList;
  /** The user's flowfile map: file name -> URL (or "folder/file" -> URL). */
  userModels?: Record<string, string>;
  /** The flowfile's folders: file name -> folder, over every loader's (FlowConfig.modelFolders). */
  userFolders?: Record<string, string>;
  /** Extra loader facts (e.g. inferred from a host's /object_info), merged input by input over the core and pack tables. */
  loaderInputs?: Record<string, LoaderInput[]>;
}

/** Parse a Hugging Face or CivitAI URL into repo / revision / path or model-version id. */
export function parseModelUrl(url: string): ParsedSource {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { kind: "url" };
  }
  const host = u.hostname.toLowerCase();
  // one strict reading of Hugging Face URLs (hf-url.ts): a malformed one is a plain URL here, refused where it is fetched
  if (isHfUrl(url)) {
    const hf = parseHfUrl(url);
    return hf.ok ? { kind: "huggingface", ...hf.value } : { kind: "url" };
  }
  if (host === "civitai.com" || host.endsWith(".civitai.com")) {
    const dl = /\/api\/download\/models\/(\d+)/.exec(u.pathname);
    if (dl) return { kind: "civitai", modelVersionId: dl[1] };
    const mv = u.searchParams.get("modelVersionId");
    const mid = /\/models\/(\d+)/.exec(u.pathname)?.[1];
    if (mv && /^\d+$/.test(mv)) return { kind: "civitai", modelVersionId: mv, ...(mid ? { modelId: mid } : {}) };
    if (mid) return { kind: "civitai", modelId: mid };
  }
  return { kind: "url" };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Index model-list.json by file name (folder resolved from save_path / type). */
export function indexModelList(ml?: ModelList): Map<string, { url: string; folder?: string; size?: string }[]> {
  const m = new Map<string, { url: string; folder?: string; size?: string }[]>();
  for (const e of ml?.models ?? []) {
    const folder =
      e.save_path === "default" ? getOwn(MODEL_LIST_DEFAULT_FOLDERS, e.type.toLowerCase()) : (canonicalFolder(e.save_path) ?? e.save_path);
    const a = m.get(e.filename) ?? [];
    a.push({ url: e.url, folder, size: e.size });
    m.set(e.filename, a);
  }
  return m;
}

const baseName = (p: string) => p.split("/").pop() ?? p;

/** Extract the model dependencies of a workflow. */
export function modelDeps(wf: Workflow, opts: ModelDepsOptions = {}): ModelDepsResult {
  // A Map: a node typed "constructor" must find nothing here, not Object's constructor ("known is not iterable").
  const loaders = mergeLoaderInputs(CORE_LOADER_INPUTS, CUSTOM_LOADER_INPUTS, opts.loaderInputs);
  const snapshots = new Map<string, RepoSnapshot>();
  const listIdx = indexModelList(opts.modelList);
  const refused: RefusedName[] = [];
  const byKey = new Map<string, ModelDep>();
  // Indexes that keep a 50,000-node workflow linear: entries by file name (in byKey's order), and
  // the (node, input) pairs already in each entry's usedBy.
  const byName = new Map<string, ModelDep[]>();
  const uses = new Map<ModelDep, Set<string>>();
  const rekeyed = (dep: ModelDep) => {
    const list = byName.get(dep.name)!;
    list.splice(list.indexOf(dep), 1);
    list.push(dep);
  };
  // Same file seen without a folder and with one: keep one entry, the one with the folder.
  const keyOf = (folder: string | undefined, name: string) => `${folder ?? "?"}\u0000${name}`;

  const add = (
    node: FlatNode,
    rawName: unknown,
    folderIn: string | undefined,
    found: ModelDep["found"][number],
    extra: { url?: string; hash?: ModelDep["hash"]; input?: string } = {},
  ) => {
    const nameR = safeModelRelPath(rawName);
    if (!nameR.ok) {
      refused.push({ node: node.key, value: String(rawName).slice(0, 200), reason: `model name: ${nameR.reason}` });
      return;
    }
    let folder: string | undefined;
    // the user's word on where a file goes beats every table and inference
    folderIn = userModelFolder(opts.userFolders, nameR.value) ?? folderIn;
    if (folderIn !== undefined) {
      const fr = safeFolder(folderIn);
      if (!fr.ok) {
        refused.push({ node: node.key, value: String(folderIn).slice(0, 200), reason: fr.reason });
        return;
      }
      folder = canonicalFolder(fr.value) ? fr.value.replace(/^[^/]+/, (f) => canonicalFolder(f) ?? f) : fr.value;
    }
    let url: string | undefined;
    if (extra.url !== undefined && extra.url !== "") {
      const ur = safeUrl(extra.url);
      if (ur.ok) url = ur.value;
      else refused.push({ node: node.key, value: String(extra.url).slice(0, 200), reason: `url: ${ur.reason}` });
    }
    const name = nameR.value;
    const optional = node.effectiveMode !== "active";
    // Merge with an existing entry for the same file: a folder-less sighting joins a foldered one.
    let dep = byKey.get(keyOf(folder, name));
    if (!dep && folder === undefined) dep = byName.get(name)?.[0];
    if (!dep && folder !== undefined) {
      const loose = byKey.get(keyOf(undefined, name));
      if (loose) {
        byKey.delete(keyOf(undefined, name));
        loose.folder = folder;
        byKey.set(keyOf(folder, name), loose);
        rekeyed(loose);
        dep = loose;
      }
    }
    if (!dep) {
      dep = { name, folder, optional, usedBy: [], found: [] };
      byKey.set(keyOf(folder, name), dep);
      byName.set(name, [...(byName.get(name) ?? []), dep]);
      uses.set(dep, new Set());
    }
    dep.optional &&= optional;
    const use = `${node.key}\u0000${extra.input ?? ""}`;
    if (!uses.get(dep)!.has(use)) {
      uses.get(dep)!.add(use);
      dep.usedBy.push({ key: node.key, type: node.type, ...(extra.input ? { input: extra.input } : {}) });
    }
    if (!dep.found.includes(found)) dep.found.push(found);
    if (url && !dep.url) {
      dep.url = url;
      dep.urlFrom = "workflow";
    }
    if (extra.hash && !dep.hash) dep.hash = extra.hash;
  };

  for (const node of wf.nodes) {
    // 1. properties.models: name, url, directory (+ hash, hash_type).
    const pm = node.properties.models;
    if (Array.isArray(pm)) {
      for (const m of pm) {
        if (!isObj(m)) continue;
        const hash =
          typeof m.hash === "string" ? { type: typeof m.hash_type === "string" ? m.hash_type : "sha256", value: m.hash } : undefined;
        add(node, m.name, typeof m.directory === "string" ? m.directory : undefined, "properties.models", {
          url: typeof m.url === "string" ? m.url : undefined,
          hash,
        });
      }
    }
    // a node that snapshots a Hugging Face repository on first run: the repository, fetched ahead by the caller
    const rt = getOwn(RUNTIME_DOWNLOADS, node.type);
    if (rt) {
      const v = node.apiInputs
        ? getOwn(node.apiInputs, rt.input)
        : Array.isArray(node.widgets)
          ? node.widgets[rt.widgetIndex]
          : isObj(node.widgets)
            ? getOwn(node.widgets, rt.input)
            : undefined;
      if (typeof v === "string" && rt.repos.includes(v)) {
        const folder = rt.folder(v);
        const key = `${v}\u0000${folder}`;
        const snap = snapshots.get(key) ?? { repo: v, folder, ignore: rt.ignore?.(v) ?? [], optional: true, usedBy: [] };
        snap.optional &&= node.effectiveMode !== "active";
        snap.usedBy.push({ key: node.key, type: node.type, input: rt.input });
        snapshots.set(key, snap);
      } else if (v !== undefined && !(node.apiInputs && Array.isArray(v))) {
        // a linked API input is an array: nothing to say; anything else is not one of the node's repositories
        const why = `${node.type}.${rt.input}: not one of the repositories the node offers (${rt.repos.join(", ")})`;
        refused.push({ node: node.key, value: String(v).slice(0, 200), reason: why });
      }
      continue;
    }
    const known = loaders.get(node.type);
    // 2. known loaders: widget index (UI) or input name (API).
    if (known) {
      for (const l of known) {
        const v = node.apiInputs
          ? getOwn(node.apiInputs, l.input)
          : Array.isArray(node.widgets)
            ? node.widgets[l.widgetIndex]
            : isObj(node.widgets)
              ? getOwn(node.widgets, l.input)
              : undefined;
        // "none": the loaders' own "load nothing" choice (WanVideoLoraSelectMulti's lora_i), never a file
        if (typeof v === "string" && v !== "" && !/^none$/i.test(v))
          add(node, v, l.folder, node.apiInputs ? "api-input" : "loader-widget", { input: l.input });
      }
      // core loaders are known whole; a custom loader's other inputs may still name files (below)
      if (Object.hasOwn(CORE_LOADER_INPUTS, node.type)) continue;
    }
    const read = known ? new Set<string | number>(known.flatMap((l) => [l.input, l.widgetIndex])) : undefined;
    // 3. any other string value that names a model file (custom loaders); folder from the input name.
    const entries: [string | undefined, unknown][] = node.apiInputs
      ? Object.entries(node.apiInputs)
      : Array.isArray(node.widgets)
        ? node.widgets.map((v) => [undefined, v] as [undefined, unknown])
        : isObj(node.widgets)
          ? Object.entries(node.widgets)
          : [];
    for (const [i, [input, v]] of entries.entries()) {
      if (read?.has(input ?? i)) continue;
      if (typeof v !== "string" || !hasModelExtension(v) || v.length > 300 || /\s{2,}|\n/.test(v)) continue;
      add(node, v, input ? getOwn(INPUT_NAME_FOLDERS, input) : undefined, "extension", input ? { input } : {});
    }
  }

  // Sources the workflow did not give: the user's map, then model-list.json.
  for (const dep of byKey.values()) {
    if (!dep.url) {
      const um = opts.userModels;
      const user = getOwn(um, `${dep.folder}/${dep.name}`) ?? getOwn(um, dep.name) ?? getOwn(um, baseName(dep.name));
      if (user) {
        const ur = safeUrl(user);
        if (ur.ok) {
          dep.url = ur.value;
          dep.urlFrom = "user-map";
        } else refused.push({ node: "flowfile models", value: user.slice(0, 200), reason: `url: ${ur.reason}` });
      }
    }
    const listed = listIdx.get(baseName(dep.name));
    if (listed?.length) {
      const hit = listed.find((l) => !dep.folder || (l.folder ?? "").split("/")[0] === dep.folder.split("/")[0]) ?? listed[0];
      if (!dep.url) {
        const ur = safeUrl(hit.url);
        if (ur.ok) {
          dep.url = ur.value;
          dep.urlFrom = "model-list";
        }
      }
      if (!dep.folder && hit.folder) {
        const fr = safeFolder(hit.folder);
        if (fr.ok) dep.folder = fr.value;
      }
      if (hit.size) dep.sizeHint = hit.size;
    }
    if (dep.url) dep.source = parseModelUrl(dep.url);
  }
  const models = [...byKey.values()].sort((a, b) => (a.folder ?? "~").localeCompare(b.folder ?? "~") || a.name.localeCompare(b.name));
  return { models, refused, snapshots: [...snapshots.values()] };
}

/** The hint `workflow:deps` prints for a model without a known source. */
export function missingSourceHint(dep: ModelDep): string {
  const url = "https://huggingface.co/<owner>/<repo>/resolve/main/<path>";
  // without a folder the entry must say where the file goes too
  const entry = dep.folder ? JSON.stringify(url) : `{ url: ${JSON.stringify(url)}, folder: "<models folder>" }`;
  return (
    `no source known for ${dep.folder ?? "?"}/${dep.name}: add it to the flowfile, e.g. ` +
    `defineFlow({ models: { ${JSON.stringify(dep.name)}: ${entry} } })`
  );
}
