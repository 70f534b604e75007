// `setup:<provider>`: a fresh box to ComfyUI + comfyui-api serving, written once for every
// provider. A provider only says what differs (its profile, providers/shared/define.ts), as data.
import { z } from "zod";
import { defineTask, TaskError } from "../../lib/index.ts";
import { dataRootOf } from "../../lib/host-data.ts";
import { ensureNode } from "../../lib/node-runtime.ts";
import { detectGpu, ensureDocker, ensureNvidia, ensureVolume, stopUnattendedUpgrades, waitApt } from "../../lib/steps/host.ts";
import type { ProviderProfile } from "./define.ts";

export function setupTask(profile: ProviderProfile) {
  return defineTask({
    name: `setup:${profile.name}`,
    description: `Fresh ${profile.title} box -> Docker, GPU runtime, folders, Node, ComfyUI + comfyui-api running`,
    options: z.object({
      dataRoot: z.string().optional().describe(`data root (default ${profile.dataRoot})`),
      ...(profile.volume
        ? { volume: z.string().default(profile.volume.device).describe("block device for the data root; formatted only when blank") }
        : {}),
      healthTimeout: z.number().int().positive().optional().describe("seconds to wait for GET /health"),
    }),
    async run(ctx, opts) {
      const o = opts as { dataRoot?: string; volume?: string; healthTimeout?: number };
      // this box is set up as the profile's provider, whatever provider (if any) the flowfile gives it
      const dataRoot = dataRootOf(ctx, o.dataRoot, { provider: profile.name });
      if (!dataRoot.startsWith("/")) throw new TaskError(`--data-root ${dataRoot}: give an absolute path`);
      if (ctx.transport.user !== profile.user && ctx.transport.user !== "root") {
        ctx.warn(`logged in as ${ctx.transport.user}; ${profile.title} boxes log in as ${profile.user}`);
      }
      await waitApt(ctx);
      await stopUnattendedUpgrades(ctx);
      if (o.volume) await ensureVolume(ctx, o.volume, dataRoot);
      await ensureDocker(ctx);
      await ensureNvidia(ctx, await detectGpu(ctx));
      await ensureNode(ctx);
      if (!ctx.flow.plugins.some((p) => p.tasks.some((t) => t.name === "comfyui:up"))) {
        throw new TaskError("the flowfile has no comfyui() plugin: add it to plugins to deploy ComfyUI");
      }
      await ctx.runTask("comfyui:up", { dataRoot, healthTimeout: o.healthTimeout });
      // comfyui-api is on the box's loopback only: the proxy (token, TLS) is how it is called
      if (ctx.hasTask("api:proxy")) await ctx.runTask("api:proxy", {});
      else ctx.warn("no apiProxy() plugin in the flowfile: comfyui-api answers on the box's loopback only (flow run tunnel)");
    },
  });
}
