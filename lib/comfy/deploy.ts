// The deployed host, as data: the folders under the data root and the one container that runs
// ComfyUI (8188) and comfyui-api (3000). comfyui-api takes no flags: it is configured by
// environment variables and starts ComfyUI itself, so one container holds both.
import type { ContainerSpec } from "../commands/docker.ts";
import { MODEL_FOLDERS } from "./model-folders.ts";

export const COMFY_HOME = "/opt/ComfyUI";
export const CONTAINER_WORKFLOW_DIR = "/workflows";
export const CONTAINER_BIN_DIR = "/app/bin";
/** a binary (or build folder) copied straight into <data root>/comfyui-api/bin */
export const CONTAINER_BINARY = "/app/bin/comfyui-api";
/** the build api:update switched to: bin/current is a symlink to bin/<version-or-sha>/ */
export const CONTAINER_CURRENT_BINARY = "/app/bin/current/comfyui-api";
/** comfyui-api handles SIGINT (stops ComfyUI, exits 0) but not SIGTERM, which its PID 1 ignores until docker's SIGKILL */
export const STOP_SIGNAL = "SIGINT";
/** the only address a port is published on unless the flowfile exposes it */
export const LOOPBACK = "127.0.0.1";
/** pip --target for custom nodes' requirements: on the host, so a re-created container keeps them */
export const CONTAINER_PYTHON = "/opt/flow/python";

export interface ComfyLayout {
  root: string;
  models: string;
  customNodes: string;
  input: string;
  output: string;
  python: string;
  workflows: string;
  bin: string;
  /** symlink to the build in use (bin/<version-or-sha>), made by api:update */
  current: string;
  cache: string;
  backups: string;
}

export function comfyLayout(dataRoot: string): ComfyLayout {
  const root = dataRoot.replace(/\/+$/, "");
  return {
    root,
    models: `${root}/comfyui/models`,
    customNodes: `${root}/comfyui/custom_nodes`,
    input: `${root}/comfyui/input`,
    output: `${root}/comfyui/output`,
    python: `${root}/comfyui/python`,
    workflows: `${root}/comfyui-api/workflows`,
    bin: `${root}/comfyui-api/bin`,
    current: `${root}/comfyui-api/bin/current`,
    cache: `${root}/comfyui-api/cache`,
    backups: `${root}/backups`,
  };
}

/** Every folder setup makes: the layout plus ComfyUI's model folders (both names of aliased ones). */
export function layoutDirs(l: ComfyLayout): string[] {
  const modelDirs = [
    ...new Set(
      Object.values(MODEL_FOLDERS)
        .flat()
        .map((p) => `${l.models}/${p.replace(/^models\//, "")}`),
    ),
  ];
  // the parents are listed too, so they get the login user as owner like the rest
  return [
    `${l.root}/comfyui`,
    `${l.root}/comfyui-api`,
    l.models,
    ...modelDirs,
    l.customNodes,
    l.input,
    l.output,
    l.python,
    l.workflows,
    l.bin,
    l.cache,
    l.backups,
  ];
}

export interface ComfyContainerConfig {
  image: string;
  dataRoot: string;
  gpu: boolean;
  name?: string;
  comfyPort?: number;
  apiPort?: number;
  /** address the exposed ports are published on (default all interfaces) */
  bind?: string;
  /** which ports the world may reach (default: comfyui-api's 3000 yes, ComfyUI's 8188 loopback only) */
  expose?: ComfyExpose;
  /** extra environment for comfyui-api (e.g. MAX_QUEUE_DEPTH); never secrets: argv is visible */
  env?: Record<string, string>;
  /**
   * run a comfyui-api of our own instead of the image's, from <data root>/comfyui-api/bin (mounted
   * read-only at /app/bin): true = bin/comfyui-api (copied there by hand), "current" = the build
   * bin/current points at (api:update); a switch is then a symlink and a restart, not a re-creation
   */
  customBinary?: boolean | "current";
}

/**
 * ComfyUI's UI and Manager install and run any code, and comfyui-api spends the GPU for anyone who
 * calls it: both ports stay on the host's loopback unless the flowfile says otherwise. The user's
 * backend calls the proxy on 443 (plugins/proxy).
 */
export interface ComfyExpose {
  /** false (default): 127.0.0.1 only (reach it with `flow run tunnel`); true: on `bind` (all interfaces by default); or an address */
  comfyui?: boolean | string;
  /**
   * false (default): 127.0.0.1 only, behind the proxy on 443 (apiProxy: token and TLS; comfyui-api
   * has no inbound authentication of its own); true: on `bind` (all interfaces by default), open to
   * anyone who finds it; or an address
   */
  api?: boolean | string;
}

