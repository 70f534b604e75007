// The comfyui container as comfyui:up makes it, shared by comfyui:up, comfyui:update and
// comfyui:snapshot restore: its config from the plugin's options and the host's facts, the image
// in use (the flowfile's, or the one comfyui:update chose while the flowfile still names the
// same one), the seed of custom_nodes, the host record, and the wait for GET /health.
import { shQuote, TaskError, type TaskContext } from "../../lib/index.ts";
import {
  comfyContainerSpec,
  comfyLayout,
  portBindings,
  COMFY_HOME,
  type ComfyContainerConfig,
  type ComfyExpose,
  type ComfyLayout,
} from "../../lib/comfy/deploy.ts";
import {
  containerImageFact,
  containerLogs,
  healthWaitCommand,
  parseContainerImage,
  parseHealthWait,
  publishedUrl,
  specHash,
  type ContainerImage,
} from "../../lib/commands/docker.ts";
import { dataRootOf } from "../../lib/host-data.ts";
import { readHostRecordCommand, writeHostRecordCommand } from "../../lib/commands/host-record.ts";
import { detectGpu } from "../../lib/steps/host.ts";
import { ensureContainerSpec } from "../../lib/steps/container.ts";
import { CONTAINER, waitProblem } from "../comfyui-api/health.ts";

export const DEFAULT_IMAGE = "ghcr.io/saladtechnologies/comfyui-api:comfy0.19.3-api1.18.1-torch2.8.0-cuda12.8-runtime";
/** the container comfyui:up makes (one name for every tier) */
export { CONTAINER };

export interface ComfyuiOptions {
  /** comfyui-api image tag (pinned); the lab swaps in its stand-in */
  image?: string;
  /** extra environment for comfyui-api (no secrets: docker argv is visible on the host) */
  env?: Record<string, string>;
  comfyPort?: number;
  apiPort?: number;
  /** address the exposed ports are published on; default all interfaces */
  bind?: string;
  /**
   * which ports are published beyond the host's loopback. Default: none. comfyui-api's 3000 is
   * called through the proxy on 443 (apiProxy: token, TLS), ComfyUI's 8188 through `flow run
   * tunnel` (its UI and Manager run any code). `{ api: true }` publishes 3000 on `bind`, open to
   * anyone who finds it; `{ comfyui: true }` the same for 8188; an address string publishes there.
   */
  expose?: ComfyExpose;
  healthTimeoutSeconds?: number;
  /**
   * which comfyui-api runs. Default: the build api:update put in <data root>/comfyui-api/bin/current
   * when there is one, else the image's own. true: that build, else bin/comfyui-api copied there
   * by hand. false: always the image's own (api:update then refuses to switch).
   */
  customBinary?: boolean;
}

export const root = { sudo: true } as const;

/** What comfyui:update leaves in the host record: its image, and the flowfile's image it was chosen over. */
export interface ImageChoice {
  image: string;
  flowfileImage: string;
}

/**
 * The image comfyui:up runs: the one comfyui:update chose while the flowfile still names the image
 * it was chosen over; once the flowfile names another, the flowfile wins (its edit is newer).
 */
export function chosenImage(
  flowfileImage: string,
  record: Record<string, unknown>,
): { image: string; choice?: ImageChoice; stale?: boolean } {
  const c = record.comfyImage as Partial<ImageChoice> | undefined;
  if (!c || typeof c !== "object" || typeof c.image !== "string" || typeof c.flowfileImage !== "string") return { image: flowfileImage };
  const choice = { image: c.image, flowfileImage: c.flowfileImage };
  return c.flowfileImage === flowfileImage ? { image: c.image, choice } : { image: flowfileImage, choice, stale: true };
}

export function containerConfig(
  o: ComfyuiOptions,
  dataRoot: string,
  gpu: boolean,
  hasCurrentBuild: boolean,
  image: string,
): ComfyContainerConfig {
  const customBinary = o.customBinary === false ? false : hasCurrentBuild ? "current" : (o.customBinary ?? false);
  return {
    image,
    dataRoot,
    gpu,
    env: o.env,
    comfyPort: o.comfyPort,
    apiPort: o.apiPort,
    bind: o.bind,
    expose: o.expose,
    customBinary,
  };
}

