// The comfyui-api plugin's own settings (the flowfile's `comfyuiApi({...})`), shared by its tasks.
import type { SourceSettings } from "./api-source.ts";

export interface ComfyuiApiOptions {
  /** the project's comfyui-api workflows, relative to the flowfile (default "workflows") */
  workflowsDir?: string;
  /** the container that runs comfyui-api and ComfyUI (default "comfyui", as comfyui:up names it) */
  container?: string;
  /**
   * where comfyui-api's src/types.ts and src/config.ts come from for the type-check: a checkout
   * (`dir`) or a base URL (`url`, "{version}" replaced; default GitHub at the version's tag).
   * Env FLOW_COMFYUI_API_SRC / FLOW_COMFYUI_API_URL win.
   */
  source?: SourceSettings;
  /** comfyui-api version to type-check against when the host's /health does not say (default DEFAULT_API_VERSION) */
  version?: string;
  /** seconds to wait for GET /ready after a restart (default 600: a real ComfyUI with many node packs is slow to start) */
  readyTimeoutSeconds?: number;
}

/** The version of the comfyui-api image flow pins by default (comfyui plugin's DEFAULT_IMAGE: api1.18.1). */
export const DEFAULT_API_VERSION = "1.18.1";
export const DEFAULT_CONTAINER = "comfyui";

export const containerOf = (o: ComfyuiApiOptions) => o.container ?? DEFAULT_CONTAINER;