function publishOn(v: boolean | string | undefined, dflt: boolean, bind: string | undefined): string | undefined {
  const w = v ?? dflt;
  return w === true ? bind : w === false ? LOOPBACK : w;
}

/** The two published ports: host port, container port, and the host address (undefined: every interface). */
export function portBindings(
  cfg: Pick<ComfyContainerConfig, "comfyPort" | "apiPort" | "bind" | "expose">,
): { host: number; container: number; bind?: string }[] {
  const at = (host: number, container: number, bind: string | undefined) =>
    bind === undefined ? { host, container } : { host, container, bind };
  return [
    at(cfg.comfyPort ?? 8188, 8188, publishOn(cfg.expose?.comfyui, false, cfg.bind)),
    at(cfg.apiPort ?? 3000, 3000, publishOn(cfg.expose?.api, false, cfg.bind)),
  ];
}

/** The container's command: the image's own (undefined) or one of ours under /app/bin. */
export function containerCommand(customBinary: ComfyContainerConfig["customBinary"]): string[] | undefined {
  if (customBinary === "current") return [CONTAINER_CURRENT_BINARY];
  return customBinary ? [CONTAINER_BINARY] : undefined;
}

export function comfyContainerSpec(cfg: ComfyContainerConfig): ContainerSpec {
  const l = comfyLayout(cfg.dataRoot);
  return {
    name: cfg.name ?? "comfyui",
    image: cfg.image,
    command: containerCommand(cfg.customBinary),
    ports: portBindings(cfg),
    volumes: [
      { host: l.models, container: `${COMFY_HOME}/models` },
      { host: l.customNodes, container: `${COMFY_HOME}/custom_nodes` },
      { host: l.input, container: `${COMFY_HOME}/input` },
      { host: l.output, container: `${COMFY_HOME}/output` },
      { host: l.python, container: CONTAINER_PYTHON },
      // comfyui-api transpiles .ts workflows beside them at start-up: the folder must be writable
      { host: l.workflows, container: CONTAINER_WORKFLOW_DIR },
      { host: l.cache, container: "/cache" },
      ...(cfg.customBinary ? [{ host: l.bin, container: CONTAINER_BIN_DIR, readOnly: true }] : []),
    ],
    env: {
      PORT: "3000",
      COMFY_HOME,
      MODEL_DIR: `${COMFY_HOME}/models`,
      OUTPUT_DIR: `${COMFY_HOME}/output`,
      INPUT_DIR: `${COMFY_HOME}/input`,
      WORKFLOW_DIR: CONTAINER_WORKFLOW_DIR,
      PYTHONPATH: CONTAINER_PYTHON,
      ...cfg.env,
    },
    restart: "unless-stopped",
    stopSignal: STOP_SIGNAL,
    gpus: cfg.gpu,
    labels: { "flow.role": "comfyui" },
  };
}

/** Where comfyui:snapshot keeps its snapshots: one folder per id under the backups folder. */
export function snapshotsDir(l: Pick<ComfyLayout, "backups">): string {
  return `${l.backups}/snapshots`;
}

/**
 * The comfyui-api image with another ComfyUI: its tag names the versions it bundles
 * (`comfy0.19.3-api1.18.1-torch2.8.0-cuda12.8-runtime`), so `comfy<version>` is replaced and
 * the rest kept. An image without that part (or pinned by digest) is refused, naming it.
 */
export function withComfyVersion(image: string, version: string): string {
  const bad = comfyVersionProblem(version);
  if (bad) throw new Error(bad);
  const v = version.replace(/^v(?=\d)/, "");
  if (image.includes("@")) throw new Error(`the image ${image} is pinned by digest: it has no tag whose comfy<version> could change`);
  const colon = image.lastIndexOf(":");
  const tag = colon > image.lastIndexOf("/") ? image.slice(colon + 1) : "";
  const parts = tag.split("-");
  const at = parts.flatMap((p, i) => (/^comfy\d[A-Za-z0-9_.]*$/.test(p) ? [i] : []));
  if (at.length !== 1) {
    const why = at.length ? "more than one comfy<version> part" : `no comfy<version> part${tag ? ` in its tag ${tag}` : " (no tag)"}`;
    throw new Error(`the image ${image} has ${why}: give the whole image with --image`);
  }
  parts[at[0]!] = `comfy${v}`;
  const next = `${image.slice(0, colon)}:${parts.join("-")}`;
  if (parts.join("-").length > 128) throw new Error(`--version ${version}: the tag would be longer than docker's 128 characters`);
  return next;
}

/** Why `version` cannot go into a comfyui-api tag (digits first; no dash, which separates the tag's parts). */
export function comfyVersionProblem(version: string): string | undefined {
  return /^v?\d[A-Za-z0-9_.]*$/.test(version) ? undefined : `--version ${JSON.stringify(version)}: not a ComfyUI version (e.g. 0.3.60)`;
}
