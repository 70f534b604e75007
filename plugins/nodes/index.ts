// Plugin "nodes": the custom-node packs every workflow needs, on every host, at the same commits.
//   nodes:install [PACK...] [--workflow FILE]   what the workflows need as flow.lock.json pins it, or the packs named
//   nodes:list                                  every pack on the host: source, commit, dirty, disabled, classes loaded
//   nodes:update [PACK...]                      to the newest commit / registry version; flow.lock.json follows
//   nodes:remove PACK                           after a snapshot; restart; verify
// What to install is decided once on this machine (preflight), before any host is touched: a
// hostile pack name or URL is refused there. Only names and schemas live here; bodies load when run.
import { z } from "zod";
import { definePlugin, defineTask, type PreflightContext } from "../../lib/index.ts";
import type { WantedPack } from "./wanted.ts";

export interface NodesOptions {
  /**
   * pack -> spec, winning over the workflows and flow.lock.json: "https://github.com/o/r@<commit>"
   * or "<registry id>@<version>". The key names the pack as workflows do (registry id or folder).
   */
  pins?: Record<string, string>;
  /** index for packs' requirements (default pip's, PyPI); plain http only for a host in settings.allowHosts */
  pipIndexUrl?: string;
  /** its Python (default python3) */
  python?: string;
}

const dataRoot = z.string().optional().describe("data root on the host (default: the host's or its provider's)");

const installOptions = z.object({
  packs: z.array(z.string()).optional().describe("packs: https URL[@commit], registry id[@version], or a name"),
  workflow: z.array(z.string()).optional().describe("workflow files whose packs to install (default: workflow_templates/)"),
  force: z.boolean().default(false).describe("replace packs with local changes (a patch is kept) or from another source"),
  restart: z.boolean().default(true).describe("restart ComfyUI once at the end when anything changed"),
  verify: z.boolean().default(true).describe("then check /object_info has every class the packs must bring"),
  unlocked: z
    .enum(["fail", "skip"])
    .default("fail")
    .describe(`a workflow flow.lock.json does not pin (or pins an older version of): fail, or skip its packs with a warning`),
  dataRoot,
});
export type InstallOptions = z.infer<typeof installOptions>;

const updateOptions = z.object({
  packs: z.array(z.string()).optional().describe("packs to update (default: every pack the workflows use)"),
  force: z.boolean().default(false).describe("also replace packs with local changes (a patch is kept)"),
  dataRoot,
});
export type UpdateOptions = z.infer<typeof updateOptions>;

const removeOptions = z.object({
  pack: z.string().describe("the pack's folder name under custom_nodes"),
  force: z.boolean().default(false).describe("remove it although workflows use it"),
  dataRoot,
});
export type RemoveOptions = z.infer<typeof removeOptions>;

const listOptions = z.object({ dataRoot });

/** Preflight -> run: what the whole run installs, decided once. Keyed by the options object both receive. */
export const decided = new WeakMap<object, WantedPack[]>();

export function nodes(o: NodesOptions = {}) {
  const install = defineTask({
    name: "nodes:install",
    description: "Install the node packs the workflows need (as flow.lock.json pins them) or the packs named; restart once; verify",
    options: installOptions,
    positionals: ["packs"],
    optionalSecrets: ["GITHUB_TOKEN"],
    preflight: async (pf: PreflightContext, opts) => void decided.set(opts, await (await import("./run.ts")).decideInstall(pf, o, opts)),
    run: async (ctx, opts) => (await import("./run.ts")).runInstall(ctx, o, opts),
  });
  const list = defineTask({
    name: "nodes:list",
    description: "Every pack under custom_nodes: source, commit or version, dirty, disabled, classes ComfyUI loaded, import failures",
    lock: false,
    options: listOptions,
    run: async (ctx, opts) => (await import("./list.ts")).runList(ctx, o, opts),
  });
  const update = defineTask({
    name: "nodes:update",
    description: "Move packs to their newest commit or registry version, record it in flow.lock.json; restart once; verify",
    options: updateOptions,
    positionals: ["packs"],
    optionalSecrets: ["GITHUB_TOKEN"],
    preflight: async (pf: PreflightContext, opts) => void decided.set(opts, await (await import("./run.ts")).decideUpdate(pf, o, opts)),
    run: async (ctx, opts) => (await import("./run.ts")).runUpdate(ctx, o, opts),
  });
  const remove = defineTask({
    name: "nodes:remove",
    description: "Remove a pack (a snapshot first); restart once; verify the workflows' classes",
    destructive: "delete a custom node pack",
    options: removeOptions,
    positionals: ["pack"],
    preflight: async (_pf, opts) => (await import("./run.ts")).checkRemove(opts),
    run: async (ctx, opts) => (await import("./run.ts")).runRemove(ctx, o, opts),
  });
  return definePlugin({
    name: "nodes",
    description: "custom-node packs: install as locked, list, update, remove",
    tasks: [install, list, update, remove],
  });
}
