// This project's own flowfile. Hosts come from `hosts` and from inventory files:
// `.lab/inventory.json` is written by `npm run lab -- up` (group `lab`).
import { defineFlow } from "./lib/index.ts";
import { cloudBoxes, datacrunch, lambda } from "./providers/index.ts";
import { apiProxy, comfyui, comfyuiApi, models, nodes, ops, workflow } from "./plugins/index.ts";

// In the lab, the stand-in image plays comfyui-api (built by test/lab/standin/image.ts).
const inLab = process.env.FLOW_LAB === "1";

export default defineFlow({
  hosts: {
    // gpu1: { host: "root@1.2.3.4", provider: "datacrunch", groups: ["gpus"] },
  },
  inventory: [".lab/inventory.json", ".flow/inventory.json"],
  providers: [lambda(), datacrunch()],
  // cloudBoxes(): provider:list|up|down over the providers above that have a cloud API
  plugins: [
    ops(),
    // workflow:generate converts and proves with these saved /object_info dumps (ComfyUI core, and a host
    // with the InfiniteTalk packs), so it needs no host; the lab proves against the vendored comfyui-api source
    workflow({
      objectInfo: ["test/fixtures/data/comfyui/object_info.json", "test/fixtures/data/comfyui/object_info_infinitetalk.json"],
      ...(inLab ? { source: { dir: "../shared/vendor/comfyui-api" } } : {}),
    }),
    models(),
    // custom-node packs as flow.lock.json pins them; nodes({ pins }) holds the fleet to a commit
    nodes(),
    comfyui(inLab ? { image: "flow-comfy-standin:latest" } : {}),
    // workflows/ served by comfyui-api; the lab type-checks them against the vendored comfyui-api source
    comfyuiApi(inLab ? { source: { dir: "../shared/vendor/comfyui-api" } } : {}),
    // comfyui-api stays on the box's loopback; Caddy on 443 asks for the token (api:token) and serves TLS.
    // The lab's Caddy image is built from Debian's caddy package (test/lab/caddy/image.ts); its stand-in image has
    // the node the per-token rate gate needs
    apiProxy(inLab ? { image: "flow-caddy:lab", gateImage: "flow-comfy-standin:latest" } : {}),
    cloudBoxes(),
  ],
});
