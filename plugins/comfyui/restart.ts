// comfyui:restart: the comfyui container, gracefully. ComfyUI's queue drains first (GET /queue on
// the host: nothing running, nothing pending), up to --drain-timeout; then the restart goes ahead
// anyway, with a warning, since whoever asks for it (the nodes tier after installing packs) needs
// the new code loaded. `docker restart` sends the container's stop signal (SIGINT, which
// comfyui-api handles), then GET /health and /ready must answer; if not, the log's last 50 lines.
// The queue wait and the restart are the comfyui-api tier's (plugins/comfyui-api/restart.ts).
import { z } from "zod";
import { defineTask, shQuote, TaskError, type TaskContext } from "../../lib/index.ts";
import { drainQueue, restartAndWait } from "../comfyui-api/restart.ts";
import { readEndpoints } from "../comfyui-api/health.ts";
import { CONTAINER, root, type ComfyuiOptions } from "./container.ts";

export const DRAIN_TIMEOUT = 600;
export const HEALTH_TIMEOUT = 600;

export interface RestartComfyOptions {
  /** wait for ComfyUI's queue to drain first (default true) */
  wait?: boolean;
  /** seconds to wait for the queue; then the restart goes ahead with a warning (default 600) */
  drainTimeout?: number;
  /** seconds to wait for GET /health and /ready afterwards (default 600) */
  healthTimeout?: number;
  /** why, shown beside the restart step ("2 packs installed") */
  reason?: string;
}

/** One graceful restart of the comfyui container, as steps: queue drained, restart, health. */
export async function restartComfy(ctx: TaskContext, opts: RestartComfyOptions = {}): Promise<void> {
  const exists = await ctx.exec(`docker inspect -f '{{.State.Status}}' ${shQuote(CONTAINER)}`, root);
  if (exists.code !== 0) throw new TaskError(`no ${CONTAINER} container on this host: make it first (flow run comfyui:up)`);
  const ends = await readEndpoints(ctx, CONTAINER);
  if (opts.wait === false) await ctx.step("queue drained", async () => ({ status: "skipped", note: "--no-wait" }));
  else
    await drainQueue(ctx, ends.comfy, opts.drainTimeout ?? DRAIN_TIMEOUT, {
      onTimeout: "proceed",
      hint: "--no-wait restarts at once, --drain-timeout waits longer",
    });
  await restartAndWait(ctx, ends.api, {
    healthTimeout: opts.healthTimeout ?? HEALTH_TIMEOUT,
    lines: 50,
    note: opts.reason,
    container: CONTAINER,
  });
}

/** The queue and health waits of anything that restarts ComfyUI (comfyui:restart, comfyui:update). */
export const restartTimingOptions = z.object({
  wait: z.boolean().default(true).describe("wait for ComfyUI's queue to drain first (--no-wait: at once)"),
  drainTimeout: z
    .number()
    .int()
    .nonnegative()
    .default(DRAIN_TIMEOUT)
    .describe("seconds to wait for the queue; then it goes ahead anyway, with a warning"),
  healthTimeout: z.number().int().positive().optional().describe(`seconds to wait for GET /health and /ready (default ${HEALTH_TIMEOUT})`),
});

export function restartTasks(o: ComfyuiOptions) {
  const restart = defineTask({
    name: "comfyui:restart",
    description: "Restart ComfyUI (and comfyui-api) once its queue has drained, then wait for GET /health and /ready",
    options: restartTimingOptions,
    async run(ctx, opts) {
      await restartComfy(ctx, { ...opts, healthTimeout: opts.healthTimeout ?? o.healthTimeoutSeconds ?? HEALTH_TIMEOUT });
    },
  });
  return [restart];
}
