// Which providers provider:list|up|down work over (the flowfile's providers that have a cloud API),
// and a session with one of them once its secrets are there. Nothing here names a provider.
import type { FlowConfig } from "../../lib/flowfile/schema.ts";
import { TaskError, type TaskContext } from "../../lib/task.ts";
import { builtinProviders } from "../registry.ts";
import type { RetryInfo } from "../api/http.ts";
import type { CloudApi, CloudSession } from "../shared/cloud-api.ts";
import { isCloudProvider, type CloudProvider } from "../shared/define.ts";

/** The built-in providers with a cloud API: what the tasks' help and declared secrets name. */
export const BUILTIN_CLOUDS: CloudProvider[] = builtinProviders.map((p) => p()).filter(isCloudProvider);

/** Every secret a built-in cloud API may use: declared as the tasks' optional secrets (resolved, redacted). */
export const CLOUD_SECRETS = [...new Set(BUILTIN_CLOUDS.flatMap((p) => p.cloud.secrets))];

/** The flowfile's providers that have a cloud API; a flowfile that registers none gets the built-in ones. */
export function cloudProviders(flow: Pick<FlowConfig, "providers">): CloudProvider[] {
  const registered = flow.providers.filter(isCloudProvider);
  return registered.length ? registered : BUILTIN_CLOUDS;
}

export const hasSecrets = (p: CloudProvider, secrets: Readonly<Record<string, string>>) => p.cloud.secrets.every((k) => secrets[k]);

export interface Cloud {
  provider: CloudProvider;
  api: CloudApi;
  session: CloudSession;
}

/** A session with the provider named by --provider; a clear error when it is unknown or a secret is missing. */
export function openCloud(ctx: TaskContext, name: string, task: string): Cloud {
  const all = cloudProviders(ctx.flow);
  const provider = all.find((p) => p.name === name);
  if (!provider) {
    throw new TaskError(`${task} --provider ${name}: no provider with a cloud API is named so (${all.map((p) => p.name).join(", ")})`);
  }
  const missing = provider.cloud.secrets.filter((k) => !ctx.secrets[k]);
  if (missing.length) {
    const them = missing.length > 1 ? "them" : "it";
    throw new TaskError(`${task} --provider ${name} needs ${missing.join(" and ")}: set ${them} in the environment or in .env`);
  }
  const onRetry = (r: RetryInfo) =>
    ctx.log(`${r.endpoint}: HTTP ${r.status}, retrying in ${(r.delayMs / 1000).toFixed(1)}s (try ${r.attempt + 1} of ${r.tries})`);
  return { provider, api: provider.cloud, session: provider.cloud.connect(ctx.secrets, onRetry) };
}

/** "a, b or c" */
export function either(words: string[]): string {
  return words.length > 1 ? `${words.slice(0, -1).join(", ")} or ${words.at(-1)}` : (words[0] ?? "");
}

/** Help text of the tasks and their options, in each built-in cloud's own words. */
export const HELP = {
  names: either(BUILTIN_CLOUDS.map((p) => p.name)),
  titles: BUILTIN_CLOUDS.map((p) => p.cloud.title),
  of: <K extends keyof CloudApi["help"]>(key: K) => either(BUILTIN_CLOUDS.map((p) => p.cloud.help[key])),
  endings: either(BUILTIN_CLOUDS.map((p) => `${p.cloud.ending.verb} (${p.cloud.title})`)),
};
