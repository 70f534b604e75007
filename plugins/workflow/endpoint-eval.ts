// Load a comfyui-api workflow file the way comfyui-api loads it on a host, and run it (Runner), so its
// RequestSchema and generateWorkflow can be exercised before anything is deployed.
//
// comfyui-api transpiles a .ts workflow with `ts.transpileModule(source, { module: CommonJS })` and
// `eval`s the result inside its own dist/src/workflows/index.js: the Workflow is the value of the
// file's LAST statement (the `exports.default = ...` that `export default` becomes), and the file's
// `require` is that module's. Here `require` knows only what a workflow may use: `zod` (zod 3's
// API, as comfyui-api depends on zod 3: flow's zod 4 carries it as `zod/v3`), `../types` (types
// only, nothing at run time) and `../config`, a stand-in built from an object_info: the host's
// samplers, schedulers and model folders. Anything else is refused, naming the module.
//
// That `require` is no sandbox (the file still has `process`, `import()`, ...): only the generator's own
// files are evaluated in flow's process. Any other file is evaluated by ./endpoint-eval-child.ts in a
// child process with no environment and Node's permission model (see ./endpoint-proof.ts). This module
// runs on both sides, so it imports nothing but zod and the TypeScript loader: the child stays small.
import { isDeepStrictEqual } from "node:util";
import * as zod3 from "zod/v3";
import * as zod4 from "zod/v4";
import { lazyTs } from "../../lib/lazy-typescript.ts";

/** zod 3's API, as comfyui-api's `require("zod")` gives it. */
export const z3 = zod3.z;

export const MODELS_DIR = "/opt/ComfyUI/models";
/** A file every stand-in model folder holds besides the real ones, so a model parameter has a second valid value. */
export const ALT_MODEL_FILE = "flow-proof-alt.safetensors";
/** A value every media input accepts in comfyui-api (it downloads URLs before ComfyUI sees them). */
export const MEDIA_URL = "https://example.com/x.png";
const GENERATE_TIMEOUT_MS = 10_000;

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

/**
 * What the config stand-in is made of, as plain data (it crosses to the child process as JSON):
 * the sampler and scheduler lists, and each model folder's (and alias's) sorted files.
 */
export interface StandInListing {
  samplers: string[];
  schedulers: string[];
  folders: Record<string, string[]>;
}

/**
 * comfyui-api's config, as far as a workflow reads it: `samplers` / `schedulers` (zod enums of
 * ComfyUI's lists) and `models.<folder>` ({ dir, all, enum } of the files in models/<folder>).
 */
export function standInFromListing(l: StandInListing): ConfigStandIn {
  const models: Record<string, { dir: string; all: string[]; enum: unknown }> = Object.create(null);
  for (const [f, all] of Object.entries(l.folders))
    models[f] = { dir: `${MODELS_DIR}/${f}`, all: [...all], enum: z3.enum(all as [string]) };
  const config = {
    comfyDir: "/opt/ComfyUI",
    modelDir: MODELS_DIR,
    models,
    samplers: z3.enum(l.samplers as [string, ...string[]]),
    schedulers: z3.enum(l.schedulers as [string, ...string[]]),
    warmupCkpt: undefined,
  };
  const folderFiles = (f: string) => (Object.hasOwn(l.folders, f) ? [...l.folders[f]!] : []);
  return { config, samplers: l.samplers, schedulers: l.schedulers, folderFiles };
}

const CONFIG = new Set(["../config", "../config.js", "../config.ts"]);
const TYPES = new Set(["../types", "../types.js", "../types.ts"]);

function isWorkflow(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && "RequestSchema" in v && "generateWorkflow" in v;
}

/** The file as comfyui-api's transpile gives it (CommonJS), or its syntax errors. Runs nothing of the file. */
export function transpileWorkflow(rel: string, source: string): { js: string } | { problems: string[] } {
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
  return syntax.length ? { problems: syntax } : { js: out.outputText };
}

/** Load `source` as comfyui-api would; every failure is a problem, never a throw. */
export function loadWorkflow(rel: string, source: string, standIn: ConfigStandIn): LoadResult {
  const t = transpileWorkflow(rel, source);
  return "js" in t ? evalWorkflow(rel, t.js, standIn) : { problems: t.problems };
}

