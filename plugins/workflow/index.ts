// Plugin "workflow": what a workflow needs (packs, models), UI -> API conversion, and the lock file.
// deps and lock are local: they read files in the project and reference data from the cache.
// object-info and convert run on the selected host, whose ComfyUI answers /object_info on its own
// loopback (`flow run workflow:convert --file ui.json --host gpu1`); convert with a saved
// `--object-info FILE` asks no host and runs on this machine.
// generate turns templates into comfyui-api endpoints in workflows/, each proven before it is written.
// Only names and option schemas live here; each body loads when its task runs.
import { hfTokenPreflight } from "../shared/hf.ts";
import { z } from "zod";
import { definePlugin, defineTask, TaskError, type TaskDef } from "../../lib/index.ts";
import type { ParamOverrides } from "../../lib/comfy/endpoint-gen.ts";
import type { SourceSettings } from "../comfyui-api/api-source.ts";

export const LOCK_FILE = "flow.lock.json";
/** workflow:generate --llm's secret */
export const OPENROUTER_KEY = "OPENROUTER_API_KEY";

const objectInfoOption = z.string().optional().describe("a saved /object_info JSON: refreshes the core node list");
const comfyUrl = z.url().default("http://127.0.0.1:8188").describe("ComfyUI's address as seen on the host");

const objectInfoOptions = z.object({
  comfyUrl,
  output: z.string().optional().meta({ alias: "o" }).describe("save it to this local file"),
});
export type ObjectInfoOptions = z.infer<typeof objectInfoOptions>;

export const objectInfoTask = defineTask({
  name: "workflow:object-info",
  description: "Fetch ComfyUI's /object_info on a host (node definitions, for convert and deps)",
  lock: false,
  options: objectInfoOptions,
  run: async (ctx, o) => (await import("./object-info.ts")).runObjectInfo(ctx, o),
});

const depsOptions = z.object({
  file: z.array(z.string()).optional().describe("workflow files (JSON or PNG); default: workflow_templates/"),
  objectInfo: objectInfoOption,
  offline: z.boolean().default(false).describe("use cached reference data only"),
});
export type DepsOptions = z.infer<typeof depsOptions>;

/** workflow:deps; the plugin's workflowsDir says where the endpoints it warns about (stale templates) are. */
const depsTaskFor = (plugin: WorkflowPluginOptions) =>
  defineTask({
    name: "workflow:deps",
    description: "Node packs and models each workflow needs (default: every file in workflow_templates/)",
    scope: "local",
    lock: false,
    options: depsOptions,
    run: async (ctx, o) => (await import("./deps.ts")).runDeps(ctx, o, plugin.workflowsDir),
  });
export const depsTask = depsTaskFor({});

const convertOptions = z.object({
  file: z.string().describe("UI-format workflow (JSON or PNG)"),
  objectInfo: z.string().optional().describe("saved /object_info JSON (else the host's ComfyUI is asked)"),
  comfyUrl,
  output: z.string().optional().meta({ alias: "o" }).describe("API JSON to write (default: <file>.api.json beside it)"),
  strict: z.boolean().default(false).describe("fail (exit 1, nothing written) when the conversion had to guess anything"),
});
export type ConvertOptions = z.infer<typeof convertOptions>;

export const convertTask = defineTask({
  name: "workflow:convert",
  description: "Convert a UI-format workflow to API format with the host's /object_info (or a saved one, no host)",
  lock: false,
  scope: (o: { objectInfo?: string }) => (o.objectInfo ? "local" : "host"),
  options: convertOptions,
  run: async (ctx, o) => (await import("./convert.ts")).runConvert(ctx, o),
});

const lockOptions = z.object({
  check: z.boolean().default(false).describe(`fail when a workflow changed since ${LOCK_FILE} was written`),
  objectInfo: objectInfoOption,
  offline: z.boolean().default(false).describe("cached reference data only; pin only what workflows carry"),
});
export type LockOptions = z.infer<typeof lockOptions>;

export const lockTask = defineTask({
  name: "workflow:lock",
  description: `Pin every workflow's packs (commit or registry version) and models (url, size, sha256) in ${LOCK_FILE}`,
  scope: "local",
  lock: false,
  optionalSecrets: ["GITHUB_TOKEN", "HF_TOKEN"],
  options: lockOptions,
  preflight: (pf) => hfTokenPreflight(pf),
  run: async (ctx, o) => (await import("./lock.ts")).runLock(ctx, o),
});

