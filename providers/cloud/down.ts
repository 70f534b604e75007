// provider:down: return a box to its provider and remove it from the inventory. Reads the fact
// (which instance, in what state), decides purely (planTerminate), then acts; a second run
// finds nothing to do.
import { z } from "zod";
import { defineTask, TaskError, type TaskContext } from "../../lib/task.ts";
import type { CloudApi, CloudInstance, CloudSession } from "../shared/cloud-api.ts";
import { CLOUD_SECRETS, HELP, openCloud } from "./clouds.ts";
import { DEFAULT_INVENTORY, findHost, inventoryPath, removeHosts } from "./inventory.ts";

export type TerminatePlan = { action: "none"; note: string } | { action: "terminate"; id: string; note: string };

/**
 * The instance id to end: --id, else the inventory's entry of that name, else (a box that never
 * joined the inventory, say SSH never answered) a live instance of that name at the provider.
 */
export async function findInstanceId(
  ctx: TaskContext,
  o: { provider: string; name?: string; id?: string; inventory: string },
  api: CloudApi,
  session: CloudSession,
): Promise<string | undefined> {
  if (o.id) return o.id;
  const entry = findHost(inventoryPath(ctx.projectDir, o.inventory), { name: o.name });
  if (entry && entry[1].provider && entry[1].provider !== o.provider) {
    throw new TaskError(`${o.name} is a ${entry[1].provider} box in ${o.inventory}, not ${o.provider}`);
  }
  if (typeof entry?.[1].data.instanceId === "string") return entry[1].data.instanceId;
  return (await session.instances()).find((i) => i.name === o.name && !api.deleted(i))?.id;
}

/** Pure: what to do about instance `id` (undefined: none found) in state `box` (null: unknown to the provider). */
export function planTerminate(
  api: CloudApi,
  want: { provider: string; name?: string },
  id: string | undefined,
  box: CloudInstance | null,
): TerminatePlan {
  if (!id) return { action: "none", note: `${want.provider} runs no instance named ${want.name}` };
  if (!box || api.deleted(box)) return { action: "none", note: `${id} already ${box?.status ?? "gone"}` };
  return { action: "terminate", id, note: `would terminate ${id} (${box.type} in ${box.region}, ${box.status})` };
}

export const providerDown = defineTask({
  name: "provider:down",
  description: `${HELP.endings} a box and remove it from the inventory`,
  scope: "local",
  lock: false,
  optionalSecrets: CLOUD_SECRETS,
  options: z.object({
    provider: z.string().min(1).describe(HELP.names),
    name: z.string().optional().describe("instance / host name"),
    id: z.string().optional().describe("instance id"),
    inventory: z.string().default(DEFAULT_INVENTORY).describe("inventory file of launched boxes, relative to the project"),
  }),
  async run(ctx, o) {
    if (!o.name === !o.id) throw new TaskError("provider:down needs exactly one of --name NAME or --id ID");
    const { api, session } = openCloud(ctx, o.provider, "provider:down");
    const invFile = inventoryPath(ctx.projectDir, o.inventory);
    const label = o.name ?? o.id!;
    const id = await findInstanceId(ctx, o, api, session);
    await ctx.step(`terminate ${label}`, async () => {
      const plan = planTerminate(api, o, id, id ? await session.instance(id) : null);
      if (plan.action === "none") return { status: "ok", note: plan.note };
      if (ctx.dryRun) return { status: "changed", note: plan.note };
      await session.terminate(plan.id);
      return { status: "changed", note: `${api.ending.done} ${plan.id}` };
    });
    await ctx.ensure({
      title: `inventory: remove ${label} from ${o.inventory}`,
      check: async () => !findHost(invFile, { name: o.name, instanceId: id }),
      apply: async () => `removed ${removeHosts(invFile, { name: o.name, instanceId: id }).join(", ")}`,
    });
  },
});