/** Run the transpiled file (this evaluates it: see the top of this file for where that may happen). */
export function evalWorkflow(rel: string, js: string, standIn: ConfigStandIn): LoadResult {
  const configModule = { __esModule: true, default: standIn.config };
  const require = (spec: string): unknown => {
    if (spec === "zod" || spec === "zod/v3") return zod3;
    if (spec === "zod/v4") return zod4;
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
    last = run(module, module.exports, require, `/comfyui-api/dist/src/workflows/${rel}`, "/comfyui-api/dist/src/workflows", js);
  } catch (e) {
    return { problems: [`load: ${rel} throws while loading: ${message(e)}`] };
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

// ---------- an LLM-written file, as the child process sees it ----------

/**
 * What the child process reports of an LLM-written file (./endpoint-eval-child.ts): what the file did,
 * not whether that is right. The judging is ./endpoint-proof.ts's, in flow's process.
 */
export interface LlmObservation {
  /** problems loading the file, as evalWorkflow names them */
  load: string[];
  /** absent when it did not load */
  run?: {
    /** RequestSchema has a zod object's shape */
    shape: boolean;
    /** required fields that accept none of the placeholders */
    unfilled: string[];
    /** why RequestSchema rejects the required fields filled with placeholders; absent when it accepts them */
    rejected?: string;
    /** generateWorkflow's prompt for that input (normalized), or why there is none */
    generated?: unknown;
    /** each field with a value, varied alone: the value tried (shown) and the prompt it gives; no `tried`: none accepted */
    fields: { key: string; tried?: string; changed?: unknown }[];
  };
}

// ---------- running the loaded file ----------

export type Node = { class_type: string; inputs: Record<string, unknown> };
export type Prompt = Record<string, Node>;

export class Runner {
  constructor(private wf: LoadedWorkflow) {}

  shape(): Record<string, unknown> | undefined {
    try {
      const s = (this.wf.RequestSchema as { shape?: unknown }).shape;
      return typeof s === "object" && s !== null ? (s as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }

  parse(v: Record<string, unknown>): { ok: true; data: unknown } | { ok: false; error: string } {
    try {
      const r = this.wf.RequestSchema.safeParse(v);
      if (r.success) return { ok: true, data: r.data };
      return { ok: false, error: issues(r.error?.issues ?? []) };
    } catch (e) {
      return { ok: false, error: `RequestSchema.parse throws: ${message(e)}` };
    }
  }

  /**
   * The first candidate the schema accepts for `key` and that parses to another value; undefined if
   * none. `values` is the parsed base input: every other field keeps its value (a random seed default
   * drawn again would change the seed too).
   */
  vary(values: unknown, key: string, current: unknown, tried: unknown[]): { value: unknown; data: unknown } | undefined {
    for (const c of tried) {
      const r = this.parse({ ...(values as Record<string, unknown>), [key]: c });
      if (r.ok && !isDeepStrictEqual((r.data as Record<string, unknown>)[key], current)) return { value: c, data: r.data };
    }
    return undefined;
  }

  /** generateWorkflow's prompt as comfyui-api sends it to ComfyUI (JSON), or a problem. */
  async generate(input: unknown): Promise<Prompt | string> {
    let out: unknown;
    let timer: NodeJS.Timeout | undefined;
    try {
      // a promise that never settles must not hang the proof (a loop that never returns is the child's time limit's)
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not return within ${GENERATE_TIMEOUT_MS / 1000} s`)), GENERATE_TIMEOUT_MS);
      });
      out = await Promise.race([Promise.resolve().then(() => this.wf.generateWorkflow(input)), late]);
    } catch (e) {
      return `generateWorkflow throws: ${message(e)}`;
    } finally {
      clearTimeout(timer);
    }
    const n = normalize(out);
    return typeof n === "string" ? `generateWorkflow's result is not a ComfyUI prompt: ${n}` : n;
  }
}

function issues(list: ZodIssueLike[]): string {
  const shown = list.slice(0, 5).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  return shown.join("; ") + (list.length > 5 ? `; and ${list.length - 5} more` : "");
}

/** A prompt as JSON carries it (undefined inputs dropped), `_meta` left out; or why it is not one. */
export function normalize(p: unknown): Prompt | string {
  let j: unknown;
  try {
    j = JSON.parse(JSON.stringify(p) ?? "null");
  } catch (e) {
    return `not JSON (${message(e)})`;
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) return `${show(j)} is not an object of nodes`;
  const out: Prompt = Object.create(null);
  for (const [id, n] of Object.entries(j)) {
    const node = n as Partial<Node> | null;
    if (typeof node !== "object" || node === null || typeof node.class_type !== "string") return `node ${id} has no class_type`;
    if (typeof node.inputs !== "object" || node.inputs === null || Array.isArray(node.inputs)) return `node ${id} has no inputs object`;
    out[id] = { class_type: node.class_type, inputs: node.inputs };
  }
  return out;
}

export function show(v: unknown): string {
  let s: string;
  try {
    s = v === undefined ? "undefined" : (JSON.stringify(v) ?? String(v));
  } catch {
    s = `(a ${typeof v})`; // a bigint, a cycle: a value from the file must not make the proof throw
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
