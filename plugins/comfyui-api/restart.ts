// restart: the comfyui container, gracefully. First the queue drains (ComfyUI's GET /queue on
// 8188: nothing running, nothing pending; up to --drain-timeout, --force skips the wait), then
// the restart, then GET /health and /ready must answer 200; on failure the container's last log
// lines are shown.
//
// What can restart alone depends on how the image runs the two: in comfyui-api's image the API is
// the container's PID 1 and starts ComfyUI as its child (CMD). So `--what api` restarts both, and
// says why. `--what comfyui` restarts ComfyUI alone when comfyui-api relaunches it by itself
// (ALWAYS_RESTART_COMFYUI=true in the container's environment): its process tree is stopped and
// comfyui-api starts it again; otherwise comfyui-api exits with its child, so both restart.
import { z } from "zod";
import { defineTask, shQuote, TaskError, type TaskContext } from "../../lib/index.ts";
import { healthWaitCommand, parseHealthWait, publishedUrl, restartContainer, type PublishedPort } from "../../lib/commands/docker.ts";
import { CONTAINER, healthStep, lastLogLines, readEndpoints, waitProblem } from "./health.ts";

const root = { sudo: true } as const;

export interface QueueState {
  running: number;
  pending: number;
}

/** ComfyUI's GET /queue: `{"queue_running": [...], "queue_pending": [...]}`; null when it is not that. */
export function parseQueue(body: string): QueueState | null {
  try {
    const j = JSON.parse(body);
    if (!j || !Array.isArray(j.queue_running) || !Array.isArray(j.queue_pending)) return null;
    return { running: j.queue_running.length, pending: j.queue_pending.length };
  } catch {
    return null;
  }
}

export const queueText = (q: QueueState) => `${q.running} running, ${q.pending} pending`;

/** The container's PID 1 and environment: who can restart alone. */
export interface ProcessLayout {
  /** the container's command (PID 1) */
  path: string;
  /** the command comfyui-api starts ComfyUI with */
  cmd?: string;
  alwaysRestartComfyui: boolean;
  /** PID 1 is comfyui-api (its launcher or binary) */
  apiIsPid1: boolean;
}

export function parseLayout(stdout: string): ProcessLayout {
  const [path = "", ...envLines] = stdout.split("\n");
  const env = new Map(
    envLines.filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as [string, string]),
  );
  return {
    path: path.trim(),
    cmd: env.get("CMD"),
    alwaysRestartComfyui: (env.get("ALWAYS_RESTART_COMFYUI") ?? "").toLowerCase() === "true",
    apiIsPid1: /comfyui-api|dist\/src\/index\.js/.test(path),
  };
}

const layoutCommand = (name: string) =>
  `docker inspect -f '{{.Path}} {{join .Args " "}}{{range .Config.Env}}{{println}}{{.}}{{end}}' ${shQuote(name)}`;

/** What `--what` does on this image, in a sentence; `comfyuiAlone`: ComfyUI can restart without the API. */
export function restartPlan(what: "both" | "comfyui" | "api", l: ProcessLayout): { comfyuiAlone: boolean; note?: string } {
  const tree = l.apiIsPid1
    ? `comfyui-api is the container's PID 1 (${l.path}) and starts ComfyUI as its child${l.cmd ? ` (CMD=${l.cmd})` : ""}`
    : `the container runs ${l.path}`;
  if (what === "api") return { comfyuiAlone: false, note: `${tree}: the API cannot restart alone, so both restart` };
  if (what === "comfyui") {
    if (l.apiIsPid1 && l.alwaysRestartComfyui)
      return { comfyuiAlone: true, note: `${tree}, and relaunches it (ALWAYS_RESTART_COMFYUI=true): ComfyUI alone restarts` };
    return {
      comfyuiAlone: false,
      note: `${tree}${l.apiIsPid1 ? " and exits when it does (ALWAYS_RESTART_COMFYUI is not true)" : ""}: both restart`,
    };
  }
  return { comfyuiAlone: false };
}

