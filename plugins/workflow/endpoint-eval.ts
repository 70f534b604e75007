// Load a comfyui-api workflow file in this process the way comfyui-api loads it on a host, so its
// RequestSchema and generateWorkflow can be exercised before anything is deployed.
//
// comfyui-api transpiles a .ts workflow with `ts.transpileModule(source, { module: CommonJS })` and
// `eval`s the result inside its own dist/src/workflows/index.js: the Workflow is the value of the
// file's LAST statement (the `exports.default = ...` that `export default` becomes), and the file's
// `require` is that module's. Here `require` knows only what a workflow may use: `zod` (zod 3's
// API, as comfyui-api depends on zod 3: flow's zod 4 carries it as `zod/v3`), `../types` (types
// only, nothing at run time) and `../config`, a stand-in built from an object_info: the host's
// samplers, schedulers and model folders. Anything else is refused, naming the module, so an
// LLM-written file cannot reach the file system or the network from the proof.
import { createRequire } from "node:module";
import type { ApiPrompt } from "../../lib/comfy/workflow-read.ts";
import type { ObjectInfo } from "../../lib/comfy/data-schemas.ts";
import { lazyTs } from "../../lib/lazy-typescript.ts";
import { CUSTOM_LOADER_INPUTS, folderListingsFromObjectInfo, mergeLoaderInputs } from "../../lib/comfy/custom-loaders.ts";
import {
  CORE_LOADER_INPUTS,
  FOLDER_ALIASES,
  INPUT_NAME_FOLDERS,
  MODEL_FOLDERS,
  canonicalFolder,
  hasModelExtension,
} from "../../lib/comfy/model-folders.ts";
import { getOwn } from "../../lib/comfy/own-keys.ts";

const req = createRequire(import.meta.url);
/** zod 3's API, as comfyui-api's `require("zod")` gives it. */
export const z3 = (req("zod/v3") as typeof import("zod/v3")).z;

export const MODELS_DIR = "/opt/ComfyUI/models";
/** A file every stand-in model folder holds besides the real ones, so a model parameter has a second valid value. */
export const ALT_MODEL_FILE = "flow-proof-alt.safetensors";

/** What a loaded workflow exposes (comfyui-api's Workflow, loosely: the file is not trusted). */
export interface LoadedWorkflow {
  RequestSchema: { safeParse(v: unknown): { success: boolean; data?: unknown; error?: { issues: ZodIssueLike[] } }; shape?: unknown };
  generateWorkflow(input: unknown): unknown;
}
export interface ZodIssueLike {
  path: (string | number)[];
  message: string;
}

export interface LoadResult {
  workflow?: LoadedWorkflow;
  problems: string[];
}

export interface ConfigStandIn {
  config: Record<string, unknown>;
  samplers: string[];
  schedulers: string[];
  /** the stand-in's files of a folder (aliases resolved); empty for a folder it does not know */
  folderFiles(folder: string): string[];
}

/** The string options of a combo input spec (`[[...options], {...}]` or `["COMBO", { options }]`). */
export function comboOptions(spec: unknown): string[] | undefined {
  if (!Array.isArray(spec)) return undefined;
  const [type, opts] = spec as [unknown, unknown];
  const list = Array.isArray(type)
    ? type
    : type === "COMBO" && typeof opts === "object" && opts !== null && Array.isArray((opts as { options?: unknown }).options)
      ? (opts as { options: unknown[] }).options
      : undefined;
  return list && list.every((o) => typeof o === "string") ? (list as string[]) : undefined;
}

function ksamplerOptions(oi: ObjectInfo, input: string): string[] | undefined {
  const def = getOwn(oi, "KSampler");
  return comboOptions(getOwn(def?.input?.required, input) ?? getOwn(def?.input?.optional, input));
}

/** Model files the prompt names, by canonical folder: what the endpoint's defaults are. */
function promptModelFiles(prompt: ApiPrompt, extra: { folder: string; file: string }[]): Map<string, Set<string>> {
  const loaders = mergeLoaderInputs(CORE_LOADER_INPUTS, CUSTOM_LOADER_INPUTS);
  const out = new Map<string, Set<string>>();
  const add = (folder: string, file: unknown) => {
    if (typeof file !== "string" || !file) return;
    const f = canonicalFolder(folder) ?? folder;
    if (!out.has(f)) out.set(f, new Set());
    out.get(f)!.add(file);
  };
  for (const node of Object.values(prompt)) {
    const inputs = node?.inputs ?? {};
    const known = loaders.get(node?.class_type);
    for (const [name, value] of Object.entries(inputs)) {
      const l = known?.find((k) => k.input === name);
      if (l) add(l.folder, value);
      else if (typeof value === "string" && hasModelExtension(value) && getOwn(INPUT_NAME_FOLDERS, name))
        add(getOwn(INPUT_NAME_FOLDERS, name)!, value);
    }
  }
  for (const e of extra) add(e.folder, e.file);
  return out;
}

/**
 * comfyui-api's config, as far as a workflow reads it: `samplers` / `schedulers` (zod enums of
 * ComfyUI's lists, here the object_info's KSampler combos) and `models.<folder>` ({ dir, all, enum }
 * of the files in models/<folder>, here the object_info's listings plus the files the prompt names,
 * plus ALT_MODEL_FILE). Every known folder and alias is there, as on a host whose models folder
 * ComfyUI created; a folder nothing names holds only ALT_MODEL_FILE, so a default naming a file
 * the host lacks fails to parse here as it would there.
 */
