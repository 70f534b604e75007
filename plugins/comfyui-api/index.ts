// Tier 1, plugin "comfyui-api": the project's workflows served by comfyui-api on every host, and
// proof that they are. Each job's tasks live in their own module; add yours to the list.
import { definePlugin } from "../../lib/index.ts";
import type { ComfyuiApiOptions } from "./options.ts";
import { workflowsTasks } from "./workflows.ts";
import { verifyTasks } from "./verify.ts";
import { updateTasks } from "./update.ts";
import { restartTasks } from "./restart.ts";
import { tunnelTasks } from "./tunnel.ts";
import { deployTasks } from "./deploy.ts";

export type { ComfyuiApiOptions } from "./options.ts";

export function comfyuiApi(options: ComfyuiApiOptions = {}) {
  return definePlugin({
    name: "comfyui-api",
    description: "the project's workflows served by comfyui-api: sync, restart on change, verify",
    tasks: [
      ...workflowsTasks(options),
      ...verifyTasks(options),
      ...updateTasks(options),
      ...restartTasks(options),
      ...tunnelTasks(options),
      ...deployTasks(),
    ],
  });
}
