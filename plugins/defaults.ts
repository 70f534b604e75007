// The flow used where the working directory has no flowfile: every built-in provider and plugin, no hosts.
import type { FlowInput } from "../lib/flowfile/schema.ts";
import { builtinProviders, cloudBoxes } from "../providers/index.ts";
import { apiProxy, comfyui, comfyuiApi, models, nodes, ops, workflow } from "./index.ts";

export function defaultFlow(): FlowInput {
  return {
    providers: builtinProviders.map((p) => p()),
    plugins: [ops(), workflow(), models(), nodes(), comfyui(), comfyuiApi(), apiProxy(), cloudBoxes()],
  };
}
