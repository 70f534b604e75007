// This project's own flowfile. Hosts come from `hosts` and from inventory files:
// `.lab/inventory.json` is written by `npm run lab -- up` (group `lab`).
import { defineFlow } from "./lib/index.ts";
import { ops, workflow } from "./plugins/index.ts";

export default defineFlow({
  hosts: {
    // gpu1: { host: "root@1.2.3.4", provider: "datacrunch", groups: ["gpus"] },
  },
  inventory: [".lab/inventory.json"],
  plugins: [ops(), workflow()],
});
