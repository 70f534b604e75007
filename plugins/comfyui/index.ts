// Tier 2: ComfyUI itself. The container (from the comfyui-api image: ComfyUI on 8188, the API on
// 3000), its folders on the host, and its health.
import { z } from "zod";
import { definePlugin, defineTask, shQuote, TaskError, type TaskContext } from "../../lib/index.ts";
import {
  comfyContainerSpec,
  comfyLayout,
  layoutDirs,
  portBindings,
  COMFY_HOME,
  type ComfyContainerConfig,
  type ComfyExpose,
} from "../../lib/comfy/deploy.ts";
import {
  containerFact,
  publishedUrl,
  containerLogs,
  healthWaitCommand,
  parseContainerFact,
  parseHealthWait,
  replaceContainer,
  specHash,
} from "../../lib/commands/docker.ts";
import { dataRootOf } from "../../lib/host-data.ts";
import { readHostRecordCommand, writeHostRecordCommand } from "../../lib/commands/host-record.ts";
import { ensureDirs, detectGpu } from "../../lib/steps/host.ts";

export const DEFAULT_IMAGE = "ghcr.io/saladtechnologies/comfyui-api:comfy0.19.3-api1.18.1-torch2.8.0-cuda12.8-runtime";

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
   * which ports are published beyond the host's loopback. Default: comfyui-api's 3000 on `bind`
   * (all interfaces), ComfyUI's 8188 on 127.0.0.1 only (its UI and Manager run any code; reach it
   * with `flow run tunnel`). `{ comfyui: true }` publishes 8188 on `bind` too; an address string
   * publishes on that address; `{ api: false }` keeps 3000 on loopback.
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

const root = { sudo: true } as const;

function containerConfig(o: ComfyuiOptions, dataRoot: string, gpu: boolean, hasCurrentBuild: boolean): ComfyContainerConfig {
  const customBinary = o.customBinary === false ? false : hasCurrentBuild ? "current" : (o.customBinary ?? false);
  return {
    image: o.image ?? DEFAULT_IMAGE,
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

/** Copy what the image keeps under custom_nodes (ComfyUI-Manager) to the host folder that is mounted over it. */
async function seedCustomNodes(ctx: TaskContext, image: string, dest: string): Promise<void> {
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

async function ensureContainer(ctx: TaskContext, cfg: ComfyContainerConfig): Promise<void> {
  const spec = comfyContainerSpec(cfg);
  const want = specHash(spec);
  await ctx.ensure({
    title: `container ${spec.name} (${spec.image})`,
    check: async () => {
      const fact = parseContainerFact(await ctx.sh(containerFact(spec.name), root));
      if (!fact) return { ok: false, note: "missing" };
      if (fact.hash !== want) return { ok: false, note: `spec changed (${fact.hash || "unlabelled"} -> ${want}): re-create` };
      if (fact.state !== "running") return { ok: false, note: `${fact.state}: re-create` };
      return { ok: true, note: `running, spec ${want}` };
    },
    apply: async () => {
      await ctx.sh(replaceContainer(spec), root);
      return `created, spec ${want}`;
    },
  });
}

/** Remember the data root on the host, so models:* and status use the folders this container mounts. */
async function recordDataRoot(ctx: TaskContext, dataRoot: string): Promise<void> {
  const remoteDir = ctx.flow.settings.remoteDir;
  const read = async (): Promise<Record<string, unknown>> => {
    try {
      return JSON.parse((await ctx.sh(readHostRecordCommand(remoteDir))).trim() || "{}");
    } catch {
      return {};
    }
  };
  await ctx.ensure({
    title: `data root ${dataRoot} recorded on the host`,
    check: async () => {
      const rec = await read();
      return rec.dataRoot === dataRoot || { ok: false, note: rec.dataRoot ? `was ${rec.dataRoot}` : "not recorded" };
    },
    apply: async () =>
      void (await ctx.sh(writeHostRecordCommand(remoteDir), { stdin: JSON.stringify({ ...(await read()), dataRoot }) + "\n" })),
  });
}

/**
 * One remote loop, not one round trip per try: returns as soon as /health answers 200, and fails
 * at once when comfyui-api exits (the container restarts or stops) instead of waiting out the time.
 */
async function waitHealthy(ctx: TaskContext, cfg: ComfyContainerConfig, timeoutSeconds: number): Promise<void> {
  const name = cfg.name ?? "comfyui";
  const api = portBindings(cfg)[1]!;
  await ctx.step(`comfyui-api healthy (GET :${api.host}/health)`, async () => {
    if (ctx.dryRun) return { status: "skipped", note: "dry run" };
    const url = publishedUrl({ address: api.bind ?? "", host: api.host }, "/health");
    const w = parseHealthWait((await ctx.exec(healthWaitCommand(name, [url], timeoutSeconds), root)).stdout);
    if (w.outcome === "ok") return { status: "ok", note: `after ${w.seconds}s` };
    const logs = await ctx.exec(containerLogs(name, 50), root);
    const why =
      w.outcome === "exited"
        ? `comfyui-api exited after ${w.seconds}s (the container is ${w.state}` +
          `${w.restarts ? `, restarted ${w.restarts} time${w.restarts === 1 ? "" : "s"} by docker` : ""}), ` +
          `so there will be no 200 from ${url} within ${timeoutSeconds}s`
        : `no 200 from ${url} within ${timeoutSeconds}s`;
    throw new TaskError(`${why}; last 50 lines of the ${name} container's log:\n${logs.stdout.trimEnd()}`);
  });
}

export function comfyui(o: ComfyuiOptions = {}) {
  const up = defineTask({
    name: "comfyui:up",
    description: "Folders on the data root, the comfyui container (re-created only when its spec changes), health",
    options: z.object({
      dataRoot: z.string().optional().describe("data root on the host (default: the host's or its provider's)"),
      healthTimeout: z.number().int().positive().optional().describe("seconds to wait for GET /health"),
    }),
    async run(ctx, opts) {
      const dataRoot = dataRootOf(ctx, opts.dataRoot);
      const l = comfyLayout(dataRoot);
      await ensureDirs(ctx, `folders under ${dataRoot}`, layoutDirs(l));
      const gpu = (await detectGpu(ctx)).gpus.length > 0;
      const cfg = containerConfig(o, dataRoot, gpu, o.customBinary !== false && (await hasCurrentBuild(ctx, l.current)));
      await seedCustomNodes(ctx, cfg.image, l.customNodes);
      await ensureContainer(ctx, cfg);
      await recordDataRoot(ctx, dataRoot);
      await waitHealthy(ctx, cfg, opts.healthTimeout ?? o.healthTimeoutSeconds ?? 600);
    },
  });

  // the container's log: the ops tier's `logs` task (plugins/logs.ts)
  return definePlugin({ name: "comfyui", description: "ComfyUI and comfyui-api in one container", tasks: [up] });
}
