// Plugin "workflow": what a workflow needs (packs, models), UI -> API conversion, and the lock file.
// deps and lock are local: they read files in the project and reference data from the cache.
// object-info and convert run on the selected host, whose ComfyUI answers /object_info on its own
// loopback (`flow run workflow:convert --file ui.json --host gpu1`); convert with a saved
// `--object-info FILE` asks no host and runs on this machine.
// Only names and option schemas live here; each body loads when its task runs.
import { hfTokenPreflight } from "../shared/hf.ts";
import { z } from "zod";
import { definePlugin, defineTask } from "../../lib/index.ts";

export const LOCK_FILE = "flow.lock.json";

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

export const depsTask = defineTask({
  name: "workflow:deps",
  description: "Node packs and models each workflow needs (default: every file in workflow_templates/)",
  scope: "local",
  lock: false,
  options: depsOptions,
  run: async (ctx, o) => (await import("./deps.ts")).runDeps(ctx, o),
});

const convertOptions = z.object({
  file: z.string().describe("UI-format workflow (JSON or PNG)"),
  objectInfo: z.string().optional().describe("saved /object_info JSON (else the host's ComfyUI is asked)"),
  comfyUrl,
  output: z.string().optional().meta({ alias: "o" }).describe("API JSON to write (default: <file>.api.json beside it)"),
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

export const workflow = () =>
  definePlugin({
    name: "workflow",
    description: "what workflows need (node packs, models), UI -> API conversion, flow.lock.json",
    tasks: [depsTask, convertTask, lockTask, objectInfoTask],
  });
