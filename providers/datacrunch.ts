// DataCrunch / Verda: log in as root; data on an attached block volume mounted at /home/user;
// boxes rented through the DataCrunch API v1 (providers/api/datacrunch.ts).
import { TaskError } from "../lib/task.ts";
import { DataCrunchApi, type DataCrunchInstance } from "./api/datacrunch.ts";
import type { CloudApi, CloudInstance } from "./shared/cloud-api.ts";
import { defineProvider } from "./shared/define.ts";

// DataCrunch's own SDK examples use this image; --image picks another.
const IMAGE = "ubuntu-24.04-cuda-12.8-open-docker";

const shape = (i: DataCrunchInstance): CloudInstance => ({
  id: i.id,
  name: i.hostname ?? "",
  status: i.status,
  ip: i.ip ?? null,
  type: i.instance_type,
  region: i.location ?? "?",
});

const cloud: CloudApi = {
  title: "DataCrunch",
  secrets: ["DATACRUNCH_CLIENT_ID", "DATACRUNCH_CLIENT_SECRET"],
  ending: { verb: "delete", done: "deleted" },
  help: {
    type: "1H100.80S.30V",
    region: "location code (DataCrunch, e.g. FIN-01)",
    sshKey: "name/id (DataCrunch)",
    image: `image (DataCrunch, default ${IMAGE})`,
  },
  ready: (i) => i.status === "running" && !!i.ip,
  gone: (i) => ["deleting", "discontinued", "error", "notfound", "offline"].includes(i.status),
  deleted: (i) => ["deleting", "discontinued", "notfound"].includes(i.status),
  connect(secrets, onRetry) {
    const api = new DataCrunchApi({ clientId: secrets.DATACRUNCH_CLIENT_ID!, clientSecret: secrets.DATACRUNCH_CLIENT_SECRET!, onRetry });
    return {
      async types() {
        const [types, avail] = await Promise.all([api.instanceTypes(), api.availability()]);
        return types.map((t) => ({
          name: t.instance_type,
          description: t.description,
          usdPerHour: t.price_per_hour,
          regions: avail.filter((l) => l.availabilities.includes(t.instance_type)).map((l) => l.location_code),
        }));
      },
      instances: async () => (await api.instances()).map(shape),
      async instance(id) {
        const i = await api.instance(id);
        return i && shape(i);
      },
      async launch(req) {
        // --ssh-key takes a key's name or id; without it every registered key may log in, as the SDK examples do.
        const keys = await api.sshKeys();
        const chosen = req.sshKey ? keys.filter((k) => k.id === req.sshKey || k.name === req.sshKey) : keys;
        if (req.sshKey && !chosen.length) {
          throw new TaskError(`DataCrunch has no SSH key ${req.sshKey} (your keys: ${keys.map((k) => k.name).join(", ") || "none"})`);
        }
        if (!chosen.length) {
          throw new TaskError("DataCrunch has no SSH key registered: add one in the dashboard, or you could not log in to the box");
        }
        return api.launch({
          type: req.type,
          image: req.image ?? IMAGE,
          sshKeyIds: chosen.map((k) => k.id),
          location: req.region,
          hostname: req.name,
          description: `flow: ${req.name}`,
        });
      },
      async terminate(id) {
        await api.action(id, "delete");
      },
    };
  },
};

export const datacrunch = defineProvider({
  name: "datacrunch",
  description: "DataCrunch / Verda GPU cloud",
  profile: { title: "DataCrunch", user: "root", dataRoot: "/home/user", volume: { device: "/dev/vdb" } },
  cloud,
});
