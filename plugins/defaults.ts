// The flow used where the working directory has no flowfile: every built-in plugin, no hosts.
import type { FlowInput } from "../lib/flowfile/schema.ts";
import { ops } from "./ops.ts";
import { workflow } from "./workflow/index.ts";

export function defaultFlow(): FlowInput {
  return { plugins: [ops(), workflow()] };
}