/** The fact api:update leaves: bin/current points at a build folder with its launcher. */
async function hasCurrentBuild(ctx: TaskContext, current: string): Promise<boolean> {
  return (await ctx.exec(`test -L ${shQuote(current)} && test -x ${shQuote(`${current}/comfyui-api`)}`)).code === 0;
}

export async function readHostRecord(ctx: TaskContext): Promise<Record<string, unknown>> {
  try {
    const v = JSON.parse((await ctx.sh(readHostRecordCommand(ctx.flow.settings.remoteDir))).trim() || "{}");
    return v && typeof v === "object" && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}

/** Merge into the record as it is now (read again, so two keys written in one run both stay). */
export async function patchHostRecord(ctx: TaskContext, patch: Record<string, unknown>): Promise<void> {
  const next: Record<string, unknown> = { ...(await readHostRecord(ctx)), ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete next[k];
  await ctx.sh(writeHostRecordCommand(ctx.flow.settings.remoteDir), { stdin: JSON.stringify(next) + "\n" });
}

/** Everything comfyui:up decides the container from, read from the host. */
export interface ComfyHost {
  dataRoot: string;
  layout: ComfyLayout;
  gpu: boolean;
  hasCurrentBuild: boolean;
  flowfileImage: string;
  /** the image comfyui:up runs (see chosenImage) */
  image: string;
  choice?: ImageChoice;
  /** the record's choice names another flowfile image: comfyui:up drops it */
  staleChoice: boolean;
  /** the config comfyui:up would give the container, with another image */
  config(image: string): ComfyContainerConfig;
}

export async function readComfyHost(ctx: TaskContext, o: ComfyuiOptions, dataRootOverride?: string): Promise<ComfyHost> {
  const dataRoot = dataRootOf(ctx, dataRootOverride);
  const layout = comfyLayout(dataRoot);
  const gpu = (await detectGpu(ctx)).gpus.length > 0;
  const current = o.customBinary !== false && (await hasCurrentBuild(ctx, layout.current));
  const flowfileImage = o.image ?? DEFAULT_IMAGE;
  const chosen = chosenImage(flowfileImage, await readHostRecord(ctx));
  return {
    dataRoot,
    layout,
    gpu,
    hasCurrentBuild: current,
    flowfileImage,
    image: chosen.image,
    choice: chosen.choice,
    staleChoice: !!chosen.stale,
    config: (image) => containerConfig(o, dataRoot, gpu, current, image),
  };
}

/** The container as it runs now (state, spec hash, image), or null. */
export async function runningContainer(ctx: TaskContext, name = CONTAINER): Promise<ContainerImage | null> {
  return parseContainerImage(await ctx.sh(containerImageFact(name), root));
}

/** Copy what the image keeps under custom_nodes (ComfyUI-Manager) to the host folder that is mounted over it. */
export async function seedCustomNodes(ctx: TaskContext, image: string, dest: string): Promise<void> {
  const marker = `${dest}/.flow-seeded-${specHash({ name: "seed", image, ports: [], volumes: [], env: {}, restart: "no" })}`;
  await ctx.ensure({
    title: "custom_nodes keeps the image's own packs (ComfyUI-Manager)",
    check: async () => (await ctx.exec(`test -e ${shQuote(marker)}`)).code === 0 || { ok: false, note: "not seeded from this image" },
    apply: async () => {
      const name = `flow-seed-${Date.now().toString(36)}`;
      const out = await ctx.sh(
        [
          "set -e",
          `tmp=$(mktemp -d)`,
          `trap 'rm -rf "$tmp"; docker rm -f ${name} >/dev/null 2>&1 || true' EXIT`,
          `docker create --name ${name} ${shQuote(image)} >/dev/null`,
          // an image without custom_nodes has nothing to keep; any other failure must not mark the seed done
          `if ! docker cp ${shQuote(`${name}:${COMFY_HOME}/custom_nodes/.`)} "$tmp"/ 2>"$tmp.err"; ` +
            `then grep -qi 'could not find' "$tmp.err" || { cat "$tmp.err" >&2; rm -f "$tmp.err"; exit 1; }; fi; rm -f "$tmp.err"`,
          `for d in "$tmp"/* "$tmp"/.[!.]*; do [ -e "$d" ] || continue; n=$(basename "$d"); ` +
            `[ -e ${shQuote(dest)}/"$n" ] || { cp -a "$d" ${shQuote(dest)}/; echo "$n"; }; done`,
          `touch ${shQuote(marker)}`,
        ].join("\n"),
        root,
      );
      const copied = out.split("\n").filter(Boolean);
      return copied.length ? `copied ${copied.join(", ")}` : "the image has none to keep";
    },
  });
}

export async function ensureContainer(ctx: TaskContext, cfg: ComfyContainerConfig): Promise<void> {
  await ensureContainerSpec(ctx, comfyContainerSpec(cfg));
}

/** Remember the data root on the host, so models:* and status use the folders this container mounts. */
export async function recordDataRoot(ctx: TaskContext, dataRoot: string): Promise<void> {
  await ctx.ensure({
    title: `data root ${dataRoot} recorded on the host`,
    check: async () => {
      const rec = await readHostRecord(ctx);
      return rec.dataRoot === dataRoot || { ok: false, note: rec.dataRoot ? `was ${rec.dataRoot}` : "not recorded" };
    },
    apply: async () => void (await patchHostRecord(ctx, { dataRoot })),
  });
}

/** comfyui:up (and later runs) keep `image` while the flowfile names `flowfileImage`. */
export async function recordImageChoice(ctx: TaskContext, choice: ImageChoice): Promise<void> {
  await ctx.ensure({
    title: `image ${choice.image} recorded on the host (comfyui:up keeps it while the flowfile names ${choice.flowfileImage})`,
    check: async () => {
      const c = chosenImage(choice.flowfileImage, await readHostRecord(ctx)).choice;
      return (
        (c?.image === choice.image && c.flowfileImage === choice.flowfileImage) || {
          ok: false,
          note: c ? `was ${c.image}` : "not recorded",
        }
      );
    },
    apply: async () => void (await patchHostRecord(ctx, { comfyImage: choice })),
  });
}

export type HealthOutcome =
  { ok: true; seconds: number; body: string } | { ok: false; problem: string; logs: string; exited: boolean; urls: string[] };

/**
 * One remote loop, not one round trip per try: returns as soon as every path answers 200 on
 * comfyui-api's port, and gives up at once when comfyui-api exits (the container restarts or
 * stops) instead of waiting out the time.
 */
export async function healthOf(
  ctx: TaskContext,
  cfg: ComfyContainerConfig,
  timeoutSeconds: number,
  paths = ["/health"],
): Promise<HealthOutcome> {
  const name = cfg.name ?? CONTAINER;
  const api = portBindings(cfg)[1]!;
  const urls = paths.map((p) => publishedUrl({ address: api.bind ?? "", host: api.host }, p));
  const w = parseHealthWait((await ctx.exec(healthWaitCommand(name, urls, timeoutSeconds), root)).stdout);
  if (w.outcome === "ok") return { ok: true, seconds: w.seconds, body: w.body };
  const logs = (await ctx.exec(containerLogs(name, 50), root)).stdout.trimEnd();
  return { ok: false, problem: waitProblem(w, timeoutSeconds), logs, exited: w.outcome === "exited", urls };
}

/** The health step comfyui:up ends with; a TaskError with the log's last 50 lines when it does not come. */
export async function waitHealthy(ctx: TaskContext, cfg: ComfyContainerConfig, timeoutSeconds: number): Promise<void> {
  const name = cfg.name ?? CONTAINER;
  await ctx.step(`comfyui-api healthy (GET :${portBindings(cfg)[1]!.host}/health)`, async () => {
    if (ctx.dryRun) return { status: "skipped", note: "dry run" };
    const h = await healthOf(ctx, cfg, timeoutSeconds);
    if (h.ok) return { status: "ok", note: `after ${h.seconds}s` };
    const why = h.exited ? `${h.problem}, so there will be no 200 from ${h.urls.join(" and ")} within ${timeoutSeconds}s` : h.problem;
    throw new TaskError(`${why}; last 50 lines of the ${name} container's log:\n${h.logs}`);
  });
}
