// Tier 2: ComfyUI itself. The container (from the comfyui-api image: ComfyUI on 8188, the API on
// 3000), its folders on the host, its health, and its life after setup: a graceful restart
// (comfyui:restart), snapshots of what it runs (comfyui:snapshot), and a new image with a way
// back (comfyui:update).
import { z } from "zod";
import { definePlugin, defineTask } from "../../lib/index.ts";
import { layoutDirs } from "../../lib/comfy/deploy.ts";
import { ensureDirs } from "../../lib/steps/host.ts";
import { ensureImage } from "../../lib/steps/image-pull.ts";
import {
  ensureContainer,
  patchHostRecord,
  readComfyHost,
  recordDataRoot,
  seedCustomNodes,
  waitHealthy,
  type ComfyuiOptions,
} from "./container.ts";
import { restartTasks } from "./restart.ts";
import { snapshotTasks } from "./snapshot.ts";
import { updateTasks } from "./update.ts";

export { DEFAULT_IMAGE, type ComfyuiOptions } from "./container.ts";
export { restartComfy, type RestartComfyOptions } from "./restart.ts";
export { updateComfy, type UpdateComfyOptions } from "./update.ts";

export function comfyui(o: ComfyuiOptions = {}) {
  const up = defineTask({
    name: "comfyui:up",
    description: "Folders on the data root, the comfyui container (re-created only when its spec changes), health",
    options: z.object({
      dataRoot: z.string().optional().describe("data root on the host (default: the host's or its provider's)"),
      healthTimeout: z.number().int().positive().optional().describe("seconds to wait for GET /health"),
    }),
    async run(ctx, opts) {
      const host = await readComfyHost(ctx, o, opts.dataRoot);
      await ensureDirs(ctx, `folders under ${host.dataRoot}`, layoutDirs(host.layout));
      if (host.choice && !host.staleChoice && host.image !== host.flowfileImage)
        ctx.log(`image ${host.image}: chosen by comfyui:update (the flowfile names ${host.flowfileImage}; editing it there wins)`);
      if (host.staleChoice) {
        // the flowfile moved on since comfyui:update chose an image: forget that choice, or an edit back would revive it
        await ctx.ensure({
          title: `comfyui:update's image ${host.choice!.image} dropped (the flowfile now names ${host.flowfileImage})`,
          check: async () => ({ ok: false, note: `chosen over ${host.choice!.flowfileImage}` }),
          apply: async () => void (await patchHostRecord(ctx, { comfyImage: undefined })),
        });
      }
      const cfg = host.config(host.image);
      // the image (10+ GB) is the longest wait of a first setup: its own step, with progress
      await ensureImage(ctx, cfg.image);
      await seedCustomNodes(ctx, cfg.image, host.layout.customNodes);
      await ensureContainer(ctx, cfg);
      await recordDataRoot(ctx, host.dataRoot);
      await waitHealthy(ctx, cfg, opts.healthTimeout ?? o.healthTimeoutSeconds ?? 600);
    },
  });

  // the container's log: the ops tier's `logs` task (plugins/logs.ts)
  return definePlugin({
    name: "comfyui",
    description: "ComfyUI and comfyui-api in one container",
    tasks: [up, ...restartTasks(o), ...snapshotTasks(o), ...updateTasks(o)],
  });
}
