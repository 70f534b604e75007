// Tier 3, plugin "models": the model files the workflows need, on each host, downloaded there
// (detached, resumable) from sources resolved here; a report, organize and cleanup.
// Only names and option schemas live here; each body loads when its task runs.
import { DEFAULT_CONNECTIONS, MAX_CONNECTIONS } from "../../tasks/lib/download/settings.ts";
import { z } from "zod";
import { definePlugin, defineTask } from "../../lib/index.ts";
import { hfTokenPreflight } from "../shared/hf.ts";

export interface ModelsOptions {
  /** HTTP Range connections per file (default DEFAULT_CONNECTIONS) */
  connections?: number;
  /** files downloaded at once (default 2) */
  parallelFiles?: number;
  /** URL prefix -> replacement, for plain URLs (a local mirror or cache) */
  mirrors?: Record<string, string>;
}

const workflowOpt = z.array(z.string()).optional().describe("workflow files (default: every file in workflow_templates/)");
const offlineOpt = z.boolean().default(false).describe("use cached reference data only (model-list.json)");

const downloadOptions = z.object({
  workflow: workflowOpt,
  optional: z.boolean().default(false).describe("also models only muted or bypassed nodes use"),
  connections: z
    .number()
    .int()
    .min(1)
    .max(MAX_CONNECTIONS)
    .optional()
    .describe(`HTTP Range connections per file (default ${DEFAULT_CONNECTIONS})`),
  parallelFiles: z.number().int().min(1).max(16).optional().describe("files downloaded at once (default 2)"),
  offline: offlineOpt,
});
export type DownloadOptions = z.infer<typeof downloadOptions>;

const reportOptions = z.object({
  workflow: workflowOpt,
  optional: z.boolean().default(false).describe("count optional models too"),
  offline: offlineOpt,
});
export type ReportOptions = z.infer<typeof reportOptions>;
const organizeOptions = z.object({ workflow: workflowOpt, offline: offlineOpt });
export type OrganizeOptions = z.infer<typeof organizeOptions>;
const cleanupOptions = z.object({
  workflow: z
    .array(z.string())
    .optional()
    .describe("also keep the models of these workflow files (every file in workflow_templates/ is always kept)"),
  offline: offlineOpt,
});
export type CleanupOptions = z.infer<typeof cleanupOptions>;

const tokens = ["HF_TOKEN", "CIVITAI_API_TOKEN"];

export function models(options: ModelsOptions = {}) {
  return definePlugin({
    name: "models",
    description: "model files the workflows need: resumable downloads on the host, report, organize, cleanup",
    tasks: [
      defineTask({
        name: "models:download",
        description: "Download the models the workflows need onto the host (detached, resumable, verified)",
        optionalSecrets: tokens,
        options: downloadOptions,
        preflight: (pf, o) => (o.offline ? Promise.resolve() : hfTokenPreflight(pf)),
        run: async (ctx, o) => (await import("./download.ts")).runDownload(ctx, o, options),
      }),
      defineTask({
        name: "models:report",
        description: "Per-folder sizes, free space, and per workflow: ready or what is missing",
        lock: false,
        optionalSecrets: tokens,
        options: reportOptions,
        preflight: (pf, o) => (o.offline ? Promise.resolve() : hfTokenPreflight(pf)),
        run: async (ctx, o) => (await import("./report.ts")).runReport(ctx, o, options),
      }),
      defineTask({
        name: "models:organize",
        description: "Move model files into the folders the workflows expect; hardlink identical files",
        options: organizeOptions,
        run: async (ctx, o) => (await import("./organize.ts")).runOrganize(ctx, o),
      }),
      defineTask({
        name: "models:cleanup",
        description: "List model files no workflow needs; delete them with --yes",
        destructive: "delete the model files no workflow needs",
        options: cleanupOptions,
        run: async (ctx, o) => (await import("./cleanup.ts")).runCleanup(ctx, o),
      }),
    ],
  });
}
