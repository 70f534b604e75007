// api:workflows: the project's workflows/ onto each host, checked first, restart only on a change,
// then api:verify. Names and options only; the body loads when the task runs (./workflows-run.ts).
import { z } from "zod";
import { defineTask, type TaskDef } from "../../lib/index.ts";
import type { ComfyuiApiOptions } from "./options.ts";
import { verifyTable, type VerifyRow } from "./verify.ts";

export const workflowsOptions = z.object({
  dir: z.string().optional().describe("the workflows folder (default: the plugin's workflowsDir, else workflows/)"),
  dataRoot: z.string().optional().describe("data root on the host (default: the host's or its provider's)"),
  deps: z
    .enum(["check", "warn", "skip"])
    .default("check")
    .describe("what the workflows need on the host (model folders and files, node classes): check refuses the sync when one is missing"),
  restart: z.boolean().default(true).describe("restart comfyui-api when the folder changed (--no-restart: sync only)"),
  verify: z.boolean().default(true).describe("run api:verify afterwards (--no-verify to skip)"),
  smoke: z.boolean().default(false).describe("with the verify: POST each workflow with its defaults (or its `example`)"),
  offline: z.boolean().default(false).describe("use the cached copy of comfyui-api's types.ts / config.ts only"),
  readyTimeout: z.number().int().positive().optional().describe("seconds to wait for GET /ready after the restart"),
});
export type WorkflowsTaskOptions = z.infer<typeof workflowsOptions>;

export function workflowsTasks(plugin: ComfyuiApiOptions): TaskDef<any>[] {
  return [
    defineTask({
      name: "api:workflows",
      description:
        "Sync workflows/ to each host (type-checked, dependencies checked, only changed files), restart comfyui-api on a change, verify",
      options: workflowsOptions,
      run: async (ctx, o) => void (await (await import("./workflows-run.ts")).syncWorkflows(ctx, o, plugin)),
      // the verify's table, when a host got that far
      summarize: (recaps) =>
        recaps.some((r) => (r.data.apiVerify as { rows?: VerifyRow[] } | undefined)?.rows?.length) ? verifyTable(recaps) : "",
    }),
  ];
}
