// Public surface for flowfiles, plugins and providers.
export { defineFlow } from "./flowfile/load.ts";
export { defineTask, definePlugin, defineProvider, TaskError } from "./task.ts";
export type {
  TaskContext,
  TaskDef,
  PluginDef,
  ProviderDef,
  StepStatus,
  StepResult,
  EnsureSpec,
  PreflightContext,
  TaskTally,
} from "./task.ts";
export type { FlowInput, FlowConfig } from "./flowfile/schema.ts";
export type { HostSpec } from "./hosts.ts";
export { shQuote, shJoin } from "./quote.ts";
export { hostPath } from "./commands/paths.ts";
export { z } from "zod";