export function configStandIn(oi: ObjectInfo, prompt: ApiPrompt, modelFiles: { folder: string; file: string }[] = []): ConfigStandIn {
  const named = promptModelFiles(prompt, modelFiles);
  const listed = folderListingsFromObjectInfo(oi);
  // without a KSampler definition the prompt's own choices are all that is known to be valid
  const fromPrompt = (input: string) =>
    [...new Set(Object.values(prompt).map((n) => n?.inputs?.[input]))].filter((v): v is string => typeof v === "string");
  const samplers = ksamplerOptions(oi, "sampler_name") ?? fromPrompt("sampler_name");
  const schedulers = ksamplerOptions(oi, "scheduler") ?? fromPrompt("scheduler");
  const folders = new Set([...Object.keys(MODEL_FOLDERS), ...Object.keys(FOLDER_ALIASES), ...named.keys(), ...Object.keys(listed)]);
  const files = (folder: string): string[] => {
    const canon = canonicalFolder(folder) ?? folder;
    // comfyui-api sorts the folder's listing
    return [...new Set([...(getOwn(listed, canon) ?? []), ...(named.get(canon) ?? []), ALT_MODEL_FILE])].sort();
  };
  const models: Record<string, { dir: string; all: string[]; enum: unknown }> = Object.create(null);
  for (const f of folders) {
    const all = files(f);
    models[f] = { dir: `${MODELS_DIR}/${f}`, all, enum: z3.enum(all as [string, ...string[]]) };
  }
  const config = {
    comfyDir: "/opt/ComfyUI",
    modelDir: MODELS_DIR,
    models,
    samplers: z3.enum(samplers as [string, ...string[]]),
    schedulers: z3.enum(schedulers as [string, ...string[]]),
    warmupCkpt: undefined,
  };
  return { config, samplers, schedulers, folderFiles: (f) => (Object.hasOwn(models, f) ? files(f) : []) };
}

const CONFIG = new Set(["../config", "../config.js", "../config.ts"]);
const TYPES = new Set(["../types", "../types.js", "../types.ts"]);

function isWorkflow(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && "RequestSchema" in v && "generateWorkflow" in v;
}

/** Load `source` as comfyui-api would; every failure is a problem, never a throw. */
export function loadWorkflow(rel: string, source: string, standIn: ConfigStandIn): LoadResult {
  const out = lazyTs.transpileModule(source, {
    compilerOptions: { module: lazyTs.ModuleKind.CommonJS },
    fileName: rel,
    reportDiagnostics: true,
  });
  const syntax = (out.diagnostics ?? []).map((d) => {
    const pos = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    const at = pos ? `:${pos.line + 1}:${pos.character + 1}` : "";
    return `syntax: ${rel}${at}: ${lazyTs.flattenDiagnosticMessageText(d.messageText, "\n")}`;
  });
  if (syntax.length) return { problems: syntax };

  const configModule = { __esModule: true, default: standIn.config };
  const require = (spec: string): unknown => {
    if (spec === "zod" || spec === "zod/v3") return req("zod/v3");
    if (spec === "zod/v4") return req("zod/v4");
    if (TYPES.has(spec)) return {};
    if (CONFIG.has(spec)) return configModule;
    throw new Error(`cannot require '${spec}': a workflow is proven with only zod, ../types and ../config`);
  };
  const module = { exports: {} as Record<string, unknown> };
  let last: unknown;
  try {
    // a direct eval inside the function: the file sees module/exports/require, and the value is its last statement's, as on the host
    const run = new Function("module", "exports", "require", "__filename", "__dirname", "return eval(arguments[5]);") as (
      ...a: unknown[]
    ) => unknown;
    last = run(
      module,
      module.exports,
      require,
      `/comfyui-api/dist/src/workflows/${rel}`,
      "/comfyui-api/dist/src/workflows",
      out.outputText,
    );
  } catch (e) {
    return { problems: [`load: ${rel} throws while loading: ${e instanceof Error ? e.message : String(e)}`] };
  }
  const problems: string[] = [];
  let wf: unknown = last;
  if (!isWorkflow(last)) {
    const def = module.exports.default;
    problems.push(
      isWorkflow(def)
        ? "load: comfyui-api would skip the file: it takes the value of the file's last statement, " +
            "which must be the `export default` of the Workflow"
        : "load: comfyui-api would skip the file: it does not `export default` a Workflow ({ RequestSchema, generateWorkflow })",
    );
    wf = def;
  }
  if (!isWorkflow(wf)) return { problems };
  const schema = wf.RequestSchema as { safeParse?: unknown } | undefined;
  const usable = typeof schema?.safeParse === "function" && typeof wf.generateWorkflow === "function";
  if (typeof schema?.safeParse !== "function") problems.push("load: RequestSchema is not a zod schema");
  if (typeof wf.generateWorkflow !== "function") problems.push("load: generateWorkflow is not a function");
  return usable ? { workflow: wf as unknown as LoadedWorkflow, problems } : { problems };
}