async function queueNow(ctx: TaskContext, comfy: PublishedPort): Promise<QueueState | null> {
  const r = await ctx.exec(`curl -s --max-time 3 ${shQuote(publishedUrl(comfy, "/queue"))}`);
  return r.code === 0 ? parseQueue(r.stdout) : null;
}

export interface DrainOptions {
  /** when the time is up: "fail" (default: nothing restarts) or "proceed" (a warning, then the restart goes ahead) */
  onTimeout?: "fail" | "proceed";
  /** the calling task's own way round a long wait, named in the message */
  hint?: string;
}

/** Wait until ComfyUI's queue is empty (one request every 2 s). */
export async function drainQueue(ctx: TaskContext, comfy: PublishedPort, timeoutSeconds: number, d: DrainOptions = {}): Promise<void> {
  await ctx.step(`queue drained (GET :${comfy.host}/queue)`, async () => {
    const t0 = Date.now();
    let q = await queueNow(ctx, comfy);
    if (!q) return { status: "ok", note: "ComfyUI does not answer GET /queue: nothing to wait for" };
    const first = q;
    while (q && q.running + q.pending > 0) {
      const waited = Math.round((Date.now() - t0) / 1000);
      if (ctx.dryRun) return { status: "ok", note: `${queueText(q)}: a run would wait up to ${timeoutSeconds}s` };
      if (waited >= timeoutSeconds && d.onTimeout === "proceed") {
        ctx.warn(`the queue did not drain within ${timeoutSeconds}s (${queueText(q)}): restarting anyway${d.hint ? `; ${d.hint}` : ""}`);
        return { status: "ok", note: `gave up after ${timeoutSeconds}s with ${queueText(q)}` };
      }
      if (waited >= timeoutSeconds) {
        throw new TaskError(
          `the queue did not drain within ${timeoutSeconds}s (${queueText(q)}): nothing was restarted; ` +
            `--force restarts anyway, --drain-timeout waits longer`,
        );
      }
      ctx.progress(`waiting for the queue to drain: ${queueText(q)} (${waited}s)`);
      await new Promise((r) => setTimeout(r, 2000));
      q = (await queueNow(ctx, comfy)) ?? { running: 0, pending: 0 };
    }
    const secs = Math.round((Date.now() - t0) / 1000);
    return { status: "ok", note: first.running + first.pending ? `waited ${secs}s for ${queueText(first)}` : "empty" };
  });
}

/** Restart the container and wait for health; the last log lines on failure. */
export async function restartAndWait(
  ctx: TaskContext,
  api: PublishedPort,
  o: { healthTimeout: number; lines: number; note?: string; container?: string },
): Promise<void> {
  const container = o.container ?? CONTAINER;
  await ctx.step(`restart container ${container}`, async () => {
    if (ctx.dryRun) return { status: "changed", note: o.note ?? "would restart" };
    await ctx.sh(restartContainer(container), root);
    return { status: "changed", note: o.note };
  });
  await healthStep(ctx, api, o.healthTimeout, o.lines, container);
}

