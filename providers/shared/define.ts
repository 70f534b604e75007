// One definition per provider: its profile (who logs in, where data lives, the block volume), its
// `setup:<provider>` task, and its cloud API where it has one. The profile is the only place a
// provider's login user and data root are written: the loader (`defaults.user`), dataRootOf
// (`defaults.dataRoot`), setup and the inventory of launched boxes all read it from here.
import type { ProviderDef, TaskDef } from "../../lib/task.ts";
import type { CloudApi } from "./cloud-api.ts";
import { setupTask } from "./setup.ts";

export interface ProviderProfile {
  name: string;
  title: string;
  /** login user of a fresh box */
  user: string;
  /** where models, nodes, workflows live */
  dataRoot: string;
  /** attached block volume mounted at the data root (DataCrunch) */
  volume?: { device: string };
}

export interface ProviderSpec {
  name: string;
  /** shown as the group's description in `flow list` */
  description: string;
  profile: Omit<ProviderProfile, "name">;
  /** launch / list / terminate boxes through the provider's API (provider:list|up|down) */
  cloud?: CloudApi;
}

/** What a flowfile may change about a provider: the data root, and the volume's device where it has one. */
export type ProviderOptions<S extends ProviderSpec = ProviderSpec> = { dataRoot?: string } & (S["profile"] extends {
  volume: object;
}
  ? { volume?: string }
  : {});

export interface Provider extends ProviderDef {
  profile: ProviderProfile;
  /** the `setup:<provider>` task (also in `tasks`) */
  setup: TaskDef<any>;
  cloud?: CloudApi;
  defaults: { user: string; dataRoot: string; volume?: string };
}

/** A provider with a cloud API, as the provider:* tasks use it. */
export type CloudProvider = Provider & { cloud: CloudApi };

export function isCloudProvider(p: ProviderDef): p is CloudProvider {
  const c = (p as Partial<Provider>).cloud;
  return typeof c === "object" && c !== null && typeof c.connect === "function" && typeof (p as Partial<Provider>).profile === "object";
}

/**
 * The providers' own definer: a spec in, a factory out (`lambda()`, `datacrunch({ volume })`) that
 * gives the flowfile a ProviderDef. (lib's `defineProvider` only types a hand-made ProviderDef.)
 */
export function defineProvider<const S extends ProviderSpec>(spec: S): (options?: ProviderOptions<S>) => Provider {
  return (options = {} as ProviderOptions<S>) => {
    const o = options as { dataRoot?: string; volume?: string };
    const base = spec.profile;
    const profile: ProviderProfile = {
      ...base,
      name: spec.name,
      dataRoot: o.dataRoot ?? base.dataRoot,
      ...(base.volume ? { volume: { device: o.volume ?? base.volume.device } } : {}),
    };
    const setup = setupTask(profile);
    return {
      name: spec.name,
      description: spec.description,
      profile,
      setup,
      tasks: [setup],
      ...(spec.cloud ? { cloud: spec.cloud } : {}),
      defaults: { user: profile.user, dataRoot: profile.dataRoot, ...(profile.volume ? { volume: profile.volume.device } : {}) },
    };
  };
}
