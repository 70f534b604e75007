// comfyui:update --version X | --image TAG: another comfyui-api image (another ComfyUI) on a host.
// A snapshot first (comfyui:snapshot restore <id> undoes the whole update later), then the switch
// (./switch.ts: pull when absent, re-create with comfyui:up's spec, health, the workflows' node
// classes, back to the old image by itself on any failure). The chosen image is recorded on the
// host, so comfyui:up keeps it until the flowfile names another image (the newer edit wins).
import { z } from "zod";
import { defineTask, TaskError, type TaskContext } from "../../lib/index.ts";
import { comfyVersionProblem, withComfyVersion } from "../../lib/comfy/deploy.ts";
import { missingWorkflowClasses } from "../nodes/verify.ts";
import { CONTAINER, healthOf, readComfyHost, recordImageChoice, runningContainer, type ComfyuiOptions } from "./container.ts";
import { DRAIN_TIMEOUT, HEALTH_TIMEOUT, restartTimingOptions } from "./restart.ts";
import { saveSnapshot } from "./snapshot.ts";
import { switchImage, type ClassCheck } from "./switch.ts";

export type { ClassCheck } from "./switch.ts";

export interface UpdateComfyOptions {
  /** ComfyUI's version: replaces comfy<version> in the tag of the image the container runs */
  version?: string;
  /** a whole image instead */
  image?: string;
  dataRoot?: string;
  healthTimeout?: number;
  /** drain ComfyUI's queue before the container goes (default true) */
  wait?: boolean;
  drainTimeout?: number;
  /** the comfyui plugin's options: the re-created container keeps the flowfile's ports, env, binary */
  comfyui?: ComfyuiOptions;
}

export interface UpdateResult {
  image: string;
  previous: string;
  changed: boolean;
  /** the snapshot taken before the switch */
  snapshot?: string;
}

/** The image asked for: --image as given, or --version written into the current image's tag. */
export function targetImage(o: Pick<UpdateComfyOptions, "version" | "image">, current: string): string {
  const bad = optionsProblem(o);
  if (bad) throw new TaskError(bad);
  if (o.image) return o.image;
  try {
    return withComfyVersion(current, o.version!);
  } catch (e) {
    throw new TaskError((e as Error).message);
  }
}

/** What is wrong with the options before any host is read. */
export function optionsProblem(o: Pick<UpdateComfyOptions, "version" | "image">): string | undefined {
  if (!!o.image === !!o.version) return "comfyui:update needs one of --version <ComfyUI version> or --image <image tag>";
  return o.version ? comfyVersionProblem(o.version) : undefined;
}

/**
 * Snapshot, switch, verify, record; rolled back and failed when the new image does not serve or
 * `verify` names missing node classes. The same image again changes nothing and restarts nothing.
 */
export async function updateComfy(ctx: TaskContext, opts: UpdateComfyOptions, verify?: ClassCheck): Promise<UpdateResult> {
  const plugin = opts.comfyui ?? {};
  const healthTimeout = opts.healthTimeout ?? plugin.healthTimeoutSeconds ?? HEALTH_TIMEOUT;
  const host = await readComfyHost(ctx, plugin, opts.dataRoot);
  const running = await runningContainer(ctx);
  if (!running) throw new TaskError(`no ${CONTAINER} container on this host: comfyui:up makes it (with the flowfile's image)`);
  const to = targetImage(opts, running.image);
  const choice = { image: to, flowfileImage: host.flowfileImage };
  if (running.image === to && running.state === "running") {
    await ctx.step(`image ${to}`, async () => {
      if (ctx.dryRun) return { status: "ok", note: "already running" };
      const h = await healthOf(ctx, host.config(to), healthTimeout, ["/health", "/ready"]);
      if (h.ok) return { status: "ok", note: "already running, serves" };
      throw new TaskError(`${to} is already the image, but ${h.problem}; last 50 lines of the ${CONTAINER} container's log:\n${h.logs}`);
    });
    await recordImageChoice(ctx, choice);
    return { image: to, previous: running.image, changed: false };
  }
  const snapshot = await saveSnapshot(ctx, { dataRoot: host.dataRoot, reason: `before comfyui:update to ${to}` });
  await switchImage(ctx, host, running, to, {
    healthTimeout,
    wait: opts.wait,
    drainTimeout: opts.drainTimeout ?? DRAIN_TIMEOUT,
    verify,
    what: `comfyui:update to ${to}`,
  });
  await recordImageChoice(ctx, choice);
  if (snapshot) ctx.log(`the host before this update: flow run comfyui:snapshot restore ${snapshot}`);
  ctx.emit({ comfyui: { image: to, previous: running.image, snapshot } });
  return { image: to, previous: running.image, changed: true, snapshot };
}

/** The workflows' node classes ComfyUI lacks, named with the pack that provides each (when known). */
const workflowClasses: ClassCheck = async (ctx) =>
  (await missingWorkflowClasses(ctx)).map((m) => (m.pack ? `${m.cls} (${m.pack})` : m.cls));

export function updateTasks(plugin: ComfyuiOptions) {
  const update = defineTask({
    name: "comfyui:update",
    description: "Another comfyui-api image (ComfyUI version): snapshot, pull, re-create, verify; back to the old image on failure",
    options: restartTimingOptions.extend({
      version: z.string().min(1).optional().describe("ComfyUI version: replaces comfy<version> in the running image's tag"),
      image: z.string().min(1).optional().describe("the whole image tag instead"),
      dataRoot: z.string().optional().describe("data root on the host (default: the host's or its provider's)"),
    }),
    async preflight(_pf, o) {
      const bad = optionsProblem(o);
      if (bad) throw new TaskError(bad);
    },
    async run(ctx, o) {
      await updateComfy(ctx, { ...o, comfyui: plugin }, workflowClasses);
    },
  });
  return [update];
}