/** ComfyUI alone: stop its process tree and let comfyui-api relaunch it; then ComfyUI's port and /ready answer. */
async function restartComfyuiAlone(
  ctx: TaskContext,
  ends: { api: PublishedPort; comfy: PublishedPort },
  o: { healthTimeout: number; lines: number; note?: string; container: string },
) {
  const { container } = o;
  const pid1 = async () => Number((await ctx.sh(`docker inspect -f '{{.State.Pid}}' ${shQuote(container)}`, root)).trim());
  const tree = (p: number) => `desc() { for c in $(ps -o pid= --ppid "$1"); do echo "$c"; desc "$c"; done; }; desc ${p}`;
  const p = await pid1();
  const old = (await ctx.sh(tree(p), root)).split(/\s+/).filter(Boolean);
  await ctx.step("restart ComfyUI (comfyui-api stays up)", async () => {
    if (ctx.dryRun) return { status: "changed", note: o.note };
    if (!old.length) throw new TaskError("comfyui-api has no child process (ComfyUI is not running): restart both (--what both)");
    // SIGKILL, the whole tree at once: comfyui-api relaunches its child only when it ends by a
    // signal or a non-zero exit (ComfyUI stopping cleanly on SIGINT/SIGTERM exits 0 and is not
    // relaunched), and nothing of the old tree (comfy-cli's python) may keep port 8188. The queue drained first.
    await ctx.sh(`kill -KILL ${old.join(" ")} 2>/dev/null || true`, root);
    // comfyui-api starts a new child at once; ComfyUI's own start-up is the next step's wait
    const deadline = Date.now() + 30_000;
    for (;;) {
      if ((await pid1()) !== p) throw new TaskError("comfyui-api exited with ComfyUI: the container restarted (both)");
      const now = (await ctx.sh(`ps -o pid= --ppid ${p} || true`, root)).split(/\s+/).filter(Boolean);
      if (now.some((n) => !old.includes(n))) break;
      if (Date.now() > deadline) {
        throw new TaskError(
          `comfyui-api did not start ComfyUI again within 30s (restart both with --what both); ` +
            `last ${o.lines} lines of the log:\n${await lastLogLines(ctx, o.lines, container)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    return { status: "changed", note: o.note };
  });
  if (ctx.dryRun) return;
  await ctx.step(`ComfyUI and comfyui-api answer (GET :${ends.comfy.host}/, :${ends.api.host}/ready)`, async () => {
    const w = parseHealthWait(
      (
        await ctx.exec(
          healthWaitCommand(container, [publishedUrl(ends.comfy, "/"), publishedUrl(ends.api, "/ready")], o.healthTimeout),
          root,
        )
      ).stdout,
    );
    if (w.outcome === "ok") return { status: "ok", note: `after ${w.seconds}s` };
    throw new TaskError(
      `${waitProblem(w, o.healthTimeout)}; last ${o.lines} lines of the ${container} container's log:\n` +
        `${await lastLogLines(ctx, o.lines, container)}`,
    );
  });
}

export function restartTasks(settings: { container?: string } = {}) {
  const container = settings.container ?? CONTAINER;
  const restart = defineTask({
    name: "restart",
    description: "Restart ComfyUI and comfyui-api gracefully: wait for the queue to drain, restart, wait for GET /health and /ready",
    options: z.object({
      what: z
        .enum(["both", "comfyui", "api"])
        .default("both")
        .describe("what to restart: both, comfyui or api (where the image allows it alone)"),
      force: z.boolean().optional().describe("restart without waiting for the queue to drain"),
      drainTimeout: z.number().int().nonnegative().default(300).describe("seconds to wait for the queue to drain"),
      healthTimeout: z.number().int().positive().default(300).describe("seconds to wait for GET /health and /ready afterwards"),
      lines: z.number().int().positive().default(50).describe("log lines shown when it does not come back"),
    }),
    async run(ctx, o) {
      const exists = await ctx.exec(`docker inspect -f '{{.State.Status}}' ${shQuote(container)}`, root);
      if (exists.code !== 0) throw new TaskError(`no ${container} container on this host (set it up first: flow run setup:<provider>)`);
      const ends = await readEndpoints(ctx, container);
      const layout = parseLayout(await ctx.sh(layoutCommand(container), root));
      const plan = restartPlan(o.what, layout);
      if (plan.note) ctx.log(plan.note);
      if (o.force) await ctx.step("queue drained", async () => ({ status: "skipped", note: "--force" }));
      else await drainQueue(ctx, ends.comfy, o.drainTimeout);
      const note = plan.comfyuiAlone ? "ComfyUI alone" : o.what === "both" ? undefined : "ComfyUI and comfyui-api";
      if (plan.comfyuiAlone) await restartComfyuiAlone(ctx, ends, { ...o, note, container });
      else await restartAndWait(ctx, ends.api, { ...o, note, container });
    },
  });
  return [restart];
}
