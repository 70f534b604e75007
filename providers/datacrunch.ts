// DataCrunch / Verda: log in as root; data on an attached block volume mounted at /home/user.
import { defineProvider } from "../lib/index.ts";
import { setupTask, type ProviderProfile } from "./shared/setup.ts";

export const datacrunchProfile: ProviderProfile = {
  name: "datacrunch",
  title: "DataCrunch",
  user: "root",
  dataRoot: "/home/user",
  volume: { device: "/dev/vdb" },
};

export function datacrunch(overrides: { volume?: string; dataRoot?: string } = {}) {
  const profile: ProviderProfile = {
    ...datacrunchProfile,
    dataRoot: overrides.dataRoot ?? datacrunchProfile.dataRoot,
    volume: { device: overrides.volume ?? datacrunchProfile.volume!.device },
  };
  return defineProvider({
    name: "datacrunch",
    description: "DataCrunch / Verda GPU cloud",
    defaults: { user: profile.user, dataRoot: profile.dataRoot, volume: profile.volume!.device },
    tasks: [setupTask(profile)],
  });
}
