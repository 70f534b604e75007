// provider:list / provider:up / provider:down, defined once for every provider with a cloud API
// (the flowfile's, selected by --provider). `cloudBoxes()` puts them in a flowfile's plugins.
import { definePlugin } from "../../lib/task.ts";
import { providerDown } from "./down.ts";
import { providerList } from "./list.ts";
import { providerUp } from "./up.ts";

export { defaultName } from "./names.ts";
export { providerDown, providerList, providerUp };

export const cloudTasks = [providerList, providerUp, providerDown];

/** The plugin that rents and returns boxes through the registered providers' cloud APIs. */
export function cloudBoxes() {
  return definePlugin({ name: "cloud", description: "launch, list and terminate GPU boxes (provider:up|down|list)", tasks: cloudTasks });
}
