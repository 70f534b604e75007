// deploy: the seed's --deploy-all as one command. Every part is a task of its own, run on the same
// host through the runner, whose typed tally says whether it changed anything: workflows synced
// (without their own restart), the node packs the workflows need (as flow.lock.json pins them), the
// models they need, then ONE restart when anything changed, the proxy in front (api:proxy, when the
// flow has it), then the proof (api:verify). A second run changes nothing and does not restart.
import { z } from "zod";
import { defineTask, type TaskContext, type TaskDef } from "../../lib/index.ts";

export const deployOptions = z.object({
  dataRoot: z.string().optional().describe("data root on the host (default: the host's or its provider's)"),
  smoke: z.boolean().default(false).describe("with the verify: POST each workflow with its defaults"),
  offline: z.boolean().default(false).describe("reference data and comfyui-api's types from the cache only"),
});

/** The parts of a deploy, in order; a part whose plugin is not registered is reported, not run. */
export const DEPLOY_PARTS = [
  {
    task: "api:workflows",
    what: "workflows",
    options: (o: DeployOptions) => ({
      // the models come after the workflows: a missing one is a warning here, the verify is the proof
      restart: false,
      verify: false,
      deps: "warn",
      dataRoot: o.dataRoot,
      offline: o.offline,
    }),
  },
  {
    task: "nodes:install",
    what: "custom node packs",
    // deploy restarts once for every part; the verify after it proves the workflows load
    // a workflow not yet in flow.lock.json is said, not fatal: api:verify after the restart is the proof
    options: (o: DeployOptions) => ({ restart: false, verify: false, unlocked: "skip", dataRoot: o.dataRoot }),
  },
  { task: "models:download", what: "models", options: (o: DeployOptions) => ({ offline: o.offline }) },
] as const;

type DeployOptions = z.infer<typeof deployOptions>;

async function deploy(ctx: TaskContext, o: DeployOptions): Promise<void> {
  let changed = 0;
  for (const part of DEPLOY_PARTS) {
    if (!ctx.hasTask(part.task)) {
      await ctx.step(part.what, async () => ({ status: "skipped", note: `${part.task} is not available in this flow` }));
      continue;
    }
    changed += (await ctx.runTask(part.task, part.options(o))).changed;
  }
  if (changed > 0 && !ctx.dryRun) await ctx.runTask("restart", {});
  else await ctx.step("restart", async () => ({ status: "skipped", note: ctx.dryRun ? "dry run" : "nothing changed" }));
  // the front door (token, TLS) as the flowfile says; it does not restart comfyui-api
  if (ctx.hasTask("api:proxy")) await ctx.runTask("api:proxy", {});
  if (!ctx.dryRun) await ctx.runTask("api:verify", { smoke: o.smoke });
}

export function deployTasks(): TaskDef<any>[] {
  return [
    defineTask({
      name: "deploy",
      description: "Workflows, node packs and models the workflows need, one restart when anything changed, then api:verify",
      options: deployOptions,
      run: deploy,
    }),
  ];
}
