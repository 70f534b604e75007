export { ops } from "./ops.ts";
export { workflow } from "./workflow/index.ts";
export { comfyui } from "./comfyui/index.ts";
export { models } from "./models/index.ts";
export { nodes } from "./nodes/index.ts";
export type { NodesOptions } from "./nodes/index.ts";
export { comfyuiApi } from "./comfyui-api/index.ts";
export type { ComfyuiApiOptions } from "./comfyui-api/index.ts";
