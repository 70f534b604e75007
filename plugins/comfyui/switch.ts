// The comfyui container onto another image, with the way back: the image made present (pulled
// only when the engine lacks it), the image's own packs seeded, the queue drained, the container
// re-created with comfyui:up's spec and the new image, then GET /health and /ready and an optional
// check (the workflows' node classes). On any failure the container is re-created with the image
// it ran before and must serve again; the task then fails saying what failed and that it rolled back.
import { TaskError, type TaskContext } from "../../lib/index.ts";
import { comfyContainerSpec } from "../../lib/comfy/deploy.ts";
import {
  ensureImageCommand,
  imagePresentCommand,
  replaceContainer,
  stopContainer,
  type ContainerImage,
} from "../../lib/commands/docker.ts";
import { drainQueue } from "../comfyui-api/restart.ts";
import { readEndpoints } from "../comfyui-api/health.ts";
import { CONTAINER, healthOf, root, seedCustomNodes, type ComfyHost } from "./container.ts";

/** Names the classes the workflows need that ComfyUI does not have (empty: all there). */
export type ClassCheck = (ctx: TaskContext) => Promise<string[]>;

export interface SwitchOptions {
  healthTimeout: number;
  /** drain ComfyUI's queue before the container goes (default true) */
  wait?: boolean;
  drainTimeout: number;
  verify?: ClassCheck;
  /** what the failure says failed ("comfyui:update to X", "restoring snapshot Y") */
  what: string;
}

/** docker stops it with its stop signal (SIGINT, which comfyui-api handles) before the re-creation removes it. */
const recreate = (ctx: TaskContext, host: ComfyHost, image: string) =>
  ctx.sh(`${stopContainer(CONTAINER)}\n${replaceContainer(comfyContainerSpec(host.config(image)))}`, root);

interface Attempt {
  ok: boolean;
  problem?: string;
  logs?: string;
  seconds?: number;
}

/**
 * `known`: classes already missing before the switch (a pack never installed): the new image is not
 * blamed for them; only classes it loses fail it.
 */
async function startAndCheck(
  ctx: TaskContext,
  host: ComfyHost,
  image: string,
  o: SwitchOptions,
  verify?: { check: ClassCheck; known: string[] },
): Promise<Attempt> {
  try {
    await recreate(ctx, host, image);
  } catch (e) {
    return { ok: false, problem: `the container did not start: ${(e as Error).message.split("\n")[0]}` };
  }
  const h = await healthOf(ctx, host.config(image), o.healthTimeout, ["/health", "/ready"]);
  if (!h.ok) return { ok: false, problem: h.problem, logs: h.logs };
  if (verify) {
    let missing: string[];
    try {
      missing = (await verify.check(ctx)).filter((c) => !verify.known.includes(c));
    } catch (e) {
      return { ok: false, problem: `the node class check failed: ${(e as Error).message.split("\n")[0]}` };
    }
    if (missing.length)
      return {
        ok: false,
        problem:
          `ComfyUI no longer has ${missing.length} node class${missing.length === 1 ? "" : "es"} the workflows need: ` + missing.join(", "),
      };
  }
  return { ok: true, seconds: h.seconds };
}

/** Switch the container from `from` to `to`; throws (after rolling back) when `to` does not serve. */
export async function switchImage(ctx: TaskContext, host: ComfyHost, from: ContainerImage, to: string, o: SwitchOptions): Promise<void> {
  await ctx.step(`image ${to} on the host`, async () => {
    if (ctx.dryRun) {
      const have = (await ctx.exec(imagePresentCommand(to), root)).code === 0;
      return have ? { status: "ok", note: "present" } : { status: "changed", note: "would pull" };
    }
    const r = await ctx.exec(ensureImageCommand(to), root);
    if (r.code !== 0) {
      const why = (r.stderr || r.stdout).trim().split("\n").pop() ?? `exit ${r.code}`;
      throw new TaskError(
        `${o.what} failed: docker could not pull ${to} (${why}); nothing was changed: the container still runs ${from.image}`,
      );
    }
    return r.stdout.includes("pulled") ? { status: "changed", note: "pulled" } : { status: "ok", note: "present (not pulled)" };
  });
  await seedCustomNodes(ctx, to, host.layout.customNodes);
  if (o.wait === false) await ctx.step("queue drained", async () => ({ status: "skipped", note: "--no-wait" }));
  else
    await drainQueue(ctx, (await readEndpoints(ctx, CONTAINER)).comfy, o.drainTimeout, {
      onTimeout: "proceed",
      hint: "--no-wait goes ahead at once, --drain-timeout waits longer",
    });
  let verify: { check: ClassCheck; known: string[] } | undefined;
  if (o.verify && !ctx.dryRun) {
    // what the old image lacks already; when the check cannot run now (ComfyUI down), nothing counts as missing before
    const known = await o.verify(ctx).catch(() => []);
    if (known.length) ctx.warn(`the workflows need node classes ComfyUI lacks already (before the switch): ${known.join(", ")}`);
    verify = { check: o.verify, known };
  }
  const checks = `GET /health and /ready${o.verify ? " and the workflows' node classes" : ""}`;
  let first: Attempt = { ok: false };
  await ctx.step(`container ${CONTAINER} re-created with ${to}, check ${checks}`, async () => {
    if (ctx.dryRun) return { status: "changed", note: `would re-create it (runs ${from.image}) and check` };
    first = await startAndCheck(ctx, host, to, o, verify);
    if (first.ok) return { status: "changed", note: `serves after ${first.seconds}s; was ${from.image}` };
    return { status: "failed", note: first.problem };
  });
  if (ctx.dryRun || first.ok) return;
  let back: Attempt = { ok: false };
  await ctx.step(`roll back to ${from.image}`, async () => {
    back = await startAndCheck(ctx, host, from.image, o);
    if (back.ok) return { status: "changed", note: `serves again after ${back.seconds}s` };
    return { status: "failed", note: back.problem };
  });
  const logs = first.logs ? `\nlast 50 lines of the ${CONTAINER} container's log (${to}):\n${first.logs}` : "";
  if (!back.ok) {
    throw new TaskError(
      `${o.what} failed (${first.problem}) and rolling back to ${from.image} failed too (${back.problem}): ` +
        `ComfyUI is down on this host${logs}`,
    );
  }
  throw new TaskError(
    `${o.what} failed (${first.problem}): rolled back to ${from.image}, which serves again (GET /health and /ready 200)${logs}`,
  );
}
