// Lambda Labs: log in as ubuntu; data on the boot disk under the home folder.
import { defineProvider } from "../lib/index.ts";
import { setupTask, type ProviderProfile } from "./shared/setup.ts";

export const lambdaProfile: ProviderProfile = { name: "lambda", title: "Lambda Labs", user: "ubuntu", dataRoot: "/home/ubuntu" };

export function lambda(overrides: Partial<Pick<ProviderProfile, "dataRoot">> = {}) {
  const profile = { ...lambdaProfile, ...overrides };
  return defineProvider({
    name: "lambda",
    description: "Lambda Labs GPU cloud",
    defaults: { user: profile.user, dataRoot: profile.dataRoot },
    tasks: [setupTask(profile)],
  });
}
