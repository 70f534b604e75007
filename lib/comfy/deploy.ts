// The deployed host, as data: the folders under the data root and the one container that runs
// ComfyUI (8188) and comfyui-api (3000). comfyui-api takes no flags: it is configured by
// environment variables and starts ComfyUI itself, so one container holds both.
import type { ContainerSpec } from "../commands/docker.ts";
import { MODEL_FOLDERS } from "./model-folders.ts";

export const COMFY_HOME = "/opt/ComfyUI";
export const CONTAINER_WORKFLOW_DIR = "/workflows";
export const CONTAINER_BINARY = "/app/bin/comfyui-api";
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
    cache: `${root}/comfyui-api/cache`,
    backups: `${root}/backups`,
  };
}

/** Every folder setup makes: the layout plus ComfyUI's model folders (both names of aliased ones). */
export function layoutDirs(l: ComfyLayout): string[] {
  const modelDirs = [...new Set(Object.values(MODEL_FOLDERS).flat().map((p) => `${l.models}/${p.replace(/^models\//, "")}`))];
  // the parents are listed too, so they get the login user as owner like the rest
  return [`${l.root}/comfyui`, `${l.root}/comfyui-api`, l.models, ...modelDirs, l.customNodes, l.input, l.output, l.python, l.workflows, l.bin, l.cache, l.backups];
}

export interface ComfyContainerConfig {
  image: string;
  dataRoot: string;
  gpu: boolean;
  name?: string;
  comfyPort?: number;
  apiPort?: number;
  /** address the ports are published on (default all interfaces) */
  bind?: string;
  /** extra environment for comfyui-api (e.g. MAX_QUEUE_DEPTH); never secrets: argv is visible */
  env?: Record<string, string>;
  /** run a custom comfyui-api binary uploaded to <data root>/comfyui-api/bin */
  customBinary?: boolean;
}

export function comfyContainerSpec(cfg: ComfyContainerConfig): ContainerSpec {
  const l = comfyLayout(cfg.dataRoot);
  const bind = cfg.bind;
  return {
    name: cfg.name ?? "comfyui",
    image: cfg.image,
    command: cfg.customBinary ? [CONTAINER_BINARY] : undefined,
    ports: [
      { host: cfg.comfyPort ?? 8188, container: 8188, bind },
      { host: cfg.apiPort ?? 3000, container: 3000, bind },
    ],
    volumes: [
      { host: l.models, container: `${COMFY_HOME}/models` },
      { host: l.customNodes, container: `${COMFY_HOME}/custom_nodes` },
      { host: l.input, container: `${COMFY_HOME}/input` },
      { host: l.output, container: `${COMFY_HOME}/output` },
      { host: l.python, container: CONTAINER_PYTHON },
      // comfyui-api transpiles .ts workflows beside them at start-up: the folder must be writable
      { host: l.workflows, container: CONTAINER_WORKFLOW_DIR },
      { host: l.cache, container: "/cache" },
      ...(cfg.customBinary ? [{ host: l.bin, container: "/app/bin", readOnly: true }] : []),
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
    gpus: cfg.gpu,
    labels: { "flow.role": "comfyui" },
  };
}