/** The flowfile's `workflow({...})`: every key optional, so `workflow()` stays what it was. */
export interface WorkflowPluginOptions {
  /** where endpoints are generated and looked for (default "workflows"; comfyuiApi's workflowsDir, if you moved it) */
  workflowsDir?: string;
  /**
   * saved /object_info files (relative to the project; several are merged, a later one wins a class)
   * that workflow:generate converts and proves with, so it needs no host: e.g. one saved with
   * `flow run workflow:object-info --host gpu1 -o object_info.json` and committed
   */
  objectInfo?: string | string[];
  /**
   * where comfyui-api's types.ts / config.ts (and its LLM prompt) come from for the proof: give it the
   * same `source` as comfyuiApi({ source }). Env FLOW_COMFYUI_API_SRC / FLOW_COMFYUI_API_URL win.
   */
  source?: SourceSettings;
  /** the comfyui-api version whose sources are fetched (default: comfyui-api plugin's DEFAULT_API_VERSION) */
  apiVersion?: string;
  /** per template (its project-relative path): parameters renamed, hidden or added; over what an endpoint's header recorded */
  generate?: Record<string, ParamOverrides>;
  /** --llm's model when --model is not given (default DEFAULT_LLM_MODEL) */
  llm?: { model?: string };
}

const generateOptions = z.object({
  file: z.array(z.string()).optional().describe("templates (JSON or PNG, UI or API format); default: every file in workflow_templates/"),
  output: z
    .string()
    .optional()
    .meta({ alias: "o" })
    .describe("the endpoint to write (one --file only; default: the endpoint generated from it before, else workflows/<name>.ts)"),
  objectInfo: z
    .array(z.string())
    .optional()
    .describe("saved /object_info JSON, repeatable (merged); default: workflow({ objectInfo }), else the host's (--host)"),
  comfyUrl,
  params: z
    .string()
    .optional()
    .describe("JSON file { rename, hide, add } shaping the parameters; recorded in the endpoint, kept on regeneration"),
  check: z.boolean().default(false).describe("write nothing: every generated endpoint must be up to date and proven (exit 1 otherwise)"),
  strict: z.boolean().default(false).describe("with --check: a template without an endpoint fails too"),
  llm: z.boolean().default(false).describe(`ask an LLM through OpenRouter (${OPENROUTER_KEY}); kept only when it passes the proof`),
  model: z
    .string()
    .optional()
    .describe("with --llm: the OpenRouter model (default: workflow({ llm: { model } }), else anthropic/claude-sonnet-4)"),
  offline: z.boolean().default(false).describe("use the cached copy of comfyui-api's sources only"),
});
export type GenerateOptions = z.infer<typeof generateOptions>;

export function generateTask(plugin: WorkflowPluginOptions = {}): TaskDef<typeof generateOptions> {
  return defineTask({
    name: "workflow:generate",
    description: "Typed comfyui-api endpoints (workflows/) from templates, each proven before it is written; --check for CI",
    lock: false,
    // a saved object_info (flag or flowfile) asks no host; otherwise the selected host's ComfyUI gives it
    scope: (o) => (o.objectInfo?.length || plugin.objectInfo?.length ? "local" : "host"),
    positionals: ["file"],
    optionalSecrets: [OPENROUTER_KEY],
    options: generateOptions,
    preflight: async (pf, o) => {
      if (o.llm && o.check) throw new TaskError("workflow:generate: --check proves what is there; it takes no --llm");
      if (o.model && !o.llm) throw new TaskError("workflow:generate: --model is the --llm model; add --llm");
      if (o.output && (o.file?.length ?? 0) !== 1) throw new TaskError("workflow:generate: -o/--output needs exactly one --file");
      if (o.check && (o.output || o.params)) throw new TaskError("workflow:generate: --check writes nothing; it takes no -o or --params");
      if (o.llm && !pf.secrets[OPENROUTER_KEY])
        throw new TaskError(`workflow:generate --llm needs ${OPENROUTER_KEY} (in the environment or .env)`);
    },
    run: async (ctx, o) => (await import("./generate.ts")).runGenerate(ctx, o, plugin),
  });
}

export const workflow = (options: WorkflowPluginOptions = {}) =>
  definePlugin({
    name: "workflow",
    description: "what workflows need (node packs, models), UI -> API conversion, endpoints from templates, flow.lock.json",
    tasks: [depsTaskFor(options), convertTask, lockTask, objectInfoTask, generateTask(options)],
  });
