// `flow/providers`: the built-in providers, and the provider:list|up|down tasks over their cloud APIs.
export { builtinProviders, datacrunch, lambda } from "./registry.ts";
export { cloudBoxes, cloudTasks } from "./cloud/tasks.ts";
export { defineProvider, type Provider, type ProviderProfile, type ProviderSpec } from "./shared/define.ts";
export type { CloudApi, CloudInstance, CloudSession, CloudType, LaunchRequest } from "./shared/cloud-api.ts";
