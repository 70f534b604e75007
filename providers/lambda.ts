// Lambda Labs: log in as ubuntu; data on the boot disk under the home folder; boxes rented through
// Lambda Cloud API v1 (providers/api/lambda.ts).
import { TaskError } from "../lib/task.ts";
import { LambdaApi, type LambdaInstance } from "./api/lambda.ts";
import type { CloudApi, CloudInstance } from "./shared/cloud-api.ts";
import { defineProvider } from "./shared/define.ts";

const shape = (i: LambdaInstance): CloudInstance => ({
  id: i.id,
  name: i.name ?? "",
  status: i.status,
  ip: i.ip ?? null,
  type: i.instance_type?.name ?? "?",
  region: i.region?.name ?? "?",
});

const ending = (i: CloudInstance) => i.status === "terminated" || i.status === "terminating";

const cloud: CloudApi = {
  title: "Lambda",
  secrets: ["LAMBDA_API_KEY"],
  ending: { verb: "terminate", done: "terminated" },
  help: { type: "gpu_1x_h100_pcie", region: "region (Lambda, e.g. us-east-1)", sshKey: "name (Lambda)", image: "image family (Lambda)" },
  ready: (i) => i.status === "active" && !!i.ip,
  gone: ending,
  deleted: ending,
  connect(secrets, onRetry) {
    const api = new LambdaApi({ apiKey: secrets.LAMBDA_API_KEY!, onRetry });
    return {
      async types() {
        const types = await api.instanceTypes();
        return types.map((t) => ({
          name: t.name,
          description: t.description,
          usdPerHour: t.price_cents_per_hour / 100,
          regions: t.regions.map((r) => r.name),
        }));
      },
      instances: async () => (await api.instances()).map(shape),
      async instance(id) {
        const i = await api.instance(id);
        return i && shape(i);
      },
      async launch(req) {
        let key = req.sshKey;
        if (!key) {
          // Lambda takes exactly one key; with one registered there is nothing to ask.
          const keys = await api.sshKeys();
          if (keys.length !== 1) {
            const yours = keys.length
              ? ` (your keys: ${keys.map((k) => k.name).join(", ")})`
              : " (add a key in the Lambda dashboard first)";
            throw new TaskError(`Lambda needs --ssh-key NAME${yours}`);
          }
          key = keys[0]!.name;
        }
        return api.launch({ region: req.region, type: req.type, sshKeyName: key, name: req.name, image: req.image });
      },
      async terminate(id) {
        await api.terminate([id]);
      },
    };
  },
};

export const lambda = defineProvider({
  name: "lambda",
  description: "Lambda Labs GPU cloud",
  profile: { title: "Lambda Labs", user: "ubuntu", dataRoot: "/home/ubuntu" },
  cloud,
});
